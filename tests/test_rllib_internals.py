"""Each internal that rllib_seac/_rllib_internals.py wraps still works as it assumes.

A failure here names the internal that a Ray upgrade changed."""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import ray.tune.trainable.trainable as trainable_module
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.learner.learner_group import LearnerGroup
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.training_data import TrainingData
from ray.rllib.core.rl_module import rl_module
from ray.tune.registry import register_env

from rllib_seac import SEACConfig, _rllib_internals
from rllib_seac._rllib_internals import (
    NOTICES_NOT_FOR_OUR_ALGORITHMS,
    OUR_ALGORITHMS,
    RLMODULE_CONFIG_NOTICE,
    config_attribute,
    registered_env_creator,
    set_algorithm_log_dir_parent,
)
from rllib_seac.agent_modules import agent_is_module

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


def test_rllib_still_uses_the_log_once_keys_of_the_notices():
    source = inspect.getsource(AlgorithmConfig._validate_new_api_stack_settings)
    assert '_on_new_api_stack"' in source, "AlgorithmConfig's new-API-stack notice changed"
    assert set(NOTICES_NOT_FOR_OUR_ALGORITHMS) == {
        *(f"{name}_on_new_api_stack" for name in OUR_ALGORITHMS),
        RLMODULE_CONFIG_NOTICE,
    }
    assert f'old="{RLMODULE_CONFIG_NOTICE}"' in inspect.getsource(rl_module), (
        "RLlib's RLModuleConfig deprecation key changed"
    )


def test_notices_not_for_seac_stay_silent_in_a_fresh_process():
    code = (
        "from rllib_seac import SEACConfig, make_env\n"
        "config = SEACConfig().environment('Foraging-8x8-2p-2f-v3')\n"
        "config.validate()\n"
        "spec = config.get_default_rl_module_spec()\n"
        "env = make_env('Foraging-8x8-2p-2f-v3')\n"
        "spec.observation_space = env.get_observation_space('agent_0')\n"
        "spec.action_space = env.get_action_space('agent_0')\n"
        "spec.build()\n"
        "print('built')\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0 and "built" in proc.stdout, proc.stderr[-2000:]
    for notice in ("new API stack", "RLModuleConfig", "gputil"):
        assert notice not in proc.stderr, proc.stderr


def test_algorithm_log_dir_parent(tmp_path, monkeypatch):
    # Restored after the test: the session's own setting (conftest.py).
    default = trainable_module.DEFAULT_STORAGE_PATH
    monkeypatch.setattr(trainable_module, "DEFAULT_STORAGE_PATH", default)
    set_algorithm_log_dir_parent(str(tmp_path))
    algo = SEACConfig().environment("rware-tiny-2ag-v2").build_algo()
    try:
        assert Path(algo.logdir).parent == tmp_path
    finally:
        algo.stop()


def test_ray_auth_settings_reload_after_import():
    code = (
        "import os, ray\n"
        "from ray._raylet import AuthenticationMode, get_authentication_mode\n"
        "from rllib_seac._rllib_internals import reload_ray_auth_settings\n"
        "os.environ['RAY_AUTH_MODE'] = 'token'\n"
        "reload_ray_auth_settings()\n"
        "print(get_authentication_mode() == AuthenticationMode.TOKEN)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout.strip() == "True", proc.stderr[-2000:]


def test_translate_special_keys_renames_old_keys():
    # AlgorithmConfig._translate_special_keys, as update_from_dict uses it.
    assert config_attribute("num_workers") == "num_env_runners", "_translate_special_keys"
    assert config_attribute("framework") == "framework_str", "_translate_special_keys"
    assert config_attribute("lr") == "lr", "_translate_special_keys"


def test_global_registry_finds_a_registered_env():
    # ray.tune.registry._global_registry, as RLlib looks envs up.
    register_env("internals-test-env", lambda config: ("made with", config))
    # Ray stores a copy (pickled into its key-value store once it runs).
    creator = registered_env_creator("internals-test-env")
    assert creator({"n": 1}) == ("made with", {"n": 1}), "_global_registry"
    assert registered_env_creator("internals-no-such-env") is None, "_global_registry"


@pytest.fixture(scope="module")
def learner():
    agents = ["agent_0", "agent_1"]
    config = SEACConfig()
    config.agent_ids = agents
    config.multi_agent(policies=agents, policy_mapping_fn=agent_is_module)
    spaces = gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2)
    return config.build_learner(spaces=dict.fromkeys(agents, spaces))


def test_the_direct_update_logs_the_metric_keys_of_rllibs_learner_update():
    """SEAC's learner repeats `Learner.update`'s bookkeeping once per report: the same
    metric keys as RLlib's own update of the same learner."""
    from test_fused_step import learner_batch, multi_agent_batch
    from test_losses import make_learner, make_streams

    def keys(tree, prefix=()):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from keys(value, (*prefix, key))
            else:
                yield (*prefix, key)

    direct, _ = make_learner(2)
    rllib, _ = make_learner(2)
    batch = multi_agent_batch(learner_batch(direct, make_streams(2)))
    direct_keys = set(keys(direct.update(batch=batch, timesteps={})))
    rllib_keys = set(keys(Learner.update(rllib, batch=batch, timesteps={})))
    # RLlib times its own update loop; SEAC's statistics of Eqs. 4 and 5 are extra.
    rllib_only = {k for k in rllib_keys - direct_keys if "timer" not in k[-1]}
    assert not rllib_only, (
        f"RLlib's Learner.update logs keys the direct path does not: {rllib_only}"
    )


def test_learner_update_takes_no_metrics_reduce_through_the_learner_group():
    """SEAC's algorithm asks its learners to reduce their metrics once per iteration
    (`update(_no_metrics_reduce=...)`, a private keyword of `Learner.update` that
    `LearnerGroup.update` passes on among its **kwargs)."""
    learner_params = inspect.signature(Learner.update).parameters
    assert "_no_metrics_reduce" in learner_params, "Learner.update lost _no_metrics_reduce"
    group_params = inspect.signature(LearnerGroup.update).parameters
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in group_params.values()), (
        "LearnerGroup.update no longer passes keyword arguments on to the learners"
    )


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


