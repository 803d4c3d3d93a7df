"""Checks of env settings that the envs themselves would take and misuse (a 1-step
episode for max_episode_steps=-5), with one message naming the env, key and range."""

from __future__ import annotations

import math


class EnvConfigError(ValueError):
    """An env setting out of range; the message names the env, the key and the range."""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(env: str, config: dict, key: str, low: int, *, none_ok: bool = False) -> None:
    """`config[key]`, when given, must be an integer >= low (or None where allowed)."""
    if key not in config or (none_ok and config[key] is None):
        return
    value = config[key]
    if not _is_int(value) or value < low:
        also = " (or null for none)" if none_ok else ""
        raise EnvConfigError(
            f"Bad env config for {env}: {key} must be an integer >= {low}{also}, got {value!r}."
        )


def check_positive(env: str, config: dict, key: str) -> None:
    """`config[key]`, when given, must be a finite number > 0."""
    if key not in config:
        return
    value = config[key]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value > 0):
        raise EnvConfigError(
            f"Bad env config for {env}: {key} must be a number > 0, got {value!r}."
        )


def check_bool(env: str, config: dict, key: str) -> None:
    """`config[key]`, when given, must be true or false."""
    if key in config and not isinstance(config[key], bool):
        raise EnvConfigError(
            f"Bad env config for {env}: {key} must be true or false, got {config[key]!r}."
        )


def check_known_keys(env: str, config: dict, known) -> None:
    if unknown := sorted(set(config) - set(known)):
        raise EnvConfigError(
            f"Bad env config for {env}: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}."
        )
