"""SEAC's fused step against autograd's, and when the learner may use it (no Ray needed).

`tests/test_losses.py` checks the autograd path (`compute_losses` + backward +
clipping and Adam) against a hand-written reference of Eqs. 4 and 5; here the fused
step (`seac/fused_step.py`, what a stock CPU learner runs) is checked against that
path: the same gradients, and the same weights and Adam state after several updates.
Then the guard: a learner or module that changes any part of the loss trains through
autograd, with that change, and a fused step that disagrees with autograd is not used.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from test_losses import make_learner, make_streams, to_batch

from rllib_seac.columns import REWARDS
from rllib_seac.numerics.clipping import clip_global_norm_, clip_global_norm_rows_
from rllib_seac.numerics.stacked_mlp import layers_of, mlp_backward, mlp_forward
from rllib_seac.seac.fused_step import FusedStep
from rllib_seac.seac.learner import SEACTorchLearner
from rllib_seac.seac.rl_module import SEACTorchRLModule

CASES = {
    "seac-2": dict(n_agents=2),
    "seac-3": dict(n_agents=3),
    "seac-lambda-0.3": dict(n_agents=3, seac_lambda=0.3),
    "iac": dict(n_agents=3, seac_lambda=0.0),
    "authors-target": dict(n_agents=3, seac_target="authors"),
    "snac": dict(n_agents=2, shared=True),
}


def learner_batch(learner, streams, reward_scale=1.0):
    modules = {
        mid: [int(a.split("_")[1]) for a in agents]
        for mid, agents in learner.config.module_agents().items()
    }
    batch = to_batch(streams, modules)
    for columns in batch.values():
        columns["rewards"] = columns["rewards"] * reward_scale
    return batch


def multi_agent_batch(batch) -> MultiAgentBatch:
    return MultiAgentBatch({m: SampleBatch(b) for m, b in batch.items()}, env_steps=1)


def update(learner, batch, report=False) -> None:
    learner.update(batch=batch, timesteps={}, _no_metrics_reduce=not report)


def ready_fused_step(learner, batch) -> FusedStep:
    """The learner's fused step, after a first update (through autograd, as in
    training) has made Adam's state."""
    multi = multi_agent_batch(batch)
    assert learner._fused_step(multi) is None, "Adam's state is made by autograd's step"
    update(learner, multi)
    step = learner._fused_step(multi)
    assert step is not None, f"the fused step must cover this case ({learner._fused_off})"
    return step


def fused_gradients(learner, step, batch) -> tuple[list[torch.Tensor], np.ndarray]:
    """The fused step's gradients before clipping, module-major in parameter order,
    and its losses."""
    terms = step.gradients([batch[mid] for mid in learner._module_ids], learner._raise_non_finite)
    params = [p for mid in learner._module_ids for p in learner.module[mid].parameters()]
    return [g.clone() for g in step.flat_gradients(params)], terms["total"]


