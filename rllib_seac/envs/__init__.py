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
        return env(config)
    creators = _creators()
    if env in creators:
        return creators[env](config)
    from ray.tune.registry import ENV_CREATOR, _global_registry

    if _global_registry.contains(ENV_CREATOR, env):
        return _global_registry.get(ENV_CREATOR, env)(config)
    close = difflib.get_close_matches(str(env), creators, n=5, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ValueError(
        f"Unknown env {env!r}.{hint} rllib-seac knows {len(creators)} names "
        "(rllib_seac.env_names() lists them; e.g. rware-tiny-2ag-v2, "
        "Foraging-8x8-2p-2f-coop-v3, predator-prey-sparse); other envs can "
        "be registered with ray.tune.register_env(name, creator)."
    )


def register_envs(names=None) -> None:
    """Registers this package's names with Ray, so any RLlib algorithm can use them:
    all of them, or those of `names` that are this package's (lbforaging alone has
    about 2,000 ids, each a write to Ray's store)."""
    from ray.tune.registry import register_env

    creators = _creators()
    for name in creators if names is None else [n for n in names if n in creators]:
        register_env(name, lambda cfg, c=creators[name]: c(dict(cfg)))
