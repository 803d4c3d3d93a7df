"""Names for reports and figures: the paper's name for a config's algorithm (or
RLlib's for its own: IPPO, PPO with a shared policy, APPO, ...), an env's name."""

from __future__ import annotations

import re

# SEACConfig's defaults, for settings a Tune trial's params leave out.
DEFAULT_LAMBDA = 1.0
DEFAULT_SHARED = False
SHARED_MODULE_ID = "shared"  # rllib_seac.agent_modules.SHARED_MODULE_ID
SHARED_SUFFIX = " (shared policy)"
# Tune names a trial's directory after its trainable: PPO_rware-tiny-2ag-v2_1a2b3_00000_0_...
TRAINABLE_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9]*)_")


def variant_name(settings: dict) -> str:
    """SEQL or IQL for a SEQL config (by its `share_experience`); else SNAC for a
    shared policy, IAC for lambda 0, SEAC otherwise. `settings` is a config dict or a
    Tune trial's params (which hold only the settings it was given)."""
    if "share_experience" in settings:
        return "SEQL" if settings["share_experience"] else "IQL"
    if settings.get("shared_policy", DEFAULT_SHARED):
        return "SNAC"
    if settings.get("seac_lambda", DEFAULT_LAMBDA) == 0:
        return "IAC"
    return "SEAC"


def trial_algorithm(settings: dict, trial_dir: str = "") -> str:
    """The algorithm a Tune trial ran, by the paper's name for this package's (SEAC,
    IAC, SNAC, SEQL, IQL, SE-PPO) and RLlib's for its own: IPPO for PPO with a
    module per agent, "PPO (shared policy)" with one module for all agents, else
    the algorithm's name (APPO, IMPALA, DQN, ...).

    `settings` is the trial's flattened config ("a/b" keys: result.json's full config,
    or params.json); `trial_dir` the trial directory's name, which Tune starts with
    the algorithm's name.
    """
    match = TRAINABLE_PREFIX.match(trial_dir)
    return algorithm_name(settings, match.group(1) if match else None)


def algorithm_name(settings: dict, trainable: str | None) -> str:
    """`trial_algorithm`'s name for the algorithm registered as `trainable` (SEAC,
    SEPPO, PPO, ...; None where not known) with `settings`: a flattened config, or a
    config's own attributes (`vars(config)`), as a checkpoint's evaluation names it."""
    ours = "share_experience" in settings or "seac_lambda" in settings
    if trainable in ("SEAC", "SEQL") or (trainable is None and ours):
        if trainable == "SEQL" and "share_experience" not in settings:
            return "SEQL"  # params.json leaves out the default share_experience=True
        return variant_name(settings)
    if "seppo_lambda" in settings or trainable == "SEPPO":
        return "IPPO" if settings.get("seppo_lambda", DEFAULT_LAMBDA) == 0 else "SE-PPO"
    if trainable is None:
        return "unknown algorithm"
    modules = _module_ids(settings)
    if modules == {SHARED_MODULE_ID}:
        return trainable + SHARED_SUFFIX
    if trainable == "PPO" and len(modules) > 1:
        return "IPPO"
    return trainable


def _module_ids(settings: dict) -> set[str]:
    """The module ids of a flattened config: result.json's policies/<id>/...,
    params.json's multiagent/policies list, or a config's own `policies` (a dict)."""
    ids = {k.split("/")[1] for k in settings if k.startswith("policies/")}
    for key in ("multiagent/policies", "policies"):
        if isinstance(settings.get(key), (list, tuple, dict)):
            ids |= set(settings[key])
    return ids


def env_label(env) -> str:
    """A registered env name as it is, an env class by its name."""
    return getattr(env, "__name__", str(env))
