"""What a user overrides in SEQL's learner is what SEQL's in-process loop trains.

The loop steps a real LBF env and updates the learner in this process (no Ray
needed). A learner that changes any part of the loss takes autograd's step with that
change; the fused step, where it runs, gives the stock learner's training.
"""

from __future__ import annotations

import logging

import torch

from rllib_seac import SEQLConfig, make_env
from rllib_seac.seql.in_process.loop import InProcessLoop
from rllib_seac.seql.torch_learner import SEQLTorchLearner

LBF = "Foraging-8x8-2p-2f-v3"
STEPS = 40  # env steps of each run: 20 updates after the first 20


class ZeroLoss(SEQLTorchLearner):
    def compute_losses(self, *, fwd_out, batch):
        losses = super().compute_losses(fwd_out=fwd_out, batch=batch)
        return {mid: 0.0 * loss for mid, loss in losses.items()}


class HuberQLoss(SEQLTorchLearner):
    @staticmethod
    def q_loss(q_taken, target):
        return torch.nn.functional.smooth_l1_loss(q_taken, target)


def run_loop(learner_class=None, fused_update="auto"):
    config = (
        SEQLConfig()
        .environment(LBF, env_config={"max_episode_steps": 25})
        .training(
            train_batch_size_per_learner=16,
            num_steps_sampled_before_learning_starts=20,
            fused_update=fused_update,
        )
        .debugging(seed=0)
    )
    if learner_class is not None:
        config.training(learner_class=learner_class)
    config.validate()
    env = make_env(LBF, {"max_episode_steps": 25})
    aid = env.possible_agents[0]
    spaces = (env.get_observation_space(aid), env.get_action_space(aid))
    env.close()
    torch.manual_seed(0)
    learner = config.build_learner(spaces={aid: spaces for aid in config.agent_ids})
    before = q_weights(learner)
    loop = InProcessLoop(config)
    try:
        loop.run(STEPS, 0, learner)
    finally:
        loop.close()
    return learner, loop, before


def q_weights(learner) -> list[torch.Tensor]:
    return [
        p.detach().clone()
        for mid in sorted(learner.module.keys())
        for main, _ in learner.module[mid].get_target_network_pairs()
        for p in main.parameters()
    ]


def assert_same(a: list, b: list) -> None:
    """Equal to float32 rounding: Adam normalises each step, so a gradient of ~0
    summed in another order can move a weight by up to ~lr (1e-4) differently."""
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=2e-5)


def test_the_stock_learner_trains_with_the_fused_step_as_with_autograd():
    fused, fused_loop, _ = run_loop()
    autograd, autograd_loop, _ = run_loop(fused_update="off")
    assert fused_loop._fused is not None and fused_loop._fused_off is None
    assert autograd_loop._fused is None and autograd_loop._fused_off == "fused_update='off'"
    assert_same(q_weights(fused), q_weights(autograd))


def test_a_learner_with_a_zero_loss_leaves_every_q_network_unchanged():
    learner, loop, before = run_loop(ZeroLoss)
    for p, q in zip(q_weights(learner), before, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert loop._fused is None and "ZeroLoss overrides compute_losses" in loop._fused_off


def test_a_changed_term_trains_like_autograd_with_that_change(caplog):
    with caplog.at_level(logging.INFO, logger="rllib_seac.seql.in_process.loop"):
        default, loop, _ = run_loop(HuberQLoss)
    assert loop._fused is None and loop._fused_off == "HuberQLoss overrides q_loss"
    assert sum("HuberQLoss overrides q_loss" in r.getMessage() for r in caplog.records) == 1
    autograd, _, _ = run_loop(HuberQLoss, fused_update="off")
    assert_same(q_weights(default), q_weights(autograd))
    stock, _, _ = run_loop(fused_update="off")
    assert any(not torch.equal(p, q) for p, q in zip(q_weights(default), q_weights(stock)))
