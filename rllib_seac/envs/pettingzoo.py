"""Any PettingZoo parallel env as an RLlib MultiAgentEnv that SEAC can train on."""

from __future__ import annotations

import pickle

import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rllib_seac.envs.spaces import check_seac_spaces

# Where a pickled adapter keeps its env's own attributes (see `__getstate__`).
ENV_ATTRIBUTES = "_env_attributes"


def end_of_episode(agents: list, terminations: dict, truncations: dict) -> tuple[dict, dict]:
    """RLlib's (terminateds, truncateds), ending the episode for all agents once any is done.

    Agents the env terminated are terminated; the others are truncated, so their
    value is bootstrapped as at a time limit.
    """
    terminated = {aid: bool(terminations[aid]) for aid in agents}
    over = any(terminated.values()) or any(truncations[aid] for aid in agents)
    truncated = {aid: over and not terminated[aid] for aid in agents}
    terminated["__all__"] = all(terminated[aid] for aid in agents)
    truncated["__all__"] = over and not terminated["__all__"]
    return terminated, truncated


class PettingZooParallelAdapter(MultiAgentEnv):
    """A PettingZoo `ParallelEnv` (MPE, SISL, ...) as a MultiAgentEnv for SEAC.

    Args:
        env: A ParallelEnv, or a callable that makes one from the env config's items
            as keyword arguments (e.g. `mpe2.simple_spread_v3.parallel_env`).
        env_config: The keyword arguments for `env` when it is a callable.
        agents: The agents SEAC trains, by default all of the env's `possible_agents`.
        other_actions: Needed when `agents` leaves some out: a callable returning the
            others' actions for the coming step, e.g. a scripted opponent.

    The trained agents must all share one flat Box observation space and one
    Discrete action space (SuperSuit's `pad_observations_v0` / `pad_action_space_v0`
    can make them so); otherwise the constructor raises a ValueError that names the
    agents and their spaces.

    SEAC needs every agent to act at every step, so the episode ends for all agents
    as soon as any agent is done (terminated or truncated): the agents the env
    terminated are reported as terminated, all others as truncated.

    Example (RLlib's Algorithm takes an env class or a registered name, not a lambda):
        >>> from mpe2 import simple_spread_v3
        >>> from ray.tune.registry import register_env
        >>> register_env("spread", lambda cfg: PettingZooParallelAdapter(
        ...     simple_spread_v3.parallel_env, cfg))
        >>> config = SEACConfig().environment("spread", env_config={"N": 3})
    """

    def __init__(self, env, env_config: dict | None = None, *, agents=None, other_actions=None):
        from pettingzoo import ParallelEnv

        super().__init__()
        if callable(env) and not isinstance(env, ParallelEnv):
            env = env(**dict(env_config or {}))
        if not isinstance(env, ParallelEnv):
            raise TypeError(
                f"PettingZooParallelAdapter needs a PettingZoo ParallelEnv, got {env!r}; "
                "convert an AEC env with pettingzoo.utils.conversions.aec_to_parallel."
            )
        self.env = env
        self.agents = self.possible_agents = list(agents or env.possible_agents)
        others = [aid for aid in env.possible_agents if aid not in self.agents]
        if others and other_actions is None:
            raise ValueError(
                f"The env's agents {others} are not trained, so `other_actions` must "
                "give their actions."
            )
        self._other_actions = other_actions
        self.observation_spaces = {aid: env.observation_space(aid) for aid in self.agents}
        self.action_spaces = {aid: env.action_space(aid) for aid in self.agents}
        check_seac_spaces(self)
        self.render_mode = getattr(env, "render_mode", None)

    def reset(self, *, seed=None, options=None):
        obs, infos = self.env.reset(seed=seed, options=options)
        return self._obs(obs), self._infos(infos)

    def step(self, action_dict):
        if self._other_actions is not None:
            action_dict = {**action_dict, **self._other_actions()}
        obs, rewards, terminations, truncations, infos = self.env.step(action_dict)
        terminated, truncated = end_of_episode(self.agents, terminations, truncations)
        return self._obs(obs), self._rewards(rewards), terminated, truncated, self._infos(infos)

    def _rewards(self, rewards: dict) -> dict:
        """The trained agents' rewards for this step, from the env's."""
        return {aid: float(rewards[aid]) for aid in self.agents}

    def _obs(self, obs: dict) -> dict:
        return {aid: np.asarray(obs[aid], dtype=np.float32) for aid in self.agents}

    def _infos(self, infos: dict) -> dict:
        return {aid: infos[aid] for aid in self.agents if aid in infos}

    def render(self):
        return self.env.render()

    def __getstate__(self) -> dict:
        # gymnasium's EzPickle (MPE, SISL and Butterfly envs) pickles an env as its
        # constructor's arguments: unpickled, it is a new env, not the one mid-episode
        # that a checkpoint's sampler continues. Its attributes go along (all that
        # pickle; a renderer's pygame surface and font do not, and stay the new env's).
        state = self.__dict__.copy()
        env = self.env.unwrapped
        if hasattr(env, "_ezpickle_args"):
            state[ENV_ATTRIBUTES] = {k: v for k, v in vars(env).items() if _pickles(v)}
        return state

    def __setstate__(self, state: dict) -> None:
        attributes = state.pop(ENV_ATTRIBUTES, None)
        self.__dict__.update(state)
        if attributes is not None:
            vars(self.env.unwrapped).update(attributes)

    def close(self):
        self.env.close()


def _pickles(value) -> bool:
    try:
        pickle.dumps(value)
    except (pickle.PicklingError, TypeError, AttributeError):
        return False
    return True
