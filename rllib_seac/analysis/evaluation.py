"""Evaluation of a checkpoint: full episodes with the agents' evaluation policies.

The paper evaluates its actor-critic agents with stochastic policies (App. B), so
SEAC's actions are sampled from pi_i(.|o^i), not taken greedily; its Q-learning
agents (SEQL, IQL: App. D) are evaluated greedily, epsilon = 0, a^i = argmax_a
Q_i(o^i, a). PPO's agents (SE-PPO, and RLlib's PPO: IPPO, or one module all agents
share) are actor-critic agents too, sampled alike. Only the config and the
RLModules are read from the checkpoint: no learner, env runner or Ray actor is
built.

Reading runs no code from the checkpoint (`safe_config`, `safe_modules`): its
settings and weights are read as data through `checkpoints.read_pickle`, its
networks are built by this package. A checkpoint that needs more (a grouping of
agents, an env class or RLModule of the user's) is refused with a pointer to
`trust=True` (`--trust-checkpoint`), which reads it with RLlib's own unpickling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule

from rllib_seac.agent_modules import agent_is_module, all_agents_share, module_of_each_agent
from rllib_seac.analysis.labels import algorithm_name, env_label
from rllib_seac.checkpoints import (
    CONFIG_FILE,
    MODULES_DIR,
    CheckpointError,
    find_checkpoint,
    global_name,
    read_pickle,
    saved_config,
)
from rllib_seac.envs import episodes, make_env
from rllib_seac.seac.config import SEACConfig
from rllib_seac.seac.rl_module import SEACTorchRLModule
from rllib_seac.seeding import action_generator
from rllib_seac.seppo import SEPPOConfig
from rllib_seac.seql import SEQLConfig

STOCHASTIC = "stochastic policies"
GREEDY = "greedy policies (epsilon = 0)"
TRUST_HINT = (
    "give --trust-checkpoint (Python: trust=True) to read it with RLlib's unpickling, "
    "which runs code the checkpoint names: only for checkpoints you trust"
)
# Config classes and agent groupings a checkpoint may name, by their pickled names
# (old module paths too: rllib_seac.MOVED_MODULES). SEPPOConfig is a PPOConfig.
CONFIG_CLASSES = {
    **{f"{m}.SEACConfig": SEACConfig for m in ("rllib_seac.seac.config", "rllib_seac.config")},
    "rllib_seac.seql.config.SEQLConfig": SEQLConfig,
    "rllib_seac.seppo.seppo.SEPPOConfig": SEPPOConfig,
    "ray.rllib.algorithms.ppo.ppo.PPOConfig": PPOConfig,
}
EVALUATED_CONFIGS = (SEACConfig, SEQLConfig, PPOConfig)
EVALUATED = "SEAC's, SEQL's or PPO's (SE-PPO, IPPO)"
# RLlib's dataclass of a default RLModule's settings (`rl_module(model_config=...)`),
# pickled by name; its fields are plain data, which RLlib also takes as a dict.
MODEL_CONFIG_CLASS = "ray.rllib.core.rl_module.default_model_config.DefaultModelConfig"
MAPPING_FUNCTIONS = {
    f"{m}.{f.__name__}": f
    for m in ("rllib_seac.agent_modules", "rllib_seac.seac.config", "rllib_seac.config")
    for f in (agent_is_module, all_agents_share)
}


class AgentPolicies:
    """The agents' policies from a checkpoint, by agent id, with the config they trained
    with: SEAC's and PPO's actors, sampled, or SEQL's Q-networks, greedy."""

    def __init__(self, checkpoint, trust: bool = False, imports=()):
        """`trust`: read the checkpoint with RLlib's unpickling (runs the code it
        names); else as data only. `imports`: the modules the user imported, whose
        envs a "module:name" env of the checkpoint may be."""
        self.checkpoint = find_checkpoint(checkpoint)
        if trust:
            self.config = saved_config(self.checkpoint)
        else:
            self.config = safe_config(self.checkpoint, imports)
        if not isinstance(self.config, EVALUATED_CONFIGS):
            raise CheckpointError(
                f"{self.checkpoint} is a {type(self.config).__name__} checkpoint, not {EVALUATED}."
            )
        self.greedy = isinstance(self.config, SEQLConfig)
        self.kind = GREEDY if self.greedy else STOCHASTIC
        spaces = self._agent_spaces()
        module_ids = module_of_each_agent(self.config.policy_mapping_fn, list(spaces))
        module_spaces = {}
        for (aid, agent_spaces), mid in zip(spaces.items(), module_ids):
            if not (self.checkpoint / MODULES_DIR / mid).is_dir():
                raise CheckpointError(
                    f"{self.checkpoint} has no module for agent {aid} "
                    f"({MODULES_DIR / mid} is missing): it would act untrained."
                )
            module_spaces.setdefault(mid, agent_spaces)  # the agents of a module share spaces
        if trust:
            modules = MultiRLModule.from_checkpoint(self.checkpoint / MODULES_DIR)
        else:
            modules = self._safe_modules(module_spaces)
        self.actors = {
            aid: _policy_net(modules[mid], self.greedy) for aid, mid in zip(spaces, module_ids)
        }

    def _agent_spaces(self) -> dict:
        """Agent id -> its (observation, action) spaces, for the agents that act: those
        SEAC's and SEQL's configs saved, else (PPO's configs save none) the env's.
        The actions must be Discrete: every policy here is categorical over them."""
        env = self.make_env()
        try:
            agents = getattr(self.config, "agent_ids", None) or list(env.possible_agents)
            spaces = {aid: (env.observation_spaces[aid], env.action_spaces[aid]) for aid in agents}
        finally:
            env.close()
        for aid, (_, actions) in spaces.items():
            if not isinstance(actions, gym.spaces.Discrete):
                raise CheckpointError(
                    f"{self.checkpoint}: agent {aid} acts in {actions}; evaluation reads "
                    "categorical policies, over Discrete actions only."
                )
        return spaces

    def _safe_modules(self, module_spaces: dict) -> dict:
        """The checkpoint's modules, built here from its config and the env's spaces
        (module id -> its agents' spaces), their weights read as data."""
        spec = self.config.get_multi_rl_module_spec(spaces=module_spaces)
        modules = {}
        for mid in module_spaces:
            module = spec.rl_module_specs[mid].build()
            if hasattr(module, "make_target_networks"):  # SEQL's target Q-networks
                module.make_target_networks()
            file = self.checkpoint / MODULES_DIR / mid / "module_state.pkl"
            load_weights(module, read_pickle(file, "module state"), file)
            modules[mid] = module
        return modules

    def make_env(self, **extra_config):
        """The checkpoint's env with its env config (and `extra_config`)."""
        try:
            return make_env(self.config.env, {**self.config.env_config, **extra_config})
        except ValueError as e:
            raise CheckpointError(
                f"cannot make the checkpoint's env {env_label(self.config.env)}: {e}"
            ) from None

    @torch.no_grad()
    def act(self, obs: dict, generator: torch.Generator) -> dict:
        """Samples a^i ~ pi_i(.|o^i) for every agent i (SEAC, PPO), or takes the argmax
        of Q_i(o^i, .) (SEQL)."""
        actions = {}
        for aid, actor in self.actors.items():
            out = actor(torch.as_tensor(obs[aid]).unsqueeze(0))
            if self.greedy:
                actions[aid] = int(out.argmax(dim=-1))
            else:
                probs = torch.softmax(out, dim=-1)
                actions[aid] = int(torch.multinomial(probs, 1, generator=generator))
        return actions


