"""SEQL's direct loop: DQN's step-by-step interleaving of acting and learning in one
process, without RLlib's per-step machinery.

RLlib's DQN `training_step` with one env and one update per env step spends ~35 ms
per env step on its env runner, episode replay buffer, learner connectors and
metrics. This loop does the same algorithm with an in-process env (`EnvBatch`, as
SEAC's collector), numpy replay buffers (`AgentReplayBuffers`), the learner's
Q-networks and optimizers updated directly, and the metrics of a whole chunk of steps
logged once. The update is the learner's own loss through autograd
(`learner_step.learner_update`), or the fused step (`fused_step.py`: every agent at
once, gradients written out) where it stands in for that: `fused_update="auto"`, a
stock learner and ReLU MLP Q-networks (SEQLConfig's), once the first update has made
Adam's state and a self-check on a synthetic batch has matched autograd's gradients.

Per env step t (t counted from the run's start, as RLlib's env runner counts):
  1. every agent acts epsilon-greedily on its Q-network, epsilon = schedule(t);
  2. the transition of each agent goes into its buffer D^i;
  3. once the buffers hold `num_steps_sampled_before_learning_starts` steps, every
     agent takes one gradient step on its batch (SEQL: M // N from each D^k; IQL:
     M from D^i), and its target network moves by tau when
     `target_network_update_freq` env steps have passed since its last move.
"""

from __future__ import annotations

import logging
import pickle

