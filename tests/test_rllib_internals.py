"""Each RLlib internal that rllib_seac/_rllib_internals.py relies on still exists as used.

A failure names the internal: an RLlib upgrade changed it, and the wrapper in
_rllib_internals.py (and what uses it) needs a look.
"""

from __future__ import annotations

import inspect

import gymnasium as gym
import pytest
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.learner.learner_group import LearnerGroup
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.training_data import TrainingData

from rllib_seac import SEACConfig, _rllib_internals
from rllib_seac.config import agent_is_module


@pytest.fixture(scope="module")
def learner():
    agents = ["agent_0", "agent_1"]
    config = SEACConfig()
    config.agent_ids = agents
    config.multi_agent(policies=set(agents), policy_mapping_fn=agent_is_module)
    spaces = gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2)
    return config.build_learner(spaces=dict.fromkeys(agents, spaces))


def test_torch_learner_update_is_one_step_on_a_module_batch():
    assert hasattr(TorchLearner, "_update"), "TorchLearner._update is gone"
    params = list(inspect.signature(TorchLearner._update).parameters)
    assert params == ["self", "batch"], f"TorchLearner._update(self, batch) is now {params}"


def test_weights_seq_no_is_an_int_counter(learner):
    assert isinstance(getattr(learner, "_weights_seq_no", None), int), (
        "Learner._weights_seq_no is no longer an int attribute"
    )
    before = _rllib_internals.weights_seq_no(learner)
    _rllib_internals.count_weights_update(learner)
    assert _rllib_internals.weights_seq_no(learner) == before + 1


def test_ray_metrics_counters_of_trained_steps(learner):
    for name in (
        "_metrics_all_modules_num_env_steps_trained",
        "_metrics_all_modules_num_module_steps_trained",
    ):
        counter = getattr(learner, name, None)
        assert callable(getattr(counter, "inc", None)), f"Learner.{name}.inc is gone"
    _rllib_internals.count_steps_trained_in_ray_metrics(learner, 20, 40)


def test_training_data_resolves_refs_into_its_batch():
    assert callable(getattr(TrainingData, "solve_refs", None)), "TrainingData.solve_refs is gone"
    fields = inspect.signature(TrainingData).parameters
    assert "batch" in fields, "TrainingData(batch=...) is gone"


def test_torch_learner_optimizer_step_flags(learner):
    for name in ("_grad_scalers", "_lr_scheduler_classes", "_torch_compile_complete_update"):
        assert hasattr(learner, name), f"TorchLearner.{name} is gone"
    assert _rllib_internals.torch_learner_customises_optimizer_step(learner) is False


def test_local_learner_group_holds_its_learner():
    source = inspect.getsource(LearnerGroup.__init__)
    assert "self._learner" in source, "LearnerGroup._learner is gone"
    assert issubclass(TorchLearner, Learner)
