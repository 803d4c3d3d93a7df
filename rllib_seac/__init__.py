"""Shared Experience Actor-Critic (SEAC) and Q-Learning (SEQL) for Ray RLlib's current API stack."""

from rllib_seac.algorithm import SEAC
from rllib_seac.config import SEACConfig, SEACConfigError
from rllib_seac.envs import env_names, make_env, register_envs
from rllib_seac.seql import SEQL, SEQLConfig, SEQLConfigError

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

    register_trainable("SEAC", SEAC)
    register_trainable("SEQL", SEQL)
    register_envs(envs)