@pytest.mark.parametrize("truncation_rate", [0.15, 0.0])
@pytest.mark.parametrize("case", CASES)
def test_fused_gradients_equal_autograds(case, truncation_rate):
    learner, _ = make_learner(**CASES[case])
    n_agents = len(learner.config.agent_ids)
    batch = learner_batch(learner, make_streams(n_agents, seed=3, truncation_rate=truncation_rate))
    step = ready_fused_step(learner, learner_batch(learner, make_streams(n_agents, seed=4)))
    losses = learner.compute_losses(fwd_out={}, batch=batch)
    params = [p for mid in learner._module_ids for p in learner.module[mid].parameters()]
    expected = torch.autograd.grad(sum(losses.values()), params)
    got, got_losses = fused_gradients(learner, step, batch)
    torch.testing.assert_close(
        torch.as_tensor(got_losses), torch.stack([loss.detach() for loss in losses.values()])
    )
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def assert_same_weights_and_adam_state(a, b) -> None:
    for mid in a._module_ids:
        for p, q in zip(a.module[mid].parameters(), b.module[mid].parameters()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    for mid in a._module_ids:
        [(_, opt_a)], [(_, opt_b)] = (learner.get_optimizers_for_module(mid) for learner in (a, b))
        for p, q in zip(opt_a.param_groups[0]["params"], opt_b.param_groups[0]["params"]):
            for key in ("exp_avg", "exp_avg_sq", "step"):
                torch.testing.assert_close(opt_a.state[p][key], opt_b.state[q][key])


def count_calls(learner, method: str) -> list:
    calls = []
    original = getattr(learner, method)
    setattr(learner, method, lambda *args: calls.append(1) or original(*args))
    return calls


def weights(learner) -> list[torch.Tensor]:
    return [
        p.detach().clone() for mid in learner._module_ids for p in learner.module[mid].parameters()
    ]


@pytest.mark.parametrize("reward_scale", [1.0, 100.0])  # 100: every agent's clip engages
@pytest.mark.parametrize("case", ["seac-3", "iac", "snac"])
def test_updates_match_autograds_path(case, reward_scale):
    fast, _ = make_learner(**CASES[case])
    slow, _ = make_learner(**CASES[case], fused_update="off")
    calls = count_calls(fast, "_fused_update")
    for seed in range(4):
        streams = make_streams(len(fast.config.agent_ids), seed=10 + seed)
        multi = multi_agent_batch(learner_batch(fast, streams, reward_scale))
        for learner in (fast, slow):
            update(learner, multi)
    assert len(calls) == 3  # the first step makes Adam's state through autograd's path
    assert slow._fused is None and slow._fused_off == "fused_update='off'"
    assert_same_weights_and_adam_state(fast, slow)


def test_fused_step_keeps_each_modules_lr():
    """Modules whose optimizers have different lrs: one Adam call per module."""
    fast, _ = make_learner(3)
    slow, _ = make_learner(3, fused_update="off")
    for learner in (fast, slow):
        for m, mid in enumerate(learner._module_ids):
            [(_, optimizer)] = learner.get_optimizers_for_module(mid)
            optimizer.param_groups[0]["lr"] = 1e-3 * (m + 1)
    calls = count_calls(fast, "_fused_update")
    for seed in range(3):
        multi = multi_agent_batch(learner_batch(fast, make_streams(3, seed=30 + seed)))
        for learner in (fast, slow):
            update(learner, multi)
    assert len(calls) == 2
    assert_same_weights_and_adam_state(fast, slow)


def test_fused_step_follows_an_optimizer_restore():
    """RLlib's restore replaces the optimizers' state tensors: the fused step must
    notice and work on the restored state, not on its own stale copy."""
    original, _ = make_learner(3)
    restored, _ = make_learner(3)
    batches = [
        multi_agent_batch(learner_batch(original, make_streams(3, seed=20 + i), reward_scale=10))
        for i in range(6)
    ]
    for batch in batches[:3]:
        update(original, batch)
    # Its own fused step on another state (fewer updates: RLlib's set_state skips the
    # weights of a learner whose weights_seq_no is not behind the state's).
    for batch in batches[3:5]:
        update(restored, batch)
    stale = restored._fused
    assert stale is not None
    restored.set_state(original.get_state())
    calls = count_calls(restored, "_fused_update")
    for batch in batches[3:]:
        for learner in (original, restored):
            update(learner, batch)
    assert len(calls) == 3 and restored._fused is not stale
    assert_same_weights_and_adam_state(original, restored)


def test_fused_step_follows_parameters_replaced_between_reports():
    """A parameter given new memory (`p.data = ...`) between training iterations: the
    first step after the report lays the buffers out again over it, so the weights
    keep training as on autograd's path."""
    fast, _ = make_learner(3)
    slow, _ = make_learner(3, fused_update="off")
    batches = [
        multi_agent_batch(learner_batch(fast, make_streams(3, seed=40 + i))) for i in range(4)
    ]
    for batch in batches[:2]:
        for learner in (fast, slow):
            update(learner, batch, report=True)
    stale = fast._fused
    assert stale is not None
    for learner in (fast, slow):
        param = next(learner.module[learner._module_ids[1]].parameters())
        param.data = param.data.clone()
    for batch in batches[2:]:
        for learner in (fast, slow):
            update(learner, batch)
    assert fast._fused is not stale
    assert_same_weights_and_adam_state(fast, slow)


def test_non_finite_gradient_stops_naming_the_agent():
    grads = [torch.zeros(3, 4), torch.zeros(3)]
    grads[0][0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="the gradient of agent_1 is not finite"):
        clip_global_norm_(grads, 0.5, "SEAC", "agent_1")
    rows = np.zeros((2, 7), np.float32)
    rows[1, 5] = np.inf
    with pytest.raises(FloatingPointError, match="the gradient of agent_1 is not finite"):
        clip_global_norm_rows_(rows, 0.5, "SEAC", ["agent_0", "agent_1"])


def test_each_agent_is_clipped_to_global_norm_half_on_its_own():
    grads = [torch.full((3, 4), 1.0), torch.full((3,), 1.0)]
    clip_global_norm_(grads, 0.5, "SEAC", "agent_0")
    norm = torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads]))
    torch.testing.assert_close(norm, torch.tensor(0.5), rtol=1e-5, atol=1e-6)
    rows = np.ones((2, 15), np.float32)
    rows[1] = 1e-3
    small = rows[1].copy()
    clip_global_norm_rows_(rows, 0.5, "SEAC", ["agent_0", "agent_1"])
    np.testing.assert_allclose(np.linalg.norm(rows[0]), 0.5, rtol=1e-5)
    np.testing.assert_array_equal(rows[1], small)  # under the clip: unchanged