def test_algorithm_setup_looks_the_env_up_with_get_env_id_and_creator():
    from ray.rllib.algorithms.algorithm import Algorithm

    assert isinstance(inspect.getattr_static(Algorithm, "_get_env_id_and_creator"), staticmethod), (
        "Algorithm._get_env_id_and_creator is no longer a static method"
    )
    params = list(inspect.signature(Algorithm._get_env_id_and_creator).parameters)
    assert params == ["env_specifier", "config"], (
        f"Algorithm._get_env_id_and_creator(env_specifier, config) is now {params}"
    )
    assert "self._get_env_id_and_creator(" in inspect.getsource(Algorithm.setup), (
        "Algorithm.setup no longer calls _get_env_id_and_creator: SEAC's override is unused"
    )
    env_id, creator = _rllib_internals.rllib_env_id_and_creator("CartPole-v1", AlgorithmConfig())
    assert env_id == "CartPole-v1" and callable(creator)


def test_env_runner_seed_is_the_configs_seed_plus_the_worker_index():
    from ray.rllib.env.env_runner import EnvRunner

    assert "self._seed = int(" in inspect.getsource(EnvRunner.__init__), "EnvRunner._seed is gone"
    from rllib_seac.seac.env_runner import SEACEnvRunner

    config = SEACConfig().environment("rware-tiny-2ag-v2").debugging(seed=7)
    config.validate()
    runner = SEACEnvRunner(config=config, worker_index=2)
    try:
        assert _rllib_internals.env_runner_seed(runner) == 9
    finally:
        runner.stop()


def test_checkpointable_component_helpers():
    from ray.rllib.utils.checkpoints import Checkpointable

    for name in ("_check_component", "_get_subcomponents"):
        assert callable(getattr(Checkpointable, name, None)), f"Checkpointable.{name} is gone"

    class Holder(Checkpointable):
        def get_state(self, *args, **kwargs):
            return {}

        def set_state(self, state):
            pass

        def get_ctor_args_and_kwargs(self):
            return (), {}

    holder = Holder()
    wanted = _rllib_internals.checkpoint_component_wanted
    assert wanted(holder, "rl_module", None, None)
    assert wanted(holder, "rl_module", ["rl_module/agent_0"], None)
    assert not wanted(holder, "rl_module", None, ["rl_module"])
    subcomponents = _rllib_internals.checkpoint_subcomponents
    assert subcomponents(holder, "rl_module", ["rl_module/agent_0", "other"]) == ["agent_0"]
    assert subcomponents(holder, "rl_module", None) is None


