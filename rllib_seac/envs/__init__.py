"""Environments by name: every id here also works as `config.environment(<name>)`."""

from __future__ import annotations

import difflib
from functools import cache, partial

from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rllib_seac.envs.lbf import LbfEnv, lbf_env_ids
from rllib_seac.envs.pettingzoo import PettingZooParallelAdapter
from rllib_seac.envs.predator_prey import ENV_NAME as PREDATOR_PREY
from rllib_seac.envs.predator_prey import PredatorPreyEnv
from rllib_seac.envs.rware import RwareEnv, rware_env_ids
from rllib_seac.envs.spaces import check_seac_spaces

__all__ = [
    "LbfEnv",
    "PettingZooParallelAdapter",
    "PredatorPreyEnv",
    "RwareEnv",
    "check_seac_spaces",
    "env_names",
    "is_env_spec",
    "make_env",
    "register_envs",
]


@cache  # the gymnasium registries are filled once, at import
def _creators() -> dict:
    return {
        **{env_id: partial(RwareEnv, env_id) for env_id in rware_env_ids()},
        **{env_id: partial(LbfEnv, env_id) for env_id in lbf_env_ids()},
        PREDATOR_PREY: PredatorPreyEnv,
    }


def env_names() -> list[str]:
    return sorted(_creators())


def make_env(env, env_config: dict | None = None) -> MultiAgentEnv:
    """Builds `env`: one of this package's names, a name given to Ray's
    `register_env`, or a MultiAgentEnv class / callable taking the env config."""
    config = dict(env_config or {})
    if callable(env):
        return _made(env, env, config)
    creators = _creators()
    if env in creators:
        return creators[env](config)
    if is_env_spec(env):
        return _made(env, _creator_from_spec(env), config)
    from rllib_seac._rllib_internals import registered_env_creator

    if creator := registered_env_creator(env):
        return _made(env, creator, config)
    close = difflib.get_close_matches(str(env), creators, n=5, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ValueError(
        f"Unknown env {env!r}.{hint} rllib-seac knows {len(creators)} names "
        "(rllib_seac.env_names() lists them; e.g. rware-tiny-2ag-v2, "
        "Foraging-8x8-2p-2f-coop-v3, predator-prey-sparse); other envs can "
        "be registered with ray.tune.register_env(name, creator)."
    )


def _made(env, creator, config: dict):
    """`creator(config)`, which must give an env: a wrong signature or another kind
    of object is a ValueError naming the env."""
    name = getattr(env, "__name__", None) or env
    try:
        instance = creator(config)
    except TypeError as e:
        raise ValueError(f"env {name!r}: calling it with the env config failed: {e}") from None
    if not (
        callable(getattr(instance, "reset", None)) and callable(getattr(instance, "step", None))
    ):
        raise ValueError(
            f"env {name!r} returned {type(instance).__name__}, not an env (an object with "
            "reset() and step(), e.g. a MultiAgentEnv)."
        )
    return instance


def is_env_spec(env) -> bool:
    """Whether `env` is a "module:name" spec (e.g. "my_pkg.envs:make_spread")."""
    return isinstance(env, str) and ":" in env and env.split(":", 1)[0] != ""


def _creator_from_spec(spec: str):
    """The env creator a "module:name" spec names: `module`'s callable `name` (a
    MultiAgentEnv class or a function of the env config), or else the env `name`
    that importing `module` registers with `ray.tune.register_env`. A spec, unlike a
    registered name, is all a checkpoint needs to make its env again."""
    import importlib

    module_name, name = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        hint = ""
        if isinstance(e, ModuleNotFoundError) and e.name == module_name.split(".")[0]:
            hint = (
                " (is its directory on the import path? Run from the directory that "
                "holds it, or set PYTHONPATH=/path/to/that/directory)"
            )
        raise ValueError(f"env {spec!r}: cannot import {module_name}: {e}{hint}") from None
    creator = getattr(module, name, None)
    if callable(creator):
        return creator
    from rllib_seac._rllib_internals import registered_env_creator

    if creator := registered_env_creator(name):
        return creator
    raise ValueError(
        f"env {spec!r}: {module_name} has no callable {name!r} and registers no env of that name."
    )


def probe_env(env, env_config: dict, algorithm: str = "SEAC"):
    """Agent ids and the shared (obs, action) spaces of `env`, from one instance;
    `algorithm` names the one whose space checks fail in the message."""
    instance = make_env(env, env_config)
    try:
        return list(instance.possible_agents), check_seac_spaces(instance, algorithm)
    finally:
        instance.close()


def register_envs(names=None) -> None:
    """Registers this package's names with Ray, so any RLlib algorithm can use them:
    all of them, or those of `names` that are this package's (lbforaging alone has
    about 2,000 ids, each a write to Ray's store)."""
    from ray.tune.registry import register_env

    creators = _creators()
    for name in creators if names is None else [n for n in names if n in creators]:
        register_env(name, lambda cfg, c=creators[name]: c(dict(cfg)))
    # A spec is made again in each process from its module, so it also works in Ray
    # workers that never ran the driver's imports.
    for spec in [n for n in names or [] if is_env_spec(n)]:
        register_env(spec, lambda cfg, s=spec: make_env(s, cfg))