def test_non_finite_loss_stops_the_fused_step_naming_the_agent_and_cause():
    learner, _ = make_learner(2)
    step = ready_fused_step(learner, learner_batch(learner, make_streams(2)))
    before = weights(learner)
    streams = make_streams(2, seed=7)
    streams[1][REWARDS][0, 2] = float("nan")
    batch = learner_batch(learner, streams)
    with pytest.raises(FloatingPointError) as err:
        step([batch[mid] for mid in learner._module_ids], learner._raise_non_finite)
    assert "value_loss of agent_1 = nan" in str(err.value)
    assert "rewards of agent_1" in str(err.value)
    for p, q in zip(weights(learner), before):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_mlp_backward_matches_autograd_for_inputs_seen_by_all():
    torch.manual_seed(0)
    ws = [torch.randn(3, 5, 4, requires_grad=True), torch.randn(3, 2, 5, requires_grad=True)]
    bs = [torch.randn(3, 5, requires_grad=True), torch.randn(3, 2, requires_grad=True)]
    x = torch.randn(7, 4)
    outputs = mlp_forward(layers_of(ws, bs), x)
    upstream = torch.randn(3, 7, 2)
    expected = torch.autograd.grad((outputs[-1] * upstream).sum(), [ws[0], bs[0], ws[1], bs[1]])
    with torch.no_grad():
        got = mlp_backward(ws, outputs, upstream)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


def test_every_tensor_the_learner_builds_lives_on_its_device():
    learner, _ = make_learner(3)
    device = learner.device
    assert isinstance(device, torch.device)
    for name in ("_streams", "_owner", "_is_own"):
        assert getattr(learner, name).device == device, name
    assert all(t.device == device for t in learner._others)
    batch = learner_batch(learner, make_streams(3, seed=2))
    multi = MultiAgentBatch(
        {m: SampleBatch({c: v.numpy() for c, v in b.items()}) for m, b in batch.items()},
        env_steps=1,
    )
    update(learner, multi)
    for mid in learner._module_ids:
        assert all(p.device == device for p in learner.module[mid].parameters())


# --- What a user overrides is what trains ---


