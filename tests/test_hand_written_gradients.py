"""The learner's hand-written gradient step against its autograd path (no Ray needed).

`tests/test_losses.py` checks the autograd path (`compute_losses` + backward +
RLlib's clipping and Adam) against a hand-written reference of Eqs. 4 and 5; here
the fast step that training uses is checked against that path: the same
gradients, and the same weights and Adam state after several updates.
"""

from __future__ import annotations

import pytest
import torch
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from test_losses import make_learner, make_streams, to_batch

from rllib_seac.seac import loss_gradients

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


def hand_written_gradients(learner, batch) -> list[torch.Tensor]:
    """The step's gradients before clipping, module-major in parameter order."""
    captured = []
    learner._clip = lambda grads: captured.extend(g.clone() for g in grads)
    learner._adam_step = lambda grads: None
    learner._hand_written_update(batch)
    return [g[m] for m in range(len(learner._module_ids)) for g in captured]


@pytest.mark.parametrize("truncation_rate", [0.15, 0.0])
@pytest.mark.parametrize("case", CASES)
def test_hand_written_gradients_equal_autograds(case, truncation_rate):
    learner, _ = make_learner(**CASES[case])
    assert learner._layers is not None, "the hand-written step must cover this case"
    batch = learner_batch(
        learner,
        make_streams(len(learner.config.agent_ids), seed=3, truncation_rate=truncation_rate),
    )
    losses = learner.compute_losses(fwd_out={}, batch=batch)
    params = [p for mid in learner._module_ids for p in learner.module[mid].parameters()]
    expected = torch.autograd.grad(sum(losses.values()), params)
    got = hand_written_gradients(learner, batch)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reward_scale", [1.0, 100.0])  # 100: every agent's clip engages
@pytest.mark.parametrize("case", ["seac-3", "iac", "snac"])
def test_updates_match_rllibs_path(case, reward_scale):
    fast, _ = make_learner(**CASES[case])
    slow, _ = make_learner(**CASES[case])
    slow._layers = None  # RLlib's path: autograd, postprocess_gradients, optimizer.step
    calls = []
    original = fast._hand_written_update
    fast._hand_written_update = lambda batch: calls.append(1) or original(batch)
    for seed in range(4):
        streams = make_streams(len(fast.config.agent_ids), seed=10 + seed)
        batch = learner_batch(fast, streams, reward_scale)
        multi = MultiAgentBatch({m: SampleBatch(b) for m, b in batch.items()}, env_steps=1)
        for learner in (fast, slow):
            learner.update(batch=multi, timesteps={}, _no_metrics_reduce=True)
    assert len(calls) == 3  # the first step makes Adam's state through RLlib's path
    for mid in fast._module_ids:
        for p, q in zip(fast.module[mid].parameters(), slow.module[mid].parameters()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    slow_optimizers = [slow.get_optimizers_for_module(mid)[0][1] for mid in slow._module_ids]
    for opt_a, opt_b in zip(fast._optimizers, slow_optimizers):
        for p, q in zip(opt_a.param_groups[0]["params"], opt_b.param_groups[0]["params"]):
            for key in ("exp_avg", "exp_avg_sq", "step"):
                torch.testing.assert_close(opt_a.state[p][key], opt_b.state[q][key])


def test_non_finite_gradient_stops_naming_the_agent():
    learner, agents = make_learner(2)
    grads = [torch.zeros(2, 3, 4), torch.zeros(2, 3)]
    grads[0][1, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="the gradient of agent_1 is not finite"):
        learner._clip(grads)


def test_each_agent_is_clipped_to_global_norm_half_on_its_own():
    learner, _ = make_learner(2)
    grads = [torch.full((2, 3, 4), 1.0), torch.full((2, 3), 1.0)]
    grads[0][1] *= 1e-3
    grads[1][1] *= 1e-3
    small = [g[1].clone() for g in grads]
    learner._clip(grads)
    norm_0 = torch.linalg.vector_norm(torch.cat([g[0].reshape(-1) for g in grads]))
    torch.testing.assert_close(norm_0, torch.tensor(0.5), rtol=1e-5, atol=1e-6)
    for g, s in zip(grads, small):  # agent_1's gradient is under the clip: unchanged
        torch.testing.assert_close(g[1], s)


def test_mlp_backward_matches_autograd_for_inputs_seen_by_all():
    torch.manual_seed(0)
    weights = [torch.randn(3, 5, 4, requires_grad=True), torch.randn(3, 2, 5, requires_grad=True)]
    biases = [torch.randn(3, 5, requires_grad=True), torch.randn(3, 2, requires_grad=True)]
    x = torch.randn(7, 4)
    outputs = loss_gradients.mlp_forward(weights, biases, x)
    upstream = torch.randn(3, 7, 2)
    expected = torch.autograd.grad(
        (outputs[-1] * upstream).sum(), [weights[0], biases[0], weights[1], biases[1]]
    )
    with torch.no_grad():
        got = loss_gradients.mlp_backward(weights, outputs, upstream)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


def test_every_tensor_the_learner_builds_lives_on_its_device():
    learner, _ = make_learner(3)
    device = learner.device
    assert isinstance(device, torch.device)
    for name in ("_streams", "_owner", "_is_own"):
        assert getattr(learner, name).device == device, name
    assert all(t.device == device for t in learner._others)
    streams = make_streams(3, seed=2)
    batch = learner_batch(learner, streams)
    multi = MultiAgentBatch(
        {m: SampleBatch({c: v.numpy() for c, v in b.items()}) for m, b in batch.items()},
        env_steps=1,
    )
    learner.update(batch=multi, timesteps={}, _no_metrics_reduce=True)
    for mid in learner._module_ids:
        assert all(p.device == device for p in learner.module[mid].parameters())
