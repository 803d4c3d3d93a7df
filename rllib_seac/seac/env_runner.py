"""SEACEnvRunner: synchronous n-step rollouts of all agents in all envs, batched.

The rollouts come from a `RolloutCollector` (envs stepped in the runner's own
process) or from `RolloutWorkers` (slices of the envs in forked worker
processes), as dense arrays laid out [agents, envs, n_steps, ...], the layout
SEAC's learner consumes. No per-step episode objects are built: A2C needs only
the last n steps.
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
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    WEIGHTS_SEQ_NO,
)

from rllib_seac._rllib_internals import (
    checkpoint_component_wanted,
    checkpoint_subcomponents,
    env_runner_seed,
)
from rllib_seac.agent_modules import (
    agent_indices_of_each_module,
    agents_of_each_module,
    module_of_each_agent,
)
from rllib_seac.envs.env_batch import EnvBatch
from rllib_seac.episode_metrics import log_episode
from rllib_seac.seac.rl_module import load_flat_parameters
from rllib_seac.seac.rollouts import RolloutCollector, RolloutWorkers
from rllib_seac.seeding import derived_seed
from rllib_seac.torch_threads import set_torch_threads

# The in-process collector's envs, observations and random streams (see
# RolloutCollector.get_state): checkpoints then resume a run exactly.
ROLLOUT_STATE = "rollout_state"


class SEACEnvRunner(EnvRunner, Checkpointable):
    def __init__(self, *, config, **kwargs):
        super().__init__(config=config, **kwargs)
        set_torch_threads(config.torch_num_threads)
        self.spaces = kwargs.get("spaces") or {}
        self.agent_ids = None
        self.module = None
        self._rollouts = None  # a RolloutCollector or RolloutWorkers
        self._weights_changed = False  # since the workers last got weights
        self._copy_plan = None  # see copy_weights_from
        # A local runner beside remote ones samples nothing: it needs no envs.
        if (self.worker_index or 0) > 0 or self.config.num_env_runners == 0:
            self.make_env()
        self.make_module()
        self._weights_seq_no = 0

    # --- set-up ---------------------------------------------------------------
    def make_env(self):
        self._stop_rollouts()
        config = self.config
        self._env_config = EnvContext(
            dict(config.env_config),
            worker_index=self.worker_index or 0,
            num_workers=config.num_env_runners,
        )
        probe = EnvBatch(config.env, self._env_config, 1, None)  # agent ids and spaces
        self.agent_ids = probe.agent_ids
        self._obs_space, self._act_space = probe.obs_space, probe.action_space
        probe.close()
        if self.module is not None:
            self._start_rollouts()

    def make_module(self):
        spec = self.config.get_multi_rl_module_spec(spaces=self.get_spaces(), inference_only=True)
        self.module = spec.build()
        if self.agent_ids is not None:
            self._start_rollouts()

    def _start_rollouts(self) -> None:
        self._stop_rollouts()
        config, seed = self.config, env_runner_seed(self)
        n_envs, processes = config.num_envs_per_env_runner, config.num_env_processes_per_env_runner
        module_of_agent = module_of_each_agent(config.policy_mapping_fn, self.agent_ids)
        if processes:
            self._rollouts = RolloutWorkers(
                config.env,
                self._env_config,
                n_envs,
                seed,
                processes,
                self.module,
                module_of_agent,
                config.n_steps,
            )
            self._weights_changed = True
        else:
            envs = EnvBatch(config.env, self._env_config, n_envs, seed)
            self._rollouts = RolloutCollector(
                envs, self.module, module_of_agent, config.n_steps, derived_seed(seed, 0)
            )
        self._n_envs = n_envs

    def _stop_rollouts(self) -> None:
        if self._rollouts is not None:
            self._rollouts.close()
            self._rollouts = None

    def get_spaces(self):
        if self.agent_ids is None:
            return self.spaces
        return {
            INPUT_ENV_SPACES: (
                gym.spaces.Dict(dict.fromkeys(self.agent_ids, self._obs_space)),
                gym.spaces.Dict(dict.fromkeys(self.agent_ids, self._act_space)),
            ),
            **{
                mid: (self._obs_space, self._act_space)
                for mid in agents_of_each_module(self.config.policy_mapping_fn, self.agent_ids)
            },
        }

    def assert_healthy(self):
        assert self.module is not None and (self._rollouts is not None or self.worker_index == 0)

    # --- sampling -------------------------------------------------------------
    def sample(
        self, weights: np.ndarray | None = None, **kwargs
    ) -> dict[str, dict[str, np.ndarray]]:
        """One n-step rollout of every env: {module_id: {column: [A_m, E, T, ...]}}.

        `weights`, a `flat_parameters` vector, is loaded first: the learner sends
        its latest weights with each rollout request.
        """
        if weights is not None:
            # Read-only when it comes from Ray's object store: copied into the
            # module's parameters, but torch warns on a read-only array, so a copy.
            load_flat_parameters(
                self.module, torch.from_numpy(np.require(weights, requirements="W"))
            )
            self._on_new_weights()
        if isinstance(self._rollouts, RolloutWorkers):
            out, episodes = self._gather_from_workers()
        else:
            out, episodes = self._rollouts.collect()
        for returns, length in episodes:
            self._log_episode(returns, length)
        steps = self._n_envs * self.config.n_steps
        self.num_env_steps_sampled_lifetime += steps
        self.metrics.log_value(NUM_ENV_STEPS_SAMPLED, steps, reduce="sum")
        self.metrics.log_value(
            NUM_ENV_STEPS_SAMPLED_LIFETIME, steps, reduce="lifetime_sum", with_throughput=True
        )
        return self._by_module(out)

    def _gather_from_workers(self):
        workers = self._rollouts
        if not workers.in_flight:
            workers.request(self._weights_for_workers())
        rollout = workers.gather()
        if self.config.overlap_sampling:
            # The workers step the next rollout, with the weights from before the
            # coming learner step, while the learner runs.
            workers.request(self._weights_for_workers())
        return rollout

    def _weights_for_workers(self) -> bool:
        """Whether the workers' next rollout needs new weights (once per change)."""
        changed, self._weights_changed = self._weights_changed, False
        return changed

    def _on_new_weights(self) -> None:
        if isinstance(self._rollouts, RolloutWorkers):
            self._weights_changed = True
        elif self._rollouts is not None:
            self._rollouts.weights_changed()

    def _by_module(self, out: dict) -> dict[str, dict[str, np.ndarray]]:
        rows = agent_indices_of_each_module(self.config.policy_mapping_fn, self.agent_ids)
        return {mid: {col: v[_rows(idx)] for col, v in out.items()} for mid, idx in rows.items()}

    def _log_episode(self, returns: np.ndarray, length: int) -> None:
        win = max(
            1,
            math.ceil(
                self.config.metrics_num_episodes_for_smoothing / (self.config.num_env_runners or 1)
            ),
        )
        log_episode(self.metrics, self.agent_ids, returns, length, win)

    def get_metrics(self):
        return self.metrics.reduce()

    # --- state ----------------------------------------------------------------
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = {NUM_ENV_STEPS_SAMPLED_LIFETIME: self.num_env_steps_sampled_lifetime}
        if isinstance(self._rollouts, RolloutCollector):
            state[ROLLOUT_STATE] = self._rollouts.get_state()
        if checkpoint_component_wanted(self, COMPONENT_RL_MODULE, components, not_components):
            state[COMPONENT_RL_MODULE] = self.module.get_state(
                components=checkpoint_subcomponents(self, COMPONENT_RL_MODULE, components),
                not_components=checkpoint_subcomponents(self, COMPONENT_RL_MODULE, not_components),
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
                self._on_new_weights()
            if seq_no > 0:
                self._weights_seq_no = seq_no
        if NUM_ENV_STEPS_SAMPLED_LIFETIME in state:
            self.num_env_steps_sampled_lifetime = state[NUM_ENV_STEPS_SAMPLED_LIFETIME]
        if state.get(ROLLOUT_STATE) and isinstance(self._rollouts, RolloutCollector):
            self._rollouts.set_state(state[ROLLOUT_STATE])

    @torch.no_grad()
    def copy_weights_from(self, module) -> None:
        """In-process weight sync from the learner's MultiRLModule (on the learner's
        device: a GPU learner's weights are copied to this runner's CPU module)."""
        # Listing a module's parameters walks its submodules, which costs more than
        # the copy: the lists are kept while both sides hold the same modules.
        pairs = [(module[mid], self.module[mid]) for mid in module.keys()]
        if self._copy_plan is None or self._copy_plan[0] != pairs:
            sources = [w for src, _ in pairs for w in src.parameters()]
            targets = [p for _, dst in pairs for p in dst.parameters()]
            self._copy_plan = (pairs, sources, targets)
        _, sources, targets = self._copy_plan
        torch._foreach_copy_(targets, [w.to(p.device) for w, p in zip(sources, targets)])
        self._on_new_weights()

    def get_ctor_args_and_kwargs(self):
        return (), {"config": self.config}

    def get_checkpointable_components(self):
        return [(COMPONENT_RL_MODULE, self.module)]

    def stop(self):
        self._stop_rollouts()


def _rows(indices: list[int]) -> slice | list[int]:
    """Consecutive agent positions (a module per agent, or one for all) as a slice:
    a view of the rollout's arrays, which are new each rollout, instead of a copy."""
    first, last = indices[0], indices[-1]
    return slice(first, last + 1) if indices == list(range(first, last + 1)) else indices