class ZeroLoss(SEACTorchLearner):
    def compute_losses(self, *, fwd_out, batch):
        return {
            mid: 0.0 * loss
            for mid, loss in super().compute_losses(fwd_out=fwd_out, batch=batch).items()
        }


class DoubledPolicyLoss(SEACTorchLearner):
    def policy_loss(self, logp, advantages, experience_weights):
        return 2.0 * super().policy_loss(logp, advantages, experience_weights)


class ScaledLogits(SEACTorchRLModule):
    def _forward_train(self, batch, **kwargs):
        return {Columns.ACTION_DIST_INPUTS: 3.0 * self.actor(batch[Columns.OBS])}


def train(learner, updates=4, seed=50) -> None:
    for i in range(updates):
        streams = make_streams(len(learner.config.agent_ids), seed=seed + i)
        update(learner, multi_agent_batch(learner_batch(learner, streams)))


def test_a_learner_with_a_zero_loss_leaves_every_weight_unchanged():
    learner, _ = make_learner(3, learner_class=ZeroLoss)
    before = weights(learner)
    train(learner)
    for p, q in zip(weights(learner), before):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert learner._fused is None and "ZeroLoss overrides compute_losses" in learner._fused_off


@pytest.mark.parametrize(
    "changed, fused_off",
    [
        (dict(learner_class=DoubledPolicyLoss), "DoubledPolicyLoss overrides policy_loss"),
        (dict(module_class=ScaledLogits), "module agent_0 is a ScaledLogits (_forward_train)"),
    ],
)
def test_a_changed_term_trains_like_autograd_with_that_change(changed, fused_off, caplog):
    with caplog.at_level(logging.INFO, logger="rllib_seac.seac.learner"):
        default, _ = make_learner(3, **changed)
        train(default)
    assert default._fused is None and default._fused_off.startswith(fused_off)
    assert sum(fused_off in r.getMessage() for r in caplog.records) == 1  # one line, once
    autograd, _ = make_learner(3, fused_update="off", **changed)
    train(autograd)
    assert_same_weights_and_adam_state(default, autograd)
    stock, _ = make_learner(3, fused_update="off")
    train(stock)
    assert any(not torch.equal(p, q) for p, q in zip(weights(default), weights(stock)))


def test_a_fused_step_that_disagrees_with_autograd_is_not_used(monkeypatch, caplog):
    """The self-check before first use: a fused step whose value gradient is off by
    1 % stays off, one warning says why, and training goes on through autograd."""
    loss_terms = FusedStep._loss_terms

    def wrong(self, *args):
        terms = loss_terms(self, *args)
        terms["d_values"] = terms["d_values"] * 1.01
        return terms

    monkeypatch.setattr(FusedStep, "_loss_terms", wrong)
    with caplog.at_level(logging.WARNING, logger="rllib_seac.seac.learner"):
        learner, _ = make_learner(3)
        train(learner)
    assert learner._fused is None
    assert "gradients differ from autograd's on a synthetic batch" in learner._fused_off
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    reference, _ = make_learner(3, fused_update="off")
    train(reference)
    assert_same_weights_and_adam_state(learner, reference)


def test_the_self_check_changes_no_weight_adam_state_or_statistic():
    checked, _ = make_learner(3)
    unchecked, _ = make_learner(3, fused_update="off")
    for learner in (checked, unchecked):
        train(learner, updates=1)
    reported = [x.clone() for x in checked._stats["losses"]]
    checked_step = checked._fused_step(multi_agent_batch(learner_batch(checked, make_streams(3))))
    assert checked_step is not None  # made and self-checked
    # The iteration's statistics hold the training step's figures only.
    assert len(checked._stats["losses"]) == len(reported) == 1
    torch.testing.assert_close(checked._stats["losses"][0], reported[0], rtol=0, atol=0)
    assert_same_weights_and_adam_state(checked, unchecked)
    assert all(p.grad is None for p in checked.module["agent_0"].parameters())
