"""The per-agent replay buffers D^1..D^N of App. D, sampled M/N from each for SEQL."""

from __future__ import annotations

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.utils.replay_buffers.multi_agent_episode_buffer import (
    MultiAgentEpisodeReplayBuffer,
)

from rllib_seac.checkpoints import CheckpointError

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


class AgentReplayBuffers:
    """D^1..D^N of App. D as numpy ring buffers, for SEQL's direct loop: one row per
    env step and agent (o, a, r, o', terminated), the oldest overwritten past
    `capacity`. The arrays are allocated at full capacity but the OS backs only the
    rows written."""

    def __init__(self, n_agents: int, capacity: int, obs_shape: tuple):
        self.capacity = int(capacity)
        rows = (n_agents, self.capacity)
        self.obs = np.empty((*rows, *obs_shape), np.float32)
        self.next_obs = np.empty((*rows, *obs_shape), np.float32)
        self.actions = np.empty(rows, np.int64)
        self.rewards = np.empty(rows, np.float32)
        self.terminateds = np.empty(rows, bool)
        self.size = 0
        self._next = 0

    def add(self, obs, actions, rewards, next_obs, terminateds) -> None:
        """One env step of every agent: arrays [N, ...]."""
        row = self._next
        self.obs[:, row] = obs
        self.actions[:, row] = actions
        self.rewards[:, row] = rewards
        self.next_obs[:, row] = next_obs
        self.terminateds[:, row] = terminateds
        self._next = (row + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def get_state(self) -> dict:
        """The filled rows, compactly, in their ring order (so that a restored buffer
        draws the same samples): observations, rewards and terminateds as stored,
        actions in the smallest integer type that holds them, and next observations
        only for the rows whose next observation is not the next row's observation
        (the ends of episodes and the newest row); `set_state` fills in the rest."""
        n = self.size
        actions = self.actions[:, :n]
        lo, hi = (int(f(actions, initial=0)) for f in (np.min, np.max))
        kept = np.flatnonzero(~_next_obs_is_next_row(self.obs, self.next_obs, n))
        return {
            "capacity": self.capacity,
            "size": n,
            "next": self._next,
            "obs": self.obs[:, :n].copy(),
            "actions": actions.astype(
                np.result_type(np.min_scalar_type(lo), np.min_scalar_type(hi))
            ),
            "rewards": self.rewards[:, :n].copy(),
            "terminateds": self.terminateds[:, :n].copy(),
            "next_obs_rows": kept,
            "next_obs": self.next_obs[:, kept],
        }

    def set_state(self, state: dict) -> None:
        """Holds what `get_state` returned, in the same rows."""
        if state["capacity"] != self.capacity:
            raise CheckpointError(
                f"replay_buffer_config['capacity'] is {self.capacity}, but the checkpoint's "
                f"replay buffers hold {state['capacity']} steps: restore them with the "
                "checkpoint's capacity (SEQL.from_checkpoint(path) keeps it)."
            )
        n = state["size"]
        self.obs[:, :n] = state["obs"]
        self.actions[:, :n] = state["actions"]
        self.rewards[:, :n] = state["rewards"]
        self.terminateds[:, :n] = state["terminateds"]
        for start in range(0, n, _CHUNK_ROWS):
            rows = np.arange(start, min(start + _CHUNK_ROWS, n))
            self.next_obs[:, rows] = self.obs[:, (rows + 1) % n]
        self.next_obs[:, state["next_obs_rows"]] = state["next_obs"]
        self.size, self._next = n, state["next"]

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """`n` transitions of each agent's buffer, uniformly with replacement (as RLlib's
        episode buffer and the authors' code), by RLlib column: arrays [N, n, ...],
        row k drawn from D^k."""
        rows = rng.integers(0, self.size, (len(self.obs), n))
        agents = np.arange(len(self.obs))[:, None]
        return {
            Columns.OBS: self.obs[agents, rows],
            Columns.ACTIONS: self.actions[agents, rows],
            Columns.REWARDS: self.rewards[agents, rows],
            Columns.NEXT_OBS: self.next_obs[agents, rows],
            Columns.TERMINATEDS: self.terminateds[agents, rows],
        }


# Rows compared or copied at a time by get_state/set_state, which bounds their
# temporary arrays for a buffer of 1e6 steps.
_CHUNK_ROWS = 65_536


def _next_obs_is_next_row(obs: np.ndarray, next_obs: np.ndarray, n: int) -> np.ndarray:
    """[n] bools: whether row r's next observations are, bit for bit, row (r + 1) % n's
    observations for every agent (true within an episode)."""
    same = np.empty(n, bool)
    bits = np.dtype(f"u{obs.dtype.itemsize}")  # bit for bit: -0.0 is not 0.0, NaN is NaN
    for start in range(0, n, _CHUNK_ROWS):
        rows = np.arange(start, min(start + _CHUNK_ROWS, n))
        a = next_obs[:, rows].reshape(len(obs), len(rows), -1).view(bits)
        b = obs[:, (rows + 1) % n].reshape(len(obs), len(rows), -1).view(bits)
        same[rows] = (a == b).all(axis=(0, 2))
    return same


def agent_parts(batch: dict[str, np.ndarray]) -> list[dict[str, torch.Tensor]]:
    """`AgentReplayBuffers.sample`'s columns [N, n, ...] as N parts of torch tensors,
    part k from D^k (what `learner_step.learner_update` reads)."""
    return [
        {col: torch.from_numpy(x[k]) for col, x in batch.items()}
        for k in range(len(batch[Columns.REWARDS]))
    ]