def safe_config(checkpoint, imports=()):
    """The config (SEAC's, SEQL's, SE-PPO's or RLlib's PPO's) a checkpoint was saved
    with, read as data: a fresh config of its class with the saved settings that are
    plain data (numbers, strings, lists, dicts, a DefaultModelConfig's fields), the
    agents' grouping one of this package's. Settings that are code (callbacks, a custom
    RLModule) keep their defaults: evaluation does not use them, and a custom module's
    weights do not fit the default one (`load_weights` says so). An env given as code
    (a class, or a "module:name" spec) is made only from a module in `imports`, which
    the user imported."""
    file = Path(checkpoint) / CONFIG_FILE
    if not file.is_file():
        raise CheckpointError(f"{checkpoint} has no {CONFIG_FILE}: not an algorithm checkpoint")
    saved = read_pickle(file, "checkpoint config")
    try:
        (state, *_), _ = saved["ctor_args_and_kwargs"]
        name = global_name(state["class"])
    except (TypeError, KeyError, ValueError):
        raise CheckpointError(f"{file} holds no algorithm config.") from None
    if name not in CONFIG_CLASSES:
        kind = (name or "unknown").rpartition(".")[2]
        raise CheckpointError(f"{checkpoint} is a {kind} checkpoint, not {EVALUATED}.")
    config = CONFIG_CLASSES[name]()
    mapping = state.get("policy_mapping_fn")
    if global_name(mapping) not in MAPPING_FUNCTIONS:
        raise CheckpointError(
            f"{checkpoint} maps agents to modules with its own policy_mapping_fn "
            f"({global_name(mapping) or type(mapping).__name__}), which is code; {TRUST_HINT}."
        )
    env = _known_env(checkpoint, state.get("env"), imports)
    for key, value in state.items():
        value = _model_config_fields(value)
        if key not in ("class", "policy_mapping_fn") and hasattr(config, key) and _is_data(value):
            config.__dict__[key] = value
    config.policy_mapping_fn = MAPPING_FUNCTIONS[global_name(mapping)]
    config.env = env
    # SEAC's and SEQL's configs save their env's agents; PPO's have none (_agent_spaces).
    if hasattr(config, "agent_ids") and not (
        isinstance(config.agent_ids, list) and config.agent_ids
    ):
        raise CheckpointError(f"{file} names no agents (agent_ids).")
    return config


