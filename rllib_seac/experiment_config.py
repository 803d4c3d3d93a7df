"""An algorithm's config as `rllib train` builds it, for scripts and benchmarks too.

`algorithm_config(run)` is the default config of the algorithm a name gives (SEAC,
SEQL or any algorithm RLlib registers); `trial_settings(run, env, config)` the
config keys of one trial: the given settings and, for RLlib's own algorithms on a
multi-agent env, a module per agent (IPPO for PPO) or one shared by all agents
(`shared_policy: true`). This package's algorithms map agents to modules themselves.

    config = algorithm_config("PPO").environment("rware-tiny-2ag-v2")
    config.update_from_dict(trial_settings("PPO", "rware-tiny-2ag-v2", {"lr": 1e-4}))
"""

from __future__ import annotations

# A setting of this package's configs; for RLlib's algorithms the CLI's key that
# gives all agents one module.
SHARED_POLICY = "shared_policy"
SINGLE_AGENT_BUFFERS = ("EpisodeReplayBuffer", "PrioritizedEpisodeReplayBuffer")


class ExperimentConfigError(ValueError):
    """A name that is no algorithm Ray knows, or no RLlib algorithm."""


def algorithm_config(run: str):
    """The default config of the algorithm `run` names (SEAC or any RLlib one)."""
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.tune.registry import get_trainable_cls

    try:
        cls = get_trainable_cls(run)
    except Exception:  # TuneError: unknown name
        raise ExperimentConfigError(
            f"run: {run} is not an algorithm Ray knows (e.g. SEAC, PPO, APPO, IMPALA, DQN)."
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise ExperimentConfigError(f"run: {run} is not an RLlib algorithm.")
    return cls.get_default_config()


def manages_agents(config) -> bool:
    """Whether the algorithm maps agents to modules itself (this package's do, with
    their `shared_policy` setting); RLlib's own get one module per agent from here."""
    return hasattr(config, SHARED_POLICY)


def multi_agent_settings(env: str, env_config: dict, shared: bool) -> dict | None:
    """`multiagent` settings for an RLlib algorithm on a multi-agent env: one module
    per agent id of the env (IPPO for PPO), or one module all agents share; None for
    a single-agent gymnasium env."""
    import gymnasium as gym

    from rllib_seac.agent_modules import default_grouping
    from rllib_seac.envs import make_env

    try:
        made = make_env(env, env_config)
    except ValueError:
        if env in gym.registry:
            return None  # a single-agent gymnasium env (rware's own ids are ours first)
        raise
    try:
        agents = list(getattr(made, "possible_agents", None) or [])
    finally:
        made.close()
    if not agents:
        return None
    return default_grouping(agents, shared)


def trial_settings(run: str, env: str, config: dict, point: dict | None = None) -> dict:
    """The config keys of one trial: `config`, one grid point, and for RLlib's
    algorithms on a multi-agent env the module of each agent."""
    settings = {**config, **(point or {})}
    defaults = algorithm_config(run)
    if manages_agents(defaults):
        return settings
    shared = bool(settings.pop(SHARED_POLICY, False))
    multi_agent = multi_agent_settings(env, settings.get("env_config") or {}, shared)
    if not multi_agent:
        return settings
    settings["multiagent"] = multi_agent
    # Off-policy algorithms (DQN, SAC) default to a single-agent episode buffer,
    # which cannot hold multi-agent episodes; RLlib has a multi-agent twin of each.
    buffer = {**(getattr(defaults, "replay_buffer_config", None) or {})}
    buffer.update(settings.get("replay_buffer_config") or {})
    if buffer.get("type") in SINGLE_AGENT_BUFFERS:
        settings["replay_buffer_config"] = {**buffer, "type": f"MultiAgent{buffer['type']}"}
    return settings


def grid_points(grid: dict) -> list[dict]:
    """Each grid value once, the other grid settings at their first value."""
    first = {key: values[0] for key, values in grid.items()}
    return [first] + [{**first, k: v} for k, values in grid.items() for v in values[1:]]
