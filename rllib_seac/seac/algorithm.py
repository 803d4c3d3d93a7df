"""SEAC: the Algorithm, a loop of synchronous A2C updates over n-step rollouts."""

from __future__ import annotations

import numpy as np
import ray
import torch
from ray.exceptions import RayTaskError
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from rllib_seac._rllib_internals import local_learner, rllib_env_id_and_creator
from rllib_seac.agent_modules import module_of_each_agent
from rllib_seac.algorithm_support import check_same_agents, remove_logdir_if_left_empty
from rllib_seac.columns import REWARDS
from rllib_seac.envs import make_env
from rllib_seac.envs.episodes import episode_metrics, run_episode
from rllib_seac.seac.rl_module import flat_parameters
from rllib_seac.seeding import SEEDS_PER_RUN, action_generator, derived_seed


class SEAC(Algorithm):
    """Shared Experience Actor-Critic (Christianos, Schäfer & Albrecht, NeurIPS 2020).

    Each `train()` runs `updates_per_iteration` A2C updates: every env runner
    steps its envs `n_steps` times, the learner takes one gradient step per agent
    on the union of those rollouts (Eqs. 4 and 5), and the new weights go back to
    the env runners before the next rollout, so the own-data term stays on-policy.
    """

    _rollouts_in_flight = False
    _eval_env = None

    @classmethod
    def get_default_config(cls):
        from rllib_seac.seac.config import SEACConfig

        return SEACConfig()

    # Overrides a protected static method of Algorithm (see _rllib_internals).
    @staticmethod
    def _get_env_id_and_creator(env_specifier, config):
        # SEAC's env runners build envs with `rllib_seac.make_env`, which also
        # takes a plain function of the env config; RLlib's lookup refuses those.
        if callable(env_specifier) and not isinstance(env_specifier, type):
            return None, env_specifier
        return rllib_env_id_and_creator(env_specifier, config)

    def setup(self, config) -> None:
        super().setup(config)
        remove_logdir_if_left_empty(self)

    def cleanup(self) -> None:
        if self._eval_env is not None:
            self._eval_env.close()
        super().cleanup()
        if finalizer := getattr(self, "_logdir_cleanup", None):
            finalizer()

    def training_step(self) -> None:
        n_updates = self.config.updates_per_iteration
        for update in range(n_updates):
            with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
                rollouts = self._sample()
            if not rollouts:
                return
            batches = _train_batches(rollouts, max(1, self.config.num_learners))
            if not batches:
                continue
            last = update == n_updates - 1
            with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
                results = self._update(batches, reduce_metrics=last)
            if last:
                self.metrics.aggregate(results, key=LEARNER_RESULTS)
            with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
                self._sync_weights()
        self.metrics.aggregate(self._env_runner_metrics(), key=ENV_RUNNER_RESULTS)

    def evaluate(self, parallel_train_future=None) -> dict:
        """RLlib's evaluation while training (every `evaluation_interval` iterations):
        `evaluation_duration` full episodes in this process, in the env of
        `evaluation_config`, with the agents' stochastic policies as the paper
        evaluates them (App. B). The figures go under result["evaluation"]["env_runners"].

        The env stays open between evaluations: only its first reset is seeded (from
        the config's seed), later ones continue its random stream, as `rllib evaluate`.
        """
        config = self.evaluation_config
        if self._eval_env is None:
            self._eval_env = make_env(config.env, dict(config.env_config))
            # The last env seed of the run's block: no training env has it.
            self._eval_seed = derived_seed(config.seed, SEEDS_PER_RUN - 1)
            self._eval_actions = action_generator(self._eval_seed)
        agents = list(config.agent_ids)
        modules = module_of_each_agent(config.policy_mapping_fn, agents)
        actors = {aid: self._current_module(mid).actor for aid, mid in zip(agents, modules)}

        @torch.no_grad()
        def act(obs: dict) -> dict:
            actions = {}
            for aid, actor in actors.items():
                logits = actor(torch.as_tensor(obs[aid]).unsqueeze(0))
                probs = torch.softmax(logits, dim=-1)
                actions[aid] = int(torch.multinomial(probs, 1, generator=self._eval_actions))
            return actions

        returns, lengths = [], []
        for _ in range(config.evaluation_duration):
            episode_returns, length = run_episode(self._eval_env, act, agents, seed=self._eval_seed)
            self._eval_seed = None
            returns.append(episode_returns)
            lengths.append(length)
        return {ENV_RUNNER_RESULTS: episode_metrics(returns, lengths)}

    def _current_module(self, module_id: str):
        """The module with the latest weights: the learner's in this process, else
        the env runners' (synced after every update)."""
        if self.learner_group.is_local:
            return local_learner(self.learner_group).module[module_id]
        return self.get_module(module_id)

    def _update(self, batches: list[MultiAgentBatch], reduce_metrics: bool):
        try:
            return self.learner_group.update(
                # One batch per learner; a single one RLlib passes on as is.
                **({"batch": batches[0]} if len(batches) == 1 else {"batches": batches}),
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0
                    )
                },
                # Reducing the learner's metrics costs more than a small A2C step:
                # do it once per iteration (losses are logged window=1).
                _no_metrics_reduce=not reduce_metrics,
            )
        except RayTaskError as error:
            # A remote learner's non-finite stop arrives wrapped in its traceback;
            # its message names the agent and the quantity: pass on just that.
            if isinstance(error.cause, FloatingPointError):
                raise error.cause from None
            raise

    def restore_from_path(self, path, *args, **kwargs):
        if kwargs.get("component") is None:
            check_same_agents(path, self.config.agent_ids)
        super().restore_from_path(path, *args, **kwargs)

    def _sync_weights(self) -> None:
        group = self.env_runner_group
        if not self.learner_group.is_local:
            group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                inference_only=True,
                timeout_seconds=None,
            )
        elif group.num_remote_env_runners() == 0:
            # Learner and env runner share this process: copy tensors in place
            # instead of RLlib's round trip through numpy state dicts.
            self.env_runner.copy_weights_from(local_learner(self.learner_group).module)
        # Otherwise the weights go out with the next rollout request (`_sample`).

    def _sample(self) -> list[dict]:
        group = self.env_runner_group
        if group.num_remote_env_runners() == 0:
            return [self.env_runner.sample()]
        kwargs = {}
        if self.learner_group.is_local:
            module = local_learner(self.learner_group).module
            kwargs["weights"] = ray.put(flat_parameters(module).cpu().numpy())
        if not self.config.overlap_sampling:
            return group.foreach_env_runner("sample", kwargs=kwargs, local_env_runner=False)
        if not self._rollouts_in_flight:
            group.foreach_env_runner_async("sample", tag="sample", kwargs=kwargs)
        ready = group.fetch_ready_async_reqs(tags="sample", timeout_seconds=None)
        # The runners step the next rollout, with the weights from before this
        # update, while the learner uses the current one.
        sent = group.foreach_env_runner_async("sample", tag="sample", kwargs=kwargs)
        self._rollouts_in_flight = sent > 0
        return [rollout for _, rollout in ready]

    def _env_runner_metrics(self) -> list:
        group = self.env_runner_group
        if group.num_remote_env_runners() == 0:
            return [self.env_runner.get_metrics()]
        return group.foreach_env_runner(lambda runner: runner.get_metrics(), local_env_runner=False)


