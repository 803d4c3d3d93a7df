"""Full episodes of a multi-agent env with given policies: what `rllib evaluate`
runs on a checkpoint, and SEAC's evaluation while training (`evaluation_interval`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def run_episode(
    env,
    act: Callable[[dict], dict],
    agents,
    *,
    seed: int | None = None,
    max_steps: int | None = None,
    on_frame: Callable[[], None] | None = None,
) -> tuple[dict[str, float], int]:
    """One episode to its end (or `max_steps`): each agent's return, and the episode's
    length. `act` maps the agents' observations to their actions; `on_frame` is
    called after the reset and after every step."""
    obs, _ = env.reset(seed=seed)
    returns = dict.fromkeys(agents, 0.0)
    steps = 0
    if on_frame:
        on_frame()
    while True:
        obs, rewards, terminateds, truncateds, _ = env.step(act(obs))
        for aid in returns:
            returns[aid] += rewards.get(aid, 0.0)
        steps += 1
        if on_frame:
            on_frame()
        if terminateds["__all__"] or truncateds["__all__"] or steps == max_steps:
            return returns, steps


def episode_metrics(returns: list[dict[str, float]], lengths: list[int]) -> dict:
    """RLlib's episode figures (its `env_runners` keys) of finished episodes; the
    episode return is summed over agents."""
    totals = [sum(r.values()) for r in returns]
    agents = list(returns[0]) if returns else []
    return {
        "episode_return_mean": float(np.mean(totals)),
        "episode_return_min": float(np.min(totals)),
        "episode_return_max": float(np.max(totals)),
        "episode_len_mean": float(np.mean(lengths)),
        "episode_len_min": int(np.min(lengths)),
        "episode_len_max": int(np.max(lengths)),
        "num_episodes": len(totals),
        "num_env_steps_sampled": int(np.sum(lengths)),
        "agent_episode_returns_mean": {
            aid: float(np.mean([r[aid] for r in returns])) for aid in agents
        },
    }
