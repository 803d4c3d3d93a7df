"""The multi-robot warehouse (rware 2.x) as an RLlib MultiAgentEnv."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np

from rllib_seac.envs.checks import EnvConfigError, check_int
from rllib_seac.envs.tuple_env import TupleAgentsEnv

# Warehouse arguments -> their least value.
AT_LEAST = {
    "n_agents": 1,
    "shelf_columns": 1,
    "column_height": 1,
    "shelf_rows": 1,
    "sensor_range": 1,
    "request_queue_size": 1,
    "msg_bits": 0,
}
NONE_OR_AT_LEAST_ONE = ("max_steps", "max_inactivity_steps")


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
        check_rware_config(env_id, kwargs)
        self._time_limit_terminal = bool(kwargs.pop("time_limit_terminal", False))
        spec = gym.spec(env_id)
        if kwargs.pop("fast_step", True):
            spec = dataclasses.replace(spec, entry_point=FastWarehouse)
        try:
            warehouse = gym.make(spec, disable_env_checker=True, **kwargs)
        except (AssertionError, MemoryError) as e:
            raise EnvConfigError(
                f"Bad env config for {env_id}: rware cannot build this warehouse "
                f"({type(e).__name__}: {str(e).strip() or 'out of memory'})."
            ) from None
        super().__init__(warehouse)
        check_rware_fits(env_id, self.env.unwrapped)

    def _split_done(self, done: bool, truncated: bool) -> tuple[bool, bool]:
        ended = done or truncated
        return (ended, False) if self._time_limit_terminal else (False, ended)

    @staticmethod
    def array_stepper(envs: list) -> RwareArrays | None:
        """What `EnvBatch` steps these envs with instead of one `step` each (after
        their first reset): `RwareArrays`, where they are FastWarehouses of one
        layout; else None."""
        if not all(type(env) is RwareEnv for env in envs):
            return None
        from rllib_seac.envs.fast_rware import Observations

        warehouses = [env.env.unwrapped for env in envs]
        if not Observations.same_layout(warehouses):
            return None
        return RwareArrays(Observations(warehouses[0], len(envs)))


class RwareArrays:
    """Steps a batch of RwareEnvs as arrays: each warehouse's moves, loads and
    deliveries (`FastWarehouse.advance`, Python per env), then every env's
    observations in one array program (`Observations`), written straight into the
    batch's arrays. The same values as `RwareEnv.step` per env (tested), without its
    per-agent dicts and gymnasium's wrapper, which cost as much as the move rules."""

    def __init__(self, observations):
        self._observations = observations

    def step(self, envs: list, actions: np.ndarray, out: dict) -> None:
        """actions [N, E]; fills `EnvBatch.step`'s next_obs, rewards, terminated,
        truncated and ended (the batch resets the envs that ended)."""
        warehouses = [env.env.unwrapped for env in envs]
        for e, (env, warehouse) in enumerate(zip(envs, warehouses)):
            rewards, done = warehouse.advance(actions[:, e].tolist())
            out["rewards"][:, e] = rewards
            out["terminated"][:, e], out["truncated"][:, e] = env._split_done(done, False)
            out["ended"][e] = done
        out["next_obs"][:] = self._observations(warehouses).swapaxes(0, 1)


def check_rware_config(env_id: str, config: dict) -> None:
    """Sizes and counts in range, before rware asserts or builds a broken warehouse."""
    for key, low in AT_LEAST.items():
        check_int(env_id, config, key, low)
    for key in NONE_OR_AT_LEAST_ONE:
        check_int(env_id, config, key, 1, none_ok=True)
    columns = config.get("shelf_columns")
    if columns is not None and columns % 2 == 0:
        raise EnvConfigError(
            f"Bad env config for {env_id}: shelf_columns must be an odd integer >= 1 "
            f"(rware puts the goals under the middle column), got {columns!r}."
        )


def check_rware_fits(env_id: str, warehouse) -> None:
    """The agents and requests fit the layout: rware's reset draws a cell per agent and
    a shelf per request without replacement, and fails inside numpy otherwise."""
    rows, columns = warehouse.grid_size
    cells = rows * columns
    shelves = cells - int(np.count_nonzero(warehouse.highways))
    if warehouse.n_agents > cells:
        raise EnvConfigError(
            f"Bad env config for {env_id}: n_agents must be at most the {cells} cells of "
            f"its {rows}x{columns} warehouse, got {warehouse.n_agents}."
        )
    if warehouse.request_queue_size > shelves:
        raise EnvConfigError(
            f"Bad env config for {env_id}: request_queue_size must be at most its "
            f"{shelves} shelves, got {warehouse.request_queue_size}."
        )
