"""Checks that SEACConfig and SEQLConfig share: the kinds and ranges of RLlib's own
settings they read, the memory a config needs, and `get_state()` keeping -1.

Each check takes `fail`, the caller's function that raises its config error with
one line ("Bad SEAC config: ..."), and runs before Ray starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from functools import cache

from ray.rllib.algorithms.algorithm_config import NotProvided

# numpy's seeds (and so the envs' and RLlib's) are unsigned 32-bit integers.
MAX_SEED = 2**32 - 1
FLOAT_BYTES = 4


def is_number(value) -> bool:
    """A finite int or float (not a bool: YAML's `yes` must not pass as 1)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_schedule_of(value, ok) -> bool:
    """A value `ok` accepts, or RLlib's schedule of such: [[timestep, value], ...] with
    timesteps integers >= 0 in increasing order."""
    if not isinstance(value, (list, tuple)):
        return ok(value)
    steps = [point[0] for point in value if isinstance(point, (list, tuple)) and len(point) == 2]
    return (
        len(value) > 0
        and len(steps) == len(value)
        and all(is_int(t) and t >= 0 for t in steps)
        and steps == sorted(steps)
        and all(ok(point[1]) for point in value)
    )


def check_lr(config, fail) -> None:
    if not is_schedule_of(config.lr, lambda v: is_number(v) and v > 0):
        fail(f"lr must be a number > 0 (or a schedule of such), got {config.lr!r}.")


def check_gamma(config, fail) -> None:
    if not is_number(config.gamma) or not 0 < config.gamma <= 1:
        fail(f"gamma must be a number in (0, 1], got {config.gamma!r}.")


def check_grad_clip(config, fail) -> None:
    clip = config.grad_clip
    if clip is not None and not (is_number(clip) and clip > 0):
        fail(f"grad_clip must be a number > 0 (or None: no clipping), got {clip!r}.")


def check_bools(config, names, fail) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, bool):
            fail(f"{name} must be true or false, got {value!r}.")


def check_layer_sizes(name: str, sizes, fail) -> None:
    if not isinstance(sizes, (list, tuple)) or not all(is_int(s) and s >= 1 for s in sizes):
        fail(f"{name} must be a list of layer sizes, each an integer >= 1, got {sizes!r}.")


def check_rllib_settings(config, fail) -> None:
    """RLlib's settings that both algorithms read: counts, the seed, threads, env_config."""
    for name, low in (("num_env_runners", 0), ("num_learners", 0), ("num_envs_per_env_runner", 1)):
        value = getattr(config, name)
        if not is_int(value) or value < low:
            fail(f"{name} must be an integer >= {low}, got {value!r}.")
    for name in ("num_cpus_for_main_process", "num_cpus_per_env_runner", "num_gpus_per_learner"):
        value = getattr(config, name)
        if not is_number(value) or value < 0:
            fail(f"{name} must be a number >= 0, got {value!r}.")
    threads = config.torch_num_threads
    if threads is not None and not (is_int(threads) and threads >= 1):
        fail(f"torch_num_threads must be an integer >= 1 (or None: torch's own), got {threads!r}.")
    seed = config.seed
    if seed is not None and not (is_int(seed) and 0 <= seed <= MAX_SEED):
        fail(f"seed must be an integer from 0 to 2**32-1 (or None), got {seed!r}.")
    check_env_config(config.env_config, fail)


def check_env_config(env_config, fail) -> None:
    """Also run by `environment()`: RLlib merges env_config into a dict there, which
    fails with an AttributeError on anything else (None, YAML's empty value, is
    taken as {} by the configs)."""
    if env_config is not None and not isinstance(env_config, Mapping):
        fail(
            "env_config must be a mapping of the env's settings (e.g. {max_episode_steps: 50}), "
            f"got {type(env_config).__name__} {_short(env_config)}."
        )


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


# Memory.


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def mlp_parameters(inputs: int, hidden, outputs: int) -> int:
    sizes = [inputs, *hidden, outputs]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def size_text(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n_bytes < 1000 or unit == "PB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1000
    raise AssertionError  # unreachable


def check_memory(parts: dict[str, float], settings: str, fail) -> None:
    """Refuses a config whose arrays alone (`parts`: what -> bytes, a lower bound of
    what it will allocate) exceed this machine's memory; `settings` names what to
    lower."""
    memory = machine_memory()
    total = sum(parts.values())
    if memory is None or total <= memory:
        return
    largest = max(parts, key=parts.get)
    fail(
        f"these settings need at least {size_text(total)} of memory ({largest}: "
        f"{size_text(parts[largest])}), more than this machine's {size_text(memory)}; "
        f"lower {settings}."
    )


# get_state() and -1.


@cache
def _deprecated_keys(cls) -> frozenset:
    """The attributes a fresh `cls()` holds at RLlib's DEPRECATED_VALUE (-1)."""
    return frozenset(k for k, v in vars(cls()).items() if _is_minus_one(v))


def _is_minus_one(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == -1


def keep_minus_ones(config, state: dict) -> dict:
    """`state` (RLlib's `get_state()`) with the settings the user set to -1 put back.

    RLlib drops every value equal to -1, its marker of a deprecated setting, and
    `Algorithm.__init__` rebuilds the config from that state before validating it:
    `lr=-1` would come back as the default lr, silently. Only RLlib's deprecated
    settings (-1 in a fresh config) stay dropped.
    """
    deprecated = _deprecated_keys(type(config))
    for key, value in vars(config).items():
        if key not in state and key not in deprecated and _is_minus_one(value):
            state[key] = value
    return state


class CheckedConfig:
    """What SEACConfig and SEQLConfig add alike to their RLlib config class (a mixin
    before it): the env config checked where it is set, and settings of -1 kept
    through `get_state` (see `keep_minus_ones`). `config_error` raises the config's
    own error with a message."""

    config_error = None

    def environment(self, env=NotProvided, *, env_config=NotProvided, **kwargs):
        if env_config is None:
            env_config = {}
        if env_config is not NotProvided:
            check_env_config(env_config, type(self).config_error)
        return super().environment(env, env_config=env_config, **kwargs)

    def get_state(self) -> dict:
        # RLlib drops settings equal to -1 here; Algorithm.__init__ validates the
        # config rebuilt from this state.
        return keep_minus_ones(self, super().get_state())