def _model_config_fields(value):
    """A DefaultModelConfig read as data (a StandIn) as the dict of its fields, which
    the config reads as it reads the dataclass; any other value as it is."""
    if global_name(type(value)) == MODEL_CONFIG_CLASS:
        return dict(vars(value))
    return value


def _is_data(value) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(map(_is_data, value))
    if isinstance(value, dict):
        return all(_is_data(k) and _is_data(v) for k, v in value.items())
    return False


def _known_env(checkpoint, env, imports):
    """The checkpoint's env: a name, or code (a "module:name" spec, a class) from a
    module the user imported (--import); making any other would run code the
    checkpoint names."""
    import importlib

    from rllib_seac.envs import is_env_spec

    if isinstance(env, str) and not is_env_spec(env):
        return env
    if isinstance(env, str):
        module, shown = env.split(":", 1)[0], env
    elif global_name(env):
        module, shown = env.__module__, global_name(env)
    else:
        raise CheckpointError(f"{checkpoint}'s env is a {type(env).__name__}, not a name.")
    if module not in set(imports or ()):
        raise CheckpointError(
            f"{checkpoint}'s env {shown} imports and calls code from {module}: give "
            f"--import {module} if you know that module, or --trust-checkpoint."
        )
    if isinstance(env, str):
        return env
    found = importlib.import_module(module)
    for part in env.__qualname__.split("."):
        found = getattr(found, part, None)
    if not callable(found):
        raise CheckpointError(f"{checkpoint}'s env {shown} is not in {module}.")
    return found


def load_weights(module, state, file) -> None:
    """`state` (a module's saved tensors, read as data) into `module`: the same names
    and shapes, or a CheckpointError naming `file`."""
    expected = module.state_dict()
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise CheckpointError(f"{file} holds no module weights (a dict of arrays).")
    if set(state) != set(expected):
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        raise CheckpointError(
            f"{file} does not fit the module this config builds (missing {missing}, "
            f"unexpected {extra}): a module of another kind; {TRUST_HINT}."
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{file}: {key} has shape {tuple(value.shape)}, the module built for the "
                f"checkpoint's env and config has {tuple(expected[key].shape)}."
            )
    module.load_state_dict({k: torch.as_tensor(v.copy()) for k, v in state.items()})