def _train_batches(rollouts: list[dict], n_learners: int) -> list[MultiAgentBatch]:
    """Joins the runners' rollouts along the env axis, then gives each learner an
    equal share of the envs, flattened to rows.

    Each column arrives as [agents of the module, envs, n_steps, ...]; a share keeps
    that layout for its envs, which the learner undoes with a reshape. While a failed
    env runner restarts, envs that do not divide evenly sit out the update: equal
    shares keep the learners' averaged gradient the whole batch's (none when fewer
    envs than learners are left).
    """
    if len(rollouts) == 1:  # one runner (the usual case): nothing to join, no copy
        joined = rollouts[0]
    else:
        joined = {
            mid: {col: np.concatenate([r[mid][col] for r in rollouts], axis=1) for col in columns}
            for mid, columns in rollouts[0].items()
        }
    n_envs, n_steps = next(iter(joined.values()))[REWARDS].shape[1:3]
    share = n_envs // n_learners
    batches = []
    for i in range(n_learners if share else 0):
        envs = slice(i * share, (i + 1) * share)
        modules = {
            mid: SampleBatch({col: v[:, envs].reshape(-1, *v.shape[3:]) for col, v in cols.items()})
            for mid, cols in joined.items()
        }
        batches.append(MultiAgentBatch(modules, env_steps=share * n_steps))
    return batches
