"""SEQL: RLlib's DQN training loop with the shared-experience batch and loss of App. D."""

from __future__ import annotations

from ray.rllib.algorithms.dqn import DQN
from ray.rllib.algorithms.dqn.dqn_learner import NUM_TARGET_UPDATES
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    MODULE_TRAIN_BATCH_SIZE_MEAN,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_TRAINED,
    NUM_ENV_STEPS_TRAINED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
)
from ray.rllib.utils.schedules.scheduler import Scheduler

from rllib_seac._rllib_internals import checkpoint_component_wanted, local_learner
from rllib_seac.algorithm_support import check_same_agents, remove_logdir_if_left_empty
from rllib_seac.seql.in_process.learner_step import STAT_NAMES
from rllib_seac.seql.in_process.loop import InProcessLoop
from rllib_seac.seql.torch_learner import OTHERS_Q_LOSS_KEY

EPSILON_KEY = "epsilon"
# The in-process loop's replay buffers, env and random streams in SEQL's checkpoints
# (with `store_buffer_in_checkpoints=True`), next to RLlib's COMPONENT_* entries; named
# after the loop's former name, which existing checkpoints carry.
COMPONENT_IN_PROCESS_LOOP = "direct_loop"


class SEQL(DQN):
    """Shared Experience Q-Learning (Christianos, Schäfer & Albrecht, NeurIPS 2020,
    App. D) and, with `share_experience=False`, Independent Q-Learning.

    With `loop="in_process"` (the default), each `training_step` runs
    `min_sample_timesteps_per_iteration` env steps of `InProcessLoop`: act
    epsilon-greedily, store each agent's transition in its buffer, one gradient step
    per agent on its batch and a soft target update, at every env step; the
    figures are logged once per chunk. With `loop="rllib"`, DQN's loop does the
    same through RLlib's env runners, episode buffer and `LearnerGroup.update`
    (SEQLTorchLearner), one env step per `training_step`.
    """

    _loop = None

    @classmethod
    def get_default_config(cls):
        from rllib_seac.seql.config import SEQLConfig

        return SEQLConfig()

    def training_step(self) -> None:
        if self.config.loop == "in_process":
            self._in_process_training_step()
            return
        super().training_step()
        # The env runners' exploration epsilon, from the same schedule at the same
        # env step count they use, reported per agent next to its losses.
        steps = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        epsilon = float(Scheduler(self.config.epsilon).update(steps))
        for mid in self.config.policies:
            self.metrics.log_value((LEARNER_RESULTS, mid, EPSILON_KEY), epsilon, window=1)

    def _in_process_training_step(self) -> None:
        if self._loop is None:
            self._loop = InProcessLoop(self.config)
        loop = self._loop
        t = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        n_steps = max(1, self.config.min_sample_timesteps_per_iteration or 0)
        out = loop.run(n_steps, t, local_learner(self.learner_group))
        self.metrics.aggregate([loop.metrics.reduce()], key=ENV_RUNNER_RESULTS)
        self._log_in_process_learner_figures(out, loop.batch_per_agent)
        # The env runner acts only in `evaluate()`; it gets the weights once per chunk.
        self.env_runner_group.sync_weights(
            from_worker_or_learner_group=self.learner_group, inference_only=True
        )

    def _log_in_process_learner_figures(self, out: dict, batch_per_agent: int) -> None:
        """What SEQLTorchLearner and DQN's learner log, per chunk: each figure is its
        mean over the chunk's updates (RLlib's loop reports the last update's)."""
        log = self.metrics.log_value
        updates = out["updates"]
        for m, mid in enumerate(self._loop.module_ids):
            log((LEARNER_RESULTS, mid, EPSILON_KEY), out["epsilon"], window=1)
            if not updates:
                continue
            for name, value in zip(STAT_NAMES, out["stats"][m].tolist()):
                if name != OTHERS_Q_LOSS_KEY or self.config.share_experience:
                    log((LEARNER_RESULTS, mid, name), value, window=1)
            samples = updates * batch_per_agent
            log((LEARNER_RESULTS, mid, MODULE_TRAIN_BATCH_SIZE_MEAN), batch_per_agent, window=1)
            log((LEARNER_RESULTS, mid, NUM_MODULE_STEPS_TRAINED), samples, reduce="sum")
            log(
                (LEARNER_RESULTS, mid, NUM_MODULE_STEPS_TRAINED_LIFETIME),
                samples,
                reduce="lifetime_sum",
            )
            log(
                (LEARNER_RESULTS, mid, NUM_TARGET_UPDATES),
                out["target_updates"],
                reduce="lifetime_sum",
            )
        if updates:
            env_steps = updates * self.config.total_train_batch_size
            log((LEARNER_RESULTS, ALL_MODULES, NUM_ENV_STEPS_TRAINED), env_steps, reduce="sum")
            log(
                (LEARNER_RESULTS, ALL_MODULES, NUM_ENV_STEPS_TRAINED_LIFETIME),
                env_steps,
                reduce="lifetime_sum",
            )

    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        if (
            self._loop is not None
            and self.config.store_buffer_in_checkpoints
            and checkpoint_component_wanted(
                self, COMPONENT_IN_PROCESS_LOOP, components, not_components
            )
        ):
            state[COMPONENT_IN_PROCESS_LOOP] = self._loop.get_state()
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        # As RLlib's DQN (old API stack) with its replay buffer: the loop's state
        # is restored where the config stores it, and ignored otherwise.
        loop_state = state.get(COMPONENT_IN_PROCESS_LOOP)
        if loop_state is None or not (
            self.config.loop == "in_process" and self.config.store_buffer_in_checkpoints
        ):
            return
        if self._loop is None:
            self._loop = InProcessLoop(self.config)
        self._loop.set_state(loop_state)

    def setup(self, config) -> None:
        super().setup(config)
        remove_logdir_if_left_empty(self)

    def cleanup(self) -> None:
        if self._loop is not None:
            self._loop.close()
        super().cleanup()
        if finalizer := getattr(self, "_logdir_cleanup", None):
            finalizer()

    def restore_from_path(self, path, *args, **kwargs):
        if kwargs.get("component") is None:
            check_same_agents(path, self.config.agent_ids)
        super().restore_from_path(path, *args, **kwargs)
