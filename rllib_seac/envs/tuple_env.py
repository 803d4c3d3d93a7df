"""RLlib MultiAgentEnv over gymnasium envs whose spaces are Tuples of per-agent spaces.

rware 2.x and lbforaging 2.x both expose every agent through one gymnasium env with
Tuple observation and action spaces, a list of rewards, and env-level `terminated`
and `truncated` bools, where the time limit is reported as `terminated=True`. SEAC
must bootstrap at a time limit and not at a true terminal, so subclasses say which
of the two an episode end is (`_split_done`).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv


def agent_ids(n: int) -> list[str]:
    return [f"agent_{i}" for i in range(n)]


class TupleAgentsEnv(MultiAgentEnv):
    """One gymnasium env with Tuple spaces, seen as an RLlib MultiAgentEnv."""

    def __init__(self, env: gym.Env):
        super().__init__()
        self.env = env
        inner = env.unwrapped
        n = len(inner.observation_space.spaces)
        self.agents = self.possible_agents = agent_ids(n)
        self.observation_spaces = dict(zip(self.agents, inner.observation_space.spaces))
        self.action_spaces = dict(zip(self.agents, inner.action_space.spaces))
        self.render_mode = getattr(inner, "render_mode", None)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._per_agent(obs), {}

    def step(self, action_dict):
        actions = tuple(action_dict[aid] for aid in self.agents)
        obs, rewards, done, truncated, info = self.env.step(actions)
        terminated, truncated = self._split_done(bool(done), bool(truncated))
        return (
            self._per_agent(obs),
            dict(zip(self.agents, map(float, rewards))),
            dict.fromkeys([*self.agents, "__all__"], terminated),
            dict.fromkeys([*self.agents, "__all__"], truncated),
            {},
        )

    def _per_agent(self, obs) -> dict:
        return {aid: np.asarray(o, dtype=np.float32) for aid, o in zip(self.agents, obs)}

    def _split_done(self, done: bool, truncated: bool) -> tuple[bool, bool]:
        """Returns (terminated, truncated) for the env's (done, truncated) pair."""
        return done, truncated

    def render(self):
        # rware and lbforaging take the mode as render()'s argument, not from their
        # render_mode, and gymnasium's wrappers call it without one ("human").
        return self.env.unwrapped.render(mode=self.render_mode or "human")

    def close(self):
        self.env.close()
