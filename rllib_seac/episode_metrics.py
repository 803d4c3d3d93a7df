"""The per-episode figures RLlib's env runners report, logged the same way by SEAC's
env runner and SEQL's in-process loop."""

from __future__ import annotations

import numpy as np
from ray.rllib.utils.metrics import (
    EPISODE_AGENT_RETURN_MEAN,
    EPISODE_LEN_MEAN,
    EPISODE_RETURN_MAX,
    EPISODE_RETURN_MEAN,
    EPISODE_RETURN_MIN,
    NUM_EPISODES,
    NUM_EPISODES_LIFETIME,
)


def log_episode(metrics, agent_ids, returns: np.ndarray, length: int, window: int) -> None:
    """One ended episode: its return summed over agents (mean, min, max over the last
    `window` episodes), each agent's return, its length, and the episode counts."""
    total = float(returns.sum())
    metrics.log_dict(
        {
            EPISODE_RETURN_MEAN: total,
            EPISODE_LEN_MEAN: length,
            EPISODE_AGENT_RETURN_MEAN: {aid: float(r) for aid, r in zip(agent_ids, returns)},
        },
        window=window,
    )
    metrics.log_value(EPISODE_RETURN_MIN, total, reduce="min", window=window)
    metrics.log_value(EPISODE_RETURN_MAX, total, reduce="max", window=window)
    metrics.log_value(NUM_EPISODES, 1, reduce="sum")
    metrics.log_value(NUM_EPISODES_LIFETIME, 1, reduce="lifetime_sum")
