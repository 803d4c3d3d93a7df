"""Shared Experience Actor-Critic (SEAC) and Q-Learning (SEQL) for Ray RLlib's current API stack."""

import importlib
import importlib.abc
import importlib.util
import sys

# Imported on first use, so that `rllib --help` (rllib_seac.cli) starts without Ray.
_LAZY = {
    "SEAC": "rllib_seac.seac.algorithm",
    "SEACConfig": "rllib_seac.seac.config",
    "SEACConfigError": "rllib_seac.seac.config",
    "env_names": "rllib_seac.envs",
    "make_env": "rllib_seac.envs",
    "register_envs": "rllib_seac.envs",
    "SEQL": "rllib_seac.seql",
    "SEQLConfig": "rllib_seac.seql",
    "SEQLConfigError": "rllib_seac.seql",
    "SEPPO": "rllib_seac.seppo",
    "SEPPOConfig": "rllib_seac.seppo",
    "SEPPOConfigError": "rllib_seac.seppo",
}

__all__ = [
    "SEAC",
    "SEACConfig",
    "SEACConfigError",
    "SEPPO",
    "SEPPOConfig",
    "SEPPOConfigError",
    "SEQL",
    "SEQLConfig",
    "SEQLConfigError",
    "env_names",
    "make_env",
    "register",
    "register_envs",
]


def register(envs=None) -> None:
    """Registers the "SEAC", "SEQL" and "SEPPO" trainables and this package's env names
    (all, or those of `envs`) with Ray Tune."""
    from ray.tune.registry import register_trainable

    from rllib_seac.envs import register_envs
    from rllib_seac.seac.algorithm import SEAC
    from rllib_seac.seppo import SEPPO
    from rllib_seac.seql import SEQL

    register_trainable("SEAC", SEAC)
    register_trainable("SEQL", SEQL)
    register_trainable("SEPPO", SEPPO)
    register_envs(envs)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rllib_seac' has no attribute {name!r}")


# Where modules of earlier layouts went. RLlib checkpoints pickle class and function
# paths (rllib_seac.config.SEACConfig, rllib_seac.sampling.env_runner.SEACEnvRunner,
# ...): the old names stay importable, as the very same module objects, so that
# checkpoints saved before a move restore and old imports keep working.
MOVED_MODULES = {
    **{
        f"rllib_seac.{name}": f"rllib_seac.{package}.{name}"
        for package, names in {
            "seac": (
                "config",
                "algorithm",
                "learner",
                "losses",
                "rl_module",
                "data_parallel",
                "authors_import",
                "env_runner",
                "rollouts",
            ),
            "envs": ("env_batch",),
            "analysis": ("evaluation", "rendering", "plotting", "labels"),
        }.items()
        for name in names
    },
    # rllib_seac/sampling/ (env runner, rollouts, env batch) until they moved to seac/
    # and envs/; its package name maps to seac/ so that its submodules resolve.
    "rllib_seac.sampling": "rllib_seac.seac",
    "rllib_seac.sampling.env_runner": "rllib_seac.seac.env_runner",
    "rllib_seac.sampling.rollouts": "rllib_seac.seac.rollouts",
    "rllib_seac.sampling.env_batch": "rllib_seac.envs.env_batch",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name (MOVED_MODULES) as the module it moved to."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module):
        pass  # already executed under its new name


# First: an old name must never be found as a file elsewhere on the path (say, an
# editable install of an older checkout).
if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModuleFinder())
