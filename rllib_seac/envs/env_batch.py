"""A batch of envs of one task stepped together, seen as arrays [agents, envs, ...].

An env is reset as soon as its episode ends: `step` returns the final
observation of the ended episode in `next_obs` and the first one of the new
episode in `obs`.
"""

from __future__ import annotations

import pickle

import numpy as np

from rllib_seac.envs import check_seac_spaces, make_env
from rllib_seac.seeding import derived_seed


class EnvBatch:
    def __init__(self, env, env_config, n_envs: int, seed: int | None, first_index: int = 0):
        self.envs = [make_env(env, env_config) for _ in range(n_envs)]
        self.agent_ids = list(self.envs[0].possible_agents)
        self.obs_space, self.action_space = check_seac_spaces(self.envs[0])
        self._env_name = env
        self._seeds = [derived_seed(seed, first_index + e) for e in range(n_envs)]
        # Envs that can step as arrays say how (e.g. rware's `RwareEnv.array_stepper`):
        # decided at the first step, after a reset or a restore (`replace_envs`).
        self._arrays = None

    def reset(self) -> np.ndarray:
        """Starts every env's first episode; the seeds apply to this reset only."""
        obs = np.empty((len(self.agent_ids), len(self.envs), *self.obs_space.shape), np.float32)
        for e, (env, seed) in enumerate(zip(self.envs, self._seeds)):
            obs[:, e] = self._stack(env.reset(seed=seed)[0])
        return obs

    def pickled_envs(self) -> bytes | None:
        """The envs mid-episode, their random generators included (what
        `replace_envs(pickle.loads(...))` continues from), or None where an env
        cannot be pickled."""
        try:
            return pickle.dumps(self.envs)
        except (pickle.PicklingError, TypeError, AttributeError):
            return None

    def replace_envs(self, envs: list) -> None:
        """Steps these envs from now on (mid-episode: a restored checkpoint's)."""
        self.close()
        self.envs = envs
        self._arrays = None

    def step(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        """actions [N, E] -> next_obs and obs [N, E, D]; rewards, terminated and
        truncated [N, E]; ended [E]."""
        n_agents, n_envs = actions.shape
        out = {
            "next_obs": np.empty((n_agents, n_envs, *self.obs_space.shape), np.float32),
            "rewards": np.empty((n_agents, n_envs), np.float32),
            "terminated": np.empty((n_agents, n_envs), bool),
            "truncated": np.empty((n_agents, n_envs), bool),
            "ended": np.zeros(n_envs, bool),
        }
        if self._arrays is None:
            stepper = getattr(type(self.envs[0]), "array_stepper", None)
            self._arrays = (stepper and stepper(self.envs)) or False
        if self._arrays:
            self._arrays.step(self.envs, actions, out)
        else:
            for e, env in enumerate(self.envs):
                obs, rew, term, trunc, _ = env.step(
                    {aid: actions[j, e] for j, aid in enumerate(self.agent_ids)}
                )
                out["next_obs"][:, e] = self._stack(obs)
                for j, aid in enumerate(self.agent_ids):
                    out["rewards"][j, e] = rew[aid]
                    out["terminated"][j, e] = term.get(aid, term["__all__"])
                    out["truncated"][j, e] = trunc.get(aid, trunc["__all__"])
                out["ended"][e] = term["__all__"] or trunc["__all__"]
        out["obs"] = out["next_obs"].copy()
        for e in np.flatnonzero(out["ended"]):
            out["obs"][:, e] = self._stack(self.envs[e].reset()[0])
        return out

    def _stack(self, obs: dict) -> list:
        missing = [aid for aid in self.agent_ids if aid not in obs]
        if missing:
            raise ValueError(
                f"SEAC needs every agent to act at every step, but {missing} got no "
                f"observation from env {self._env_name!r}."
            )
        return [obs[aid] for aid in self.agent_ids]

    def close(self) -> None:
        for env in self.envs:
            env.close()