def test_torch_learner_enters_each_modules_no_sync_with_several_learners():
    # SEACTorchRLModule.no_sync stands in for DDP's (DataParallelSEACLearner).
    source = inspect.getsource(TorchLearner._uncompiled_update)
    assert "mod.no_sync()" in source, "TorchLearner._uncompiled_update no longer enters no_sync"
    assert "_make_modules_ddp_if_necessary" in inspect.getsource(TorchLearner.build), (
        "TorchLearner.build no longer calls _make_modules_ddp_if_necessary, which "
        "DataParallelSEACLearner overrides to leave the modules unwrapped"
    )


def test_learner_update_takes_its_minibatches_from_create_iterator_if_necessary():
    # rllib_seac._rllib_internals.ReplacesMinibatchIterator overrides this method and
    # reads the iterator's settings from its attributes.
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
    from ray.rllib.utils.minibatch_utils import MiniBatchCyclicIterator

    assert "self._create_iterator_if_necessary(" in inspect.getsource(Learner.update), (
        "Learner.update no longer calls _create_iterator_if_necessary"
    )
    params = set(inspect.signature(Learner._create_iterator_if_necessary).parameters)
    expected = {"training_data", "num_total_minibatches", "num_epochs", "minibatch_size"}
    assert expected | {"shuffle_batch_per_epoch"} <= params, params
    batch = MultiAgentBatch({"m": SampleBatch({"x": [1, 2, 3]})}, 3)
    iterator = MiniBatchCyclicIterator(
        batch, num_epochs=2, minibatch_size=2, shuffle_batch_per_epoch=True
    )
    assert iterator._batch is batch
    assert (iterator._num_epochs, iterator._minibatch_size) == (2, 2)
    assert iterator._shuffle_batch_per_epoch is True
    assert iterator._num_total_minibatches == 0


def test_a_trials_stop_criteria_can_be_replaced():
    from ray.tune.experiment import Trial

    from rllib_seac._rllib_internals import set_trial_stop

    trial = Trial("PPO", stub=True, stopping_criterion={"training_iteration": 5})
    assert trial.should_stop({"training_iteration": 5})
    set_trial_stop(trial, {"num_env_steps_sampled_lifetime": 100})
    assert not trial.should_stop({"training_iteration": 5, "num_env_steps_sampled_lifetime": 99})
    assert trial.should_stop({"num_env_steps_sampled_lifetime": 100})


def test_a_result_is_judged_against_stop_criteria_as_tune_judges_it():
    from rllib_seac._rllib_internals import result_meets_stop

    stop = {"env_runners/num_env_steps_sampled_lifetime": 100, "training_iteration": 9}
    below = {"env_runners": {"num_env_steps_sampled_lifetime": 99}, "training_iteration": 8}
    assert not result_meets_stop(below, stop)
    assert not result_meets_stop({**below, "done": True}, stop)  # a finished trial's
    assert result_meets_stop({**below, "training_iteration": 9}, stop)  # any one key
    assert result_meets_stop({"env_runners": {"num_env_steps_sampled_lifetime": 100}}, stop)


def test_a_checkpoint_says_how_many_env_steps_it_had_sampled():
    from rllib_seac._rllib_internals import checkpoint_env_steps

    # A committed record: its last checkpoint was saved at the last row of its progress.
    trial = ROOT / "docs/results/rware-tiny-4ag-v2/SEAC-seed0"
    last_row = (trial / "progress.csv").read_text().splitlines()[-1]
    assert checkpoint_env_steps(trial / "checkpoint") == int(last_row.split(",")[0])
    assert checkpoint_env_steps(trial) is None  # no algorithm_state.pkl there
