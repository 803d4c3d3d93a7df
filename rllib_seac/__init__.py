"""Shared Experience Actor-Critic (SEAC) and Q-Learning (SEQL) for Ray RLlib's current API stack."""

import importlib

# Imported on first use, so that `rllib --help` (rllib_seac.cli) starts without Ray.
_LAZY = {
    "SEAC": "rllib_seac.algorithm",
    "SEACConfig": "rllib_seac.config",
    "SEACConfigError": "rllib_seac.config",
    "env_names": "rllib_seac.envs",
    "make_env": "rllib_seac.envs",
    "register_envs": "rllib_seac.envs",
    "SEQL": "rllib_seac.seql",
    "SEQLConfig": "rllib_seac.seql",
    "SEQLConfigError": "rllib_seac.seql",
}

__all__ = [
    "SEAC",
    "SEACConfig",
    "SEACConfigError",
    "SEQL",
    "SEQLConfig",
    "SEQLConfigError",
    "env_names",
    "make_env",
    "register",
    "register_envs",
]


def register(envs=None) -> None:
    """Registers the "SEAC" and "SEQL" trainables and this package's env names (all, or those
    of `envs`) with Ray Tune."""
    from ray.tune.registry import register_trainable

    from rllib_seac.algorithm import SEAC
    from rllib_seac.envs import register_envs
    from rllib_seac.seql import SEQL

    register_trainable("SEAC", SEAC)
    register_trainable("SEQL", SEQL)
    register_envs(envs)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rllib_seac' has no attribute {name!r}")
