"""Names for reports and figures: the paper's name for a config's algorithm, an env's name."""

from __future__ import annotations

# SEACConfig's defaults, for settings a Tune trial's params leave out.
DEFAULT_LAMBDA = 1.0
DEFAULT_SHARED = False


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


def env_label(env) -> str:
    """A registered env name as it is, an env class by its name."""
    return getattr(env, "__name__", str(env))
