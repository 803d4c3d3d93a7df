"""The per-agent replay buffers D^1..D^N of App. D, sampled M/N from each for SEQL."""

from __future__ import annotations

from ray.rllib.utils.replay_buffers.multi_agent_episode_buffer import (
    MultiAgentEpisodeReplayBuffer,
)

# RLlib builds the buffer from this dotted name (and recognises an episode buffer by
# the "EpisodeReplayBuffer" in it).
BUFFER_TYPE = "rllib_seac.seql.replay_buffer.SharedExperienceEpisodeReplayBuffer"


class SharedExperienceEpisodeReplayBuffer(MultiAgentEpisodeReplayBuffer):
    """RLlib's multi-agent episode buffer, which keeps each agent's transitions apart
    (one module per agent: D^i) and samples each module independently.

    DQN asks for the batch size M. With `shared_experience`, each agent's buffer
    gives M // N transitions (N agents), so the batch is M transitions from all
    buffers, as in SEQL (the authors' code also rounds M / N down); without it, each
    gives M (IQL).
    """

    def __init__(self, *args, shared_experience: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.shared_experience = shared_experience

    def sample(self, num_items=None, **kwargs):
        if self.shared_experience and num_items is not None:
            num_items = per_agent_items(num_items, len(self.get_module_ids()))
        return super().sample(num_items, **kwargs)


def per_agent_items(batch_size: int, n_agents: int) -> int:
    """M // N, the transitions SEQL samples from each agent's buffer."""
    return batch_size // max(1, n_agents)