def _policy_net(module, greedy: bool):
    """Observation batch -> the action logits (SEAC's actor; PPO's encoder and pi head,
    or any other module's, through its inference pass), or SEQL's Q-values."""
    if greedy:
        return lambda obs: module.compute_q_values({Columns.OBS: obs})["qf_preds"]
    if isinstance(module, SEACTorchRLModule):
        # Called directly: RLlib's forward_inference switches the module to eval mode
        # (and back, if it was training) at every call, which triples a step's cost.
        return module.actor
    module.eval()  # once, so that forward_inference does not switch it back every call
    return lambda obs: module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]


def run_episode(
    env,
    policies: AgentPolicies,
    generator: torch.Generator,
    *,
    seed: int | None = None,
    max_steps: int | None = None,
    on_frame: Callable[[], None] | None = None,
) -> dict[str, float]:
    """One episode to its end (or `max_steps`); each agent's return. `on_frame` is
    called after the reset and after every step. (SEAC's evaluation while training
    runs the same episodes: rllib_seac.envs.episodes.)"""
    returns, _ = episodes.run_episode(
        env,
        lambda obs: policies.act(obs, generator),
        policies.actors,
        seed=seed,
        max_steps=max_steps,
        on_frame=on_frame,
    )
    return returns


def mean_std(values) -> str:
    """Table 1's format, e.g. 45.11 ± 2.90."""
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


@dataclass
class Evaluation:
    checkpoint: str
    env: str
    algorithm: str
    seed: int | None
    agent_returns: dict[str, list[float]]  # agent -> its return in each episode
    policy: str = STOCHASTIC  # how actions were chosen

    @property
    def total_returns(self) -> list[float]:
        """Each episode's return summed over agents, as the paper reports it."""
        return [float(sum(r)) for r in zip(*self.agent_returns.values())]

    def to_dict(self) -> dict:
        def stats(values):
            return {"mean": float(np.mean(values)), "std": float(np.std(values))}

        return {
            "checkpoint": self.checkpoint,
            "env": self.env,
            "algorithm": self.algorithm,
            "episodes": len(self.total_returns),
            "seed": self.seed,
            "policy": self.policy,
            "total_return": stats(self.total_returns),
            "agent_returns": {aid: stats(r) for aid, r in self.agent_returns.items()},
            "episode_total_returns": self.total_returns,
        }

    def report(self) -> str:
        n = len(self.total_returns)
        width = max(len("total return"), *map(len, self.agent_returns))
        lines = [
            f"{self.algorithm} on {self.env}, {n} episodes with {self.policy} "
            f"(mean ± std over episodes)",
            f"checkpoint: {self.checkpoint}",
            f"{'total return':<{width}}  {mean_std(self.total_returns)}",
        ]
        lines += [f"{aid:<{width}}  {mean_std(r)}" for aid, r in self.agent_returns.items()]
        return "\n".join(lines)


def evaluate(
    checkpoint, episodes: int = 100, seed: int | None = None, trust: bool = False, imports=()
) -> Evaluation:
    """Runs `episodes` full episodes of the checkpoint's agents in its env (`trust`,
    `imports`: see AgentPolicies)."""
    policies = AgentPolicies(checkpoint, trust, imports)
    env = policies.make_env()
    generator = action_generator(seed)
    returns = {aid: [] for aid in policies.actors}
    try:
        for episode in range(episodes):
            # Seeded once: later resets continue the env's own random stream.
            ep_seed = seed if episode == 0 else None
            for aid, r in run_episode(env, policies, generator, seed=ep_seed).items():
                returns[aid].append(r)
    finally:
        env.close()
    return Evaluation(
        checkpoint=str(policies.checkpoint),
        env=env_label(policies.config.env),
        algorithm=algorithm_name(vars(policies.config), policies.config.algo_class.__name__),
        seed=seed,
        agent_returns=returns,
        policy=policies.kind,
    )
