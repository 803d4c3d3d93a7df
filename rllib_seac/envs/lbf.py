"""Level-based foraging (lbforaging 2.x) as an RLlib MultiAgentEnv."""

from __future__ import annotations

import inspect

import gymnasium as gym

from rllib_seac.envs.checks import EnvConfigError, check_bool, check_int, check_known_keys
from rllib_seac.envs.tuple_env import TupleAgentsEnv

# Settings that must be at least 1 (a step limit of -5 gives 1-step episodes).
AT_LEAST_ONE = ("max_episode_steps", "players", "max_num_food", "sight", "min_player_level")


def lbf_env_ids() -> list[str]:
    import lbforaging  # noqa: F401  (registers the Foraging-* ids with gymnasium)

    return sorted(i for i in gym.registry if i.startswith("Foraging") and i.endswith("-v3"))


class LbfEnv(TupleAgentsEnv):
    """An lbforaging id, with the env config passed as ForagingEnv keyword arguments.

    `max_episode_steps` keeps lbforaging's default of 50; the paper's limit is 25
    (App. A.2), which the tuned configs set. lbforaging's default
    `normalize_reward=True` is App. A.2's reward: food level x agent level /
    (sum of the food levels x sum of the loading agents' levels), so a solved
    episode returns 1 summed over agents. lbforaging reports both the time limit and
    "all food collected" as `terminated`; only the latter is a terminal here.

    `env_config["fast_step"]` (default True) steps the env with `FastForaging`,
    which gives lbforaging's exact observations, rewards and episodes at a fraction
    of its step's cost; False uses lbforaging's own class.
    """

    def __init__(self, env_id: str, env_config: dict | None = None):
        from lbforaging.foraging import ForagingEnv  # also registers the ids

        from rllib_seac.envs.fast_lbf import FastForaging

        # Built from the id's kwargs, not gym.make: gym.make would take
        # `max_episode_steps` for a TimeLimit wrapper instead of giving it to the env.
        config = dict(env_config or {})
        check_bool(env_id, config, "fast_step")
        self._fast_step = config.pop("fast_step", True)
        check_lbf_config(env_id, config, ForagingEnv)
        kwargs = {**gym.spec(env_id).kwargs, **config}
        check_lbf_fits(env_id, kwargs)
        try:
            env = (FastForaging if self._fast_step else ForagingEnv)(**kwargs)
        except (AssertionError, MemoryError) as e:  # lbforaging asserts its settings
            raise EnvConfigError(
                f"Bad env config for {env_id}: {str(e).strip() or type(e).__name__}"
            ) from None
        super().__init__(env)

    def __setstate__(self, state: dict) -> None:
        # Pickled mid-episode in a checkpoint. One from before `fast_step` existed holds
        # lbforaging's own class: it goes on with FastForaging, which keeps no state
        # of its own, so the episode continues exactly, at the faster step.
        from lbforaging.foraging import ForagingEnv

        from rllib_seac.envs.fast_lbf import FastForaging

        self.__dict__.update(state)
        if "_fast_step" not in state:
            self._fast_step = True
            if type(self.env) is ForagingEnv:
                self.env.__class__ = FastForaging

    def _split_done(self, done: bool, truncated: bool) -> tuple[bool, bool]:
        if not done:  # the common case, without a look at the field
            return False, truncated
        all_food_collected = not self.env.field.any()
        return all_food_collected, not all_food_collected


def check_lbf_config(env_id: str, config: dict, env_class) -> None:
    """The env config's keys are ForagingEnv's arguments, each in its range."""
    known = [p for p in inspect.signature(env_class.__init__).parameters if p != "self"]
    known.append("fast_step")  # LbfEnv's own (taken out before this check)
    check_known_keys(env_id, config, known)
    for key in AT_LEAST_ONE:
        check_int(env_id, config, key, 1)
    size = config.get("field_size")
    if size is not None and not (
        isinstance(size, (list, tuple)) and len(size) == 2 and all(map(_positive_int, size))
    ):
        raise EnvConfigError(
            f"Bad env config for {env_id}: field_size must be two integers >= 1 "
            f"(rows, columns), got {size!r}."
        )


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_lbf_fits(env_id: str, kwargs: dict) -> None:
    """The food and players fit the field. lbforaging places each food off the border
    with no food in its 3x3 neighbourhood, giving up after 1000 tries (so fewer food,
    silently), then each player on a free cell (a player with no cell breaks reset)."""
    rows, columns = kwargs["field_size"]
    food, players = kwargs["max_num_food"], kwargs["players"]
    # Food at least 2 cells apart (rows and columns) inside the border: an upper bound.
    most_food = -(-max(rows - 2, 0) // 2) * -(-max(columns - 2, 0) // 2)
    if food > most_food:
        raise EnvConfigError(
            f"Bad env config for {env_id}: max_num_food must be at most {most_food} on its "
            f"{rows}x{columns} field (food is kept off the border and apart), got {food}."
        )
    if players + food > rows * columns:
        raise EnvConfigError(
            f"Bad env config for {env_id}: players ({players}) and max_num_food ({food}) "
            f"must fit on the {rows * columns} cells of its {rows}x{columns} field."
        )


def lbf_episode_limit(env_id: str, env_config: dict | None = None) -> tuple[int, bool]:
    """(the episode step limit of an lbforaging id with this env config, whether the
    config set it); lbforaging's default is 50, the paper's 25."""
    from lbforaging.foraging import ForagingEnv

    config = env_config or {}
    default = inspect.signature(ForagingEnv.__init__).parameters["max_episode_steps"].default
    kwargs = {**gym.spec(env_id).kwargs, **config}
    return int(kwargs.get("max_episode_steps", default)), "max_episode_steps" in config
