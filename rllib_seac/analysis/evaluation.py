"""Evaluation of a checkpoint: full episodes with the agents' evaluation policies.

The paper evaluates its actor-critic agents with stochastic policies (App. B), so
SEAC's actions are sampled from pi_i(.|o^i), not taken greedily; its Q-learning
agents (SEQL, IQL: App. D) are evaluated greedily, epsilon = 0, a^i = argmax_a
Q_i(o^i, a). Only the config and the RLModules are read from the checkpoint: no
learner, env runner or Ray actor is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule

from rllib_seac.agent_modules import module_of_each_agent
from rllib_seac.analysis.labels import env_label, variant_name
from rllib_seac.checkpoints import MODULES_DIR, CheckpointError, find_checkpoint, saved_config
from rllib_seac.envs import make_env
from rllib_seac.seac.config import SEACConfig
from rllib_seac.seeding import action_generator
from rllib_seac.seql import SEQLConfig

STOCHASTIC = "stochastic policies"
GREEDY = "greedy policies (epsilon = 0)"


class AgentPolicies:
    """The agents' policies from a checkpoint, by agent id, with the config they trained
    with: SEAC's actors, sampled, or SEQL's Q-networks, greedy."""

    def __init__(self, checkpoint):
        self.checkpoint = find_checkpoint(checkpoint)
        self.config = saved_config(self.checkpoint)
        if not isinstance(self.config, (SEACConfig, SEQLConfig)):
            raise CheckpointError(
                f"{self.checkpoint} is a {type(self.config).__name__} checkpoint, not "
                "SEAC's or SEQL's."
            )
        self.greedy = isinstance(self.config, SEQLConfig)
        self.kind = GREEDY if self.greedy else STOCHASTIC
        modules = MultiRLModule.from_checkpoint(self.checkpoint / MODULES_DIR)
        agents = self.config.agent_ids
        self.actors = {
            aid: _policy_net(modules[mid], self.greedy)
            for aid, mid in zip(agents, module_of_each_agent(self.config.policy_mapping_fn, agents))
        }

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
        """Samples a^i ~ pi_i(.|o^i) for every agent i (SEAC), or takes the argmax of
        Q_i(o^i, .) (SEQL)."""
        actions = {}
        for aid, actor in self.actors.items():
            out = actor(torch.as_tensor(obs[aid]).unsqueeze(0))
            if self.greedy:
                actions[aid] = int(out.argmax(dim=-1))
            else:
                probs = torch.softmax(out, dim=-1)
                actions[aid] = int(torch.multinomial(probs, 1, generator=generator))
        return actions


def _policy_net(module, greedy: bool):
    """Observation batch -> SEAC's action logits, or SEQL's Q-values."""
    if not greedy:
        return module.actor
    return lambda obs: module.compute_q_values({Columns.OBS: obs})["qf_preds"]


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
    called after the reset and after every step."""
    obs, _ = env.reset(seed=seed)
    returns = dict.fromkeys(policies.actors, 0.0)
    steps = 0
    if on_frame:
        on_frame()
    while True:
        obs, rewards, terminateds, truncateds, _ = env.step(policies.act(obs, generator))
        for aid in returns:
            returns[aid] += rewards[aid]
        steps += 1
        if on_frame:
            on_frame()
        if terminateds["__all__"] or truncateds["__all__"] or steps == max_steps:
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


def evaluate(checkpoint, episodes: int = 100, seed: int | None = None) -> Evaluation:
    """Runs `episodes` full episodes of the checkpoint's agents in its env."""
    policies = AgentPolicies(checkpoint)
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
        algorithm=variant_name(vars(policies.config)),
        seed=seed,
        agent_returns=returns,
        policy=policies.kind,
    )