import numpy as np
import torch
from ray.rllib.utils.metrics import (
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from rllib_seac.agent_modules import module_of_each_agent
from rllib_seac.columns import ACTIONS, NEXT_OBS, OBS, REWARDS, TERMINATEDS
from rllib_seac.envs.env_batch import EnvBatch
from rllib_seac.episode_metrics import log_episode
from rllib_seac.fused_guard import gradients_differ, overridden
from rllib_seac.seql.in_process.fused_step import FusedStep
from rllib_seac.seql.in_process.learner_step import UpdateSettings, agent_networks, learner_update
from rllib_seac.seql.replay_buffer import AgentReplayBuffers, agent_parts, per_agent_items
from rllib_seac.seql.torch_learner import SEQLTorchLearner
from rllib_seac.torch_threads import set_torch_threads

logger = logging.getLogger(__name__)

# What the fused step computes in place of these learner methods and RLModule methods:
# it is used only while the learner and its modules override none of them.
LOSS_PATH = (
    "compute_losses",
    "compute_loss_for_module",
    "_eq6",
    "q_target",
    "q_loss",
    "seql_loss",
    "compute_gradients",
    "postprocess_gradients",
    "postprocess_gradients_for_module",
    "apply_gradients",
    "configure_optimizers_for_module",
)
MODULE_PATH = ("forward_train", "_forward_train", "compute_q_values", "forward_target")

# Seeds of the loop's random streams, next to the env's (run seed, stream).
EXPLORATION_STREAM, REPLAY_STREAM = 1, 2


class EpsilonSchedule:
    """The exploration epsilon by env step t, as RLlib's Scheduler reads
    `DQNConfig.epsilon`: a number, or piecewise linear through [[t, epsilon], ...]
    and constant past its ends."""

    def __init__(self, schedule):
        points = [(0, schedule)] if isinstance(schedule, (int, float)) else schedule
        self._steps, self._values = (np.array(v, np.float64) for v in zip(*points))

    def __call__(self, t: int) -> float:
        return float(np.interp(t, self._steps, self._values))


class InProcessLoop:
    def __init__(self, config):
        self.config = config
        set_torch_threads(config.torch_num_threads)
        agents = list(config.agent_ids)
        self.module_ids = module_of_each_agent(config.policy_mapping_fn, agents)
        seed = config.seed
        self.envs = EnvBatch(config.env, dict(config.env_config), 1, seed)
        self.n_actions = int(self.envs.action_space.n)
        capacity = config.replay_buffer_config.get("capacity", 1_000_000)
        self.buffers = AgentReplayBuffers(len(agents), capacity, self.envs.obs_space.shape)
        self._explore_rng = np.random.default_rng(
            None if seed is None else (seed, EXPLORATION_STREAM)
        )
        self._replay_rng = np.random.default_rng(None if seed is None else (seed, REPLAY_STREAM))
        self.epsilon = EpsilonSchedule(config.epsilon)
        self.settings = UpdateSettings.from_config(config)
        batch = config.total_train_batch_size
        self.batch_per_agent = (
            per_agent_items(batch, len(agents)) if config.share_experience else batch
        )
        self._obs = None  # [N, D], what the next step acts on
        self._returns = np.zeros(len(agents))
        self._length = 0
        self._last_target_update = 0  # as DQNLearner
        self._target_updates = 0  # in the current chunk
        # The fused step on the learner's tensors, where it applies; else why not.
        self._fused: FusedStep | None = None
        self._fused_off: str | None = None
        self.metrics = MetricsLogger()  # the env runner's figures, reduced per chunk

    def run(self, n_steps: int, t: int, learner) -> dict:
        """`n_steps` env steps from lifetime step `t`, with one update per step once
        learning has started. Returns the chunk's learner figures: per module the
        mean of each STAT_NAMES figure over its updates, the update count and the
        epsilon of the last step."""
        modules = [learner.module[mid].unwrapped() for mid in self.module_ids]
        optimizers = [learner.get_optimizers_for_module(mid)[0][1] for mid in self.module_ids]
        networks = [agent_networks(m, opt) for m, opt in zip(modules, optimizers)]
        self._learner = learner
        self._fused = self._current_fused_step(learner, modules, networks)
        schedule_lr = isinstance(self.config.lr, (list, tuple))
        if self._obs is None:
            self._obs = self.envs.reset()[:, 0]
        stats, epsilon = [], None
        self._target_updates = 0
        for _ in range(n_steps):
            epsilon = self.epsilon(t)
            actions = self._act(networks, epsilon)
            step = self.envs.step(actions[:, None])
            terminated = step["terminated"][:, 0]
            self.buffers.add(
                self._obs, actions, step["rewards"][:, 0], step["next_obs"][:, 0], terminated
            )
            self._count_episode(step)
            self._obs = step["obs"][:, 0]
            t += 1
            if self.buffers.size >= self.config.num_steps_sampled_before_learning_starts:
                if schedule_lr:
                    learner.before_gradient_based_update(
                        timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: t}
                    )
                stats.append(self._update(networks, t))
                if self._fused is None:  # Adam's state is made by the first update
                    self._fused = self._current_fused_step(learner, modules, networks)
        self.metrics.log_value(NUM_ENV_STEPS_SAMPLED, n_steps, reduce="sum")
        self.metrics.log_value(
            NUM_ENV_STEPS_SAMPLED_LIFETIME, n_steps, reduce="lifetime_sum", with_throughput=True
        )
        return {
            "stats": np.mean(stats, axis=0) if stats else None,
            "updates": len(stats),
            "target_updates": self._target_updates,
            "epsilon": epsilon,
        }

    def _current_fused_step(self, learner, modules, networks) -> FusedStep | None:
        """The fused step on the learner's current parameters and optimizers (made
        again after a restore has replaced their tensors), or None where autograd's
        step runs: settings or classes it does not cover (decided once, one log line),
        Adam's state not made yet (the first update makes it)."""
        if self._fused_off is not None:
            return None
        step = self._fused
        if step is not None and step.is_current():
            return step
        reason = self._fused_unavailable(learner, modules)
        if reason:
            return self._turn_fused_off(reason)
        optimizers = [agent.optimizer for agent in networks]
        if any(len(opt.state) < len(opt.param_groups[0]["params"]) for opt in optimizers):
            return None
        if not FusedStep.supports(modules, networks):
            return self._turn_fused_off(
                "the Q-networks are not ReLU MLPs trained by one Adam each on the CPU"
            )
        first = step is None
        step = FusedStep(networks, self.module_ids, self.settings, self.n_actions)
        if first:
            failed = self._self_check(learner, step, networks)
            if failed:
                return self._turn_fused_off(failed, warn=True)
        return step

    def _fused_unavailable(self, learner, modules) -> str | None:
        if self.config.fused_update == "off":
            return "fused_update='off'"
        changed = overridden(learner, SEQLTorchLearner, LOSS_PATH)
        if changed:
            return f"{type(learner).__name__} overrides {', '.join(changed)}"
        stock = self.config.get_default_rl_module_spec().module_class
        for mid, module in zip(self.module_ids, modules):
            changed = overridden(module, stock, MODULE_PATH)
            if not isinstance(module, stock) or changed:
                return f"module {mid} is a {type(module).__name__} ({', '.join(changed)})"
        return None

    def _turn_fused_off(self, reason: str, warn: bool = False) -> None:
        self._fused_off = reason
        if self.config.fused_update != "off":
            (logger.warning if warn else logger.info)(
                "SEQL trains through autograd, not the fused step: %s.", reason
            )

    def _self_check(self, learner, step: FusedStep, networks) -> str | None:
        """Whether the fused step's gradients are the learner's (autograd's) on random
        transitions of the loop's batch shape; None if so, else what differs. Changes
        no weight."""
        rng = np.random.default_rng(0)
        shape = (len(self.module_ids), self.batch_per_agent)
        obs_shape = self.envs.obs_space.shape
        batch = {
            OBS: rng.standard_normal((*shape, *obs_shape), np.float32),
            NEXT_OBS: rng.standard_normal((*shape, *obs_shape), np.float32),
            ACTIONS: rng.integers(self.n_actions, size=shape),
            REWARDS: rng.standard_normal(shape, np.float32),
            TERMINATEDS: rng.random(shape) < 0.15,
        }
        parts = dict(zip(self.module_ids, agent_parts(batch)))
        params = [p for agent in networks for p in agent.pairs[0]]
        figures = learner.last_figures
        try:
            fwd_out = {mid: learner.module[mid].forward_train(parts[mid]) for mid in parts}
            learner.compute_gradients(learner.compute_losses(fwd_out=fwd_out, batch=parts))
            autograd = [p.grad.clone() for p in params]
            step.gradients(batch)
            fused = step.flat_gradients(params)
        finally:
            learner.last_figures = figures
            for agent in networks:
                agent.optimizer.zero_grad(set_to_none=True)
        return gradients_differ(params, autograd, fused)

    @torch.no_grad()
    def _act(self, networks, epsilon: float) -> np.ndarray:
        """a^i = a random action with probability epsilon, else argmax_a Q_i(o^i, a)
        (RLlib's DQN exploration). The uniforms and random actions are drawn for
        every agent at every step, so the stream does not depend on the Q-values."""
        n = len(networks)
        explore = self._explore_rng.random(n) < epsilon
        actions = self._explore_rng.integers(0, self.n_actions, n)
        if self._fused is not None:
            if not explore.all():
                greedy = self._fused.greedy_actions(self._obs)
                actions = np.where(explore, actions, greedy)
            return actions
        for i in np.flatnonzero(~explore):
            obs = torch.from_numpy(self._obs[i : i + 1])
            actions[i] = int(networks[i].q(obs).argmax())
        return actions

    def _update(self, networks, t: int) -> np.ndarray:
        batch = self.buffers.sample(self.batch_per_agent, self._replay_rng)
        # Every agent updates at every step, so one clock serves all target networks.
        due = t - self._last_target_update >= self.config.target_network_update_freq
        if due:
            self._last_target_update = t
            self._target_updates += 1
        if self._fused is not None:
            return self._fused(batch, update_targets=due)
        parts = agent_parts(batch)
        return learner_update(
            self._learner, self.module_ids, networks, parts, self.settings.tau, due
        )

    def _count_episode(self, step: dict) -> None:
        self._returns += step["rewards"][:, 0]
        self._length += 1
        if not step["ended"][0]:
            return
        window = self.config.metrics_num_episodes_for_smoothing
        log_episode(self.metrics, self.config.agent_ids, self._returns, self._length, window)
        self._returns[:] = 0.0
        self._length = 0

    def get_state(self) -> dict:
        """Everything the next env steps and updates depend on besides the learner
        and the step count: the replay buffers (compactly, see
        `AgentReplayBuffers.get_state`), the env mid-episode with the observations
        to act on and the running episode sums (None where the env cannot be
        pickled), both random streams and the target update clock. A loop restored
        with it continues exactly: the same actions, samples and updates."""
        envs = self.envs.pickled_envs()
        episode = None
        if envs is not None and self._obs is not None:
            episode = (envs, self._obs.copy(), self._returns.copy(), self._length)
        return {
            "buffers": self.buffers.get_state(),
            "episode": episode,
            "explore_rng": self._explore_rng.bit_generator.state,
            "replay_rng": self._replay_rng.bit_generator.state,
            "last_target_update": self._last_target_update,
        }

    def set_state(self, state: dict) -> None:
        self.buffers.set_state(state["buffers"])
        self._explore_rng.bit_generator.state = state["explore_rng"]
        self._replay_rng.bit_generator.state = state["replay_rng"]
        self._last_target_update = state["last_target_update"]
        if state["episode"] is None:  # the env could not be pickled: a new episode
            self._obs, self._length = None, 0
            self._returns[:] = 0.0
            return
        envs, self._obs, self._returns, self._length = state["episode"]
        self.envs.replace_envs(pickle.loads(envs))

    def close(self) -> None:
        self.envs.close()
