"""SEQL: RLlib's DQN training loop with the shared-experience batch and loss of App. D."""

from __future__ import annotations

from ray.rllib.algorithms.dqn import DQN
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)
from ray.rllib.utils.schedules.scheduler import Scheduler

from rllib_seac.seac.algorithm import _check_same_agents

EPSILON_KEY = "epsilon"


class SEQL(DQN):
    """Shared Experience Q-Learning (Christianos, Schäfer & Albrecht, NeurIPS 2020,
    App. D) and, with `share_experience=False`, Independent Q-Learning.

    DQN's loop, unchanged: each step samples `rollout_fragment_length` env steps
    with epsilon-greedy agents into the per-agent replay buffers, then takes one
    gradient step per agent on a batch from them (SEQLTorchLearner) and moves each
    target network by tau towards its Q-network.
    """

    @classmethod
    def get_default_config(cls):
        from rllib_seac.seql.config import SEQLConfig

        return SEQLConfig()

    def training_step(self) -> None:
        super().training_step()
        # The env runners' exploration epsilon, from the same schedule at the same
        # env step count they use, reported per agent next to its losses.
        steps = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        epsilon = float(Scheduler(self.config.epsilon).update(steps))
        for mid in self.config.policies:
            self.metrics.log_value((LEARNER_RESULTS, mid, EPSILON_KEY), epsilon, window=1)

    def restore_from_path(self, path, *args, **kwargs):
        if kwargs.get("component") is None:
            _check_same_agents(path, self.config.agent_ids)
        super().restore_from_path(path, *args, **kwargs)
