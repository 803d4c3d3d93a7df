"""SEACEnvRunner: synchronous n-step rollouts of all agents in all envs, batched.

One forward pass per step serves every agent of every env (the agents' actors are
stacked and vmapped), and a rollout comes back as dense arrays laid out
[agents, envs, n_steps, ...], the layout SEAC's learner consumes. No per-step
episode objects are built: A2C needs only the last n steps.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core import COMPONENT_RL_MODULE
from ray.rllib.env import INPUT_ENV_SPACES
from ray.rllib.env.env_context import EnvContext
from ray.rllib.env.env_runner import EnvRunner
from ray.rllib.utils.checkpoints import Checkpointable
from ray.rllib.utils.metrics import (
    EPISODE_AGENT_RETURN_MEAN,
    EPISODE_LEN_MEAN,
    EPISODE_RETURN_MAX,
    EPISODE_RETURN_MEAN,
    EPISODE_RETURN_MIN,
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_EPISODES,
    NUM_EPISODES_LIFETIME,
    WEIGHTS_SEQ_NO,
)

from rllib_seac.env_batch import EnvBatch, SubprocessEnvBatch
from rllib_seac.learner import (
    ACTIONS,
    BEHAVIOUR_LOGP,
    NEXT_OBS,
    OBS,
    REWARDS,
    TERMINATEDS,
    TRUNCATEDS,
)
from rllib_seac.rl_module import load_flat_parameters, stack_mlps, stacked_forward


class SEACEnvRunner(EnvRunner, Checkpointable):
    def __init__(self, *, config, **kwargs):
        super().__init__(config=config, **kwargs)
        # Inference batches are agents x envs rows: extra torch threads only add
        # synchronisation, and spin against the env and learner for the cores.
        torch.set_num_threads(1)
        self.spaces = kwargs.get("spaces") or {}
        self.envs = None
        self.module = None
        # A local runner beside remote ones samples nothing: it needs no envs.
        if (self.worker_index or 0) > 0 or self.config.num_env_runners == 0:
            self.make_env()
        self.make_module()
        self._weights_seq_no = 0
        self._obs = None  # [N, E, D], the observations the next step acts on

    # --- set-up ---------------------------------------------------------------
    def make_env(self):
        if self.envs is not None:
            self.envs.close()
        config = self.config
        env_config = EnvContext(
            dict(config.env_config),
            worker_index=self.worker_index or 0,
            num_workers=config.num_env_runners,
        )
        n_envs, processes = config.num_envs_per_env_runner, config.num_env_processes_per_env_runner
        if processes:
            self.envs = SubprocessEnvBatch(config.env, env_config, n_envs, self._seed, processes)
        else:
            self.envs = EnvBatch(config.env, env_config, n_envs, self._seed)
        self.agent_ids = self.envs.agent_ids
        self._obs_space, self._act_space = self.envs.obs_space, self.envs.action_space
        self._obs = None
        self._returns = np.zeros((len(self.agent_ids), n_envs))
        self._lengths = np.zeros(n_envs, dtype=np.int64)

    def make_module(self):
        spec = self.config.get_multi_rl_module_spec(spaces=self.get_spaces(), inference_only=True)
        self.module = spec.build()
        self._actors = None

    def get_spaces(self):
        if self.envs is None:
            return self.spaces
        return {
            INPUT_ENV_SPACES: (
                gym.spaces.Dict(dict.fromkeys(self.agent_ids, self._obs_space)),
                gym.spaces.Dict(dict.fromkeys(self.agent_ids, self._act_space)),
            ),
            **{
                mid: (self._obs_space, self._act_space)
                for mid in {self.config.policy_mapping_fn(a, None) for a in self.agent_ids}
            },
        }

    def assert_healthy(self):
        assert self.module is not None and (self.envs is not None or self.worker_index == 0)

    # --- sampling -------------------------------------------------------------
    @torch.no_grad()
    def _act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Samples a^j ~ pi_j(.|o^j) for all agents j and envs: [N, E] actions, log-probs."""
        if self._actors is None:  # re-stacked after each weight update
            mids = [self.config.policy_mapping_fn(a, None) for a in self.agent_ids]
            self._actors = stack_mlps([self.module[mid].actor for mid in mids])
        logits = stacked_forward(self._actors, torch.from_numpy(obs))
        log_pi = torch.log_softmax(logits, dim=-1)
        actions = torch.multinomial(log_pi.exp().reshape(-1, log_pi.shape[-1]), 1)
        actions = actions.reshape(log_pi.shape[:-1])
        logp = log_pi.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        return actions.numpy(), logp.numpy()

    def sample(
        self, weights: np.ndarray | None = None, **kwargs
    ) -> dict[str, dict[str, np.ndarray]]:
        """One n-step rollout of every env: {module_id: {column: [A_m, E, T, ...]}}.

        `weights`, a `flat_parameters` vector, is loaded first: the learner sends
        its latest weights with each rollout request.
        """
        if weights is not None:
            load_flat_parameters(self.module, torch.from_numpy(weights))
            self._actors = None
        n_agents, n_envs = self._returns.shape
        n_steps = self.config.n_steps
        if self._obs is None:
            self._obs = self.envs.reset()
        shape = (n_agents, n_envs, n_steps)
        out = {
            OBS: np.empty((*shape, *self._obs_space.shape), np.float32),
            NEXT_OBS: np.empty((*shape, *self._obs_space.shape), np.float32),
            ACTIONS: np.empty(shape, np.int64),
            BEHAVIOUR_LOGP: np.empty(shape, np.float32),
            REWARDS: np.empty(shape, np.float32),
            TERMINATEDS: np.empty(shape, bool),
            TRUNCATEDS: np.empty(shape, bool),
        }
        for t in range(n_steps):
            out[OBS][:, :, t] = self._obs
            actions, logp = self._act(self._obs)
            out[ACTIONS][:, :, t] = actions
            out[BEHAVIOUR_LOGP][:, :, t] = logp
            step = self.envs.step(actions)
            out[NEXT_OBS][:, :, t] = step["next_obs"]
            out[REWARDS][:, :, t] = step["rewards"]
            out[TERMINATEDS][:, :, t] = step["terminated"]
            out[TRUNCATEDS][:, :, t] = step["truncated"]
            self._returns += step["rewards"]
            self._lengths += 1
            for e in np.flatnonzero(step["ended"]):
                self._log_episode(e)
                self._returns[:, e] = 0.0
                self._lengths[e] = 0
            self._obs = step["obs"]
        steps = n_envs * n_steps
        self.num_env_steps_sampled_lifetime += steps
        self.metrics.log_value(NUM_ENV_STEPS_SAMPLED, steps, reduce="sum")
        self.metrics.log_value(
            NUM_ENV_STEPS_SAMPLED_LIFETIME, steps, reduce="lifetime_sum", with_throughput=True
        )
        return self._by_module(out)

    def _by_module(self, out: dict) -> dict[str, dict[str, np.ndarray]]:
        rows: dict[str, list[int]] = {}
        for j, aid in enumerate(self.agent_ids):
            rows.setdefault(self.config.policy_mapping_fn(aid, None), []).append(j)
        return {mid: {col: v[idx] for col, v in out.items()} for mid, idx in rows.items()}

    def _log_episode(self, e: int) -> None:
        win = max(
            1,
            math.ceil(
                self.config.metrics_num_episodes_for_smoothing / (self.config.num_env_runners or 1)
            ),
        )
        total = float(self._returns[:, e].sum())
        self.metrics.log_dict(
            {
                EPISODE_RETURN_MEAN: total,
                EPISODE_LEN_MEAN: int(self._lengths[e]),
                EPISODE_AGENT_RETURN_MEAN: {
                    aid: float(r) for aid, r in zip(self.agent_ids, self._returns[:, e])
                },
            },
            window=win,
        )
        self.metrics.log_value(EPISODE_RETURN_MIN, total, reduce="min", window=win)
        self.metrics.log_value(EPISODE_RETURN_MAX, total, reduce="max", window=win)
        self.metrics.log_value(NUM_EPISODES, 1, reduce="sum")
        self.metrics.log_value(NUM_EPISODES_LIFETIME, 1, reduce="lifetime_sum")

    def get_metrics(self):
        return self.metrics.reduce()

    # --- state ----------------------------------------------------------------
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = {NUM_ENV_STEPS_SAMPLED_LIFETIME: self.num_env_steps_sampled_lifetime}
        if self._check_component(COMPONENT_RL_MODULE, components, not_components):
            state[COMPONENT_RL_MODULE] = self.module.get_state(
                components=self._get_subcomponents(COMPONENT_RL_MODULE, components),
                not_components=self._get_subcomponents(COMPONENT_RL_MODULE, not_components),
                **kwargs,
            )
            state[WEIGHTS_SEQ_NO] = self._weights_seq_no
        return state

    def set_state(self, state):
        if COMPONENT_RL_MODULE in state:
            seq_no = state.get(WEIGHTS_SEQ_NO, 0)
            if seq_no == 0 or self._weights_seq_no < seq_no:
                module_state = state[COMPONENT_RL_MODULE]
                if not isinstance(module_state, dict):  # an ObjectRef
                    import ray

                    module_state = ray.get(module_state)
                self.module.set_state(module_state)
                self._actors = None
            if seq_no > 0:
                self._weights_seq_no = seq_no
        if NUM_ENV_STEPS_SAMPLED_LIFETIME in state:
            self.num_env_steps_sampled_lifetime = state[NUM_ENV_STEPS_SAMPLED_LIFETIME]

    @torch.no_grad()
    def copy_weights_from(self, module) -> None:
        """In-process weight sync from the learner's MultiRLModule."""
        for mid in module.keys():
            torch._foreach_copy_(
                list(self.module[mid].parameters()), list(module[mid].parameters())
            )
        self._actors = None

    def get_ctor_args_and_kwargs(self):
        return (), {"config": self.config}

    def get_checkpointable_components(self):
        return [(COMPONENT_RL_MODULE, self.module)]

    def stop(self):
        if self.envs is not None:
            self.envs.close()
