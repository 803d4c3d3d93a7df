"""When the learner's direct path runs RLlib's `after_gradient_based_update` (LR
schedules, the lr metric): every update with an LR schedule, once per report
without one (no Ray needed)."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME
from test_losses import N_ACTIONS, N_STEPS, OBS_DIM, make_streams, to_batch

from rllib_seac import SEACConfig
from rllib_seac.seac.config import agent_is_module

AGENTS = ["agent_0", "agent_1"]


def make_learner(lr):
    config = SEACConfig().training(lr=lr, n_steps=N_STEPS)
    config.agent_ids = AGENTS
    config.multi_agent(policies=set(AGENTS), policy_mapping_fn=agent_is_module)
    spaces = gym.spaces.Box(-1, 1, (OBS_DIM,)), gym.spaces.Discrete(N_ACTIONS)
    torch.manual_seed(0)
    return config.build_learner(spaces={mid: spaces for mid in AGENTS})


def batch(seed: int) -> MultiAgentBatch:
    modules = {mid: [m] for m, mid in enumerate(AGENTS)}
    columns = to_batch(make_streams(len(AGENTS), seed=seed), modules)
    return MultiAgentBatch({m: SampleBatch(b) for m, b in columns.items()}, env_steps=1)


def lrs(learner) -> list[float]:
    return [learner.get_optimizers_for_module(mid)[0][1].param_groups[0]["lr"] for mid in AGENTS]


def test_an_lr_schedule_moves_at_every_update():
    learner = make_learner([[0, 1e-3], [1000, 1e-4]])
    for seed, t in enumerate([0, 500, 1000]):
        learner.update(
            batch=batch(seed),
            timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: t},
            _no_metrics_reduce=True,
        )
        assert lrs(learner) == pytest.approx([1e-3 - 9e-7 * t] * 2)


def test_a_fixed_lr_is_reported():
    learner = make_learner(3e-4)
    for seed in range(3):
        learner.update(batch=batch(seed), timesteps={}, _no_metrics_reduce=True)
    results = learner.update(batch=batch(3), timesteps={})
    for mid in AGENTS:
        assert float(results[mid]["default_optimizer_learning_rate"]) == pytest.approx(3e-4)
