"""The multi-robot warehouse (rware 2.x) as an RLlib MultiAgentEnv."""

from __future__ import annotations

import dataclasses

import gymnasium as gym

from rllib_seac.envs.tuple_env import TupleAgentsEnv


def rware_env_ids() -> list[str]:
    import rware  # noqa: F401  (registers the rware-* ids with gymnasium)

    return sorted(i for i in gym.registry if i.startswith("rware"))


class RwareEnv(TupleAgentsEnv):
    """rware ends episodes only at `max_steps` (or an optional inactivity limit).

    Both are time limits, not states of the task, so every episode end is a
    truncation: the learner bootstraps from the last observation.
    `env_config["time_limit_terminal"]=True` reports them as terminals instead (no
    bootstrap), as the authors' SEAC code treated RWARE's 500-step end.

    `env_config["fast_step"]` (default True) steps the env with `FastWarehouse`,
    which gives rware's exact trajectories several times faster; False uses
    rware's own class. Other keys are rware's Warehouse arguments.
    """

    def __init__(self, env_id: str, env_config: dict | None = None):
        import rware  # noqa: F401

        from rllib_seac.envs.fast_rware import FastWarehouse

        kwargs = dict(env_config or {})
        self._time_limit_terminal = bool(kwargs.pop("time_limit_terminal", False))
        spec = gym.spec(env_id)
        if kwargs.pop("fast_step", True):
            spec = dataclasses.replace(spec, entry_point=FastWarehouse)
        super().__init__(gym.make(spec, disable_env_checker=True, **kwargs))

    def _split_done(self, done: bool, truncated: bool) -> tuple[bool, bool]:
        ended = done or truncated
        return (ended, False) if self._time_limit_terminal else (False, ended)
