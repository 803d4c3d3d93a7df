"""The learner's hand-written gradient steps against its autograd path (no Ray needed).

`tests/test_losses.py` checks the autograd path (`compute_losses` + backward +
RLlib's clipping and Adam) against a hand-written reference of Eqs. 4 and 5; here
the fast steps that training uses are checked against that path: the same
gradients, and the same weights and Adam state after several updates. Two fast
steps: numpy (`numpy_step`, what a CPU learner runs) and torch (`loss_gradients`,
what a learner on another device runs).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from test_losses import make_learner, make_streams, to_batch

from rllib_seac.columns import REWARDS
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


def multi_agent_batch(batch) -> MultiAgentBatch:
    return MultiAgentBatch({m: SampleBatch(b) for m, b in batch.items()}, env_steps=1)


def ready_numpy_step(learner, batch):
    """The learner's numpy step, after a first update (through RLlib's path, as in
    training) has made Adam's state."""
    assert learner._current_numpy_step() is None, "Adam's state is made by RLlib's path"
    learner.update(batch=multi_agent_batch(batch), timesteps={}, _no_metrics_reduce=True)
    step = learner._current_numpy_step()
    assert step is not None, "the numpy step must cover this case"
    return step


def numpy_gradients(learner, step, batch) -> tuple[list[torch.Tensor], np.ndarray]:
    """The numpy step's gradients before clipping, module-major in parameter order
    (read at each parameter's place in the flat buffers), and its losses."""
    captured = []
    step._clip = lambda: captured.append(step._grad.copy())
    step._adam_step = lambda: None
    terms = step([batch[mid] for mid in learner._module_ids], learner._raise_non_finite)
    flat = torch.from_numpy(captured[0]).reshape(-1)
    buffer = step._tensors[0]["param"]
    grads = []
    for mid in learner._module_ids:
        for p in learner.module[mid].parameters():
            assert p.untyped_storage().data_ptr() == buffer.untyped_storage().data_ptr()
            start = p.storage_offset()
            grads.append(flat[start : start + p.numel()].view_as(p))
    return grads, terms["total"]


def torch_gradients(learner, batch) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The torch hand-written step's gradients before clipping, module-major in
    parameter order, and its losses."""
    captured = []
    learner._clip = lambda grads: captured.extend(g.clone() for g in grads)
    learner._adam_step = lambda grads: None
    losses = learner._hand_written_update(batch)
    grads = [g[m] for m in range(len(learner._module_ids)) for g in captured]
    return grads, torch.stack(list(losses.values()))


@pytest.mark.parametrize("path", ["numpy", "torch"])
@pytest.mark.parametrize("truncation_rate", [0.15, 0.0])
@pytest.mark.parametrize("case", CASES)
def test_hand_written_gradients_equal_autograds(case, truncation_rate, path):
    learner, _ = make_learner(**CASES[case])
    assert learner._layers is not None, "the hand-written step must cover this case"
    n_agents = len(learner.config.agent_ids)
    batch = learner_batch(learner, make_streams(n_agents, seed=3, truncation_rate=truncation_rate))
    if path == "numpy":
        step = ready_numpy_step(learner, learner_batch(learner, make_streams(n_agents, seed=4)))
    losses = learner.compute_losses(fwd_out={}, batch=batch)
    params = [p for mid in learner._module_ids for p in learner.module[mid].parameters()]
    expected = torch.autograd.grad(sum(losses.values()), params)
    if path == "numpy":
        got, got_losses = numpy_gradients(learner, step, batch)
    else:
        got, got_losses = torch_gradients(learner, batch)
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


@pytest.mark.parametrize("path", ["numpy", "torch"])
@pytest.mark.parametrize("reward_scale", [1.0, 100.0])  # 100: every agent's clip engages
@pytest.mark.parametrize("case", ["seac-3", "iac", "snac"])
def test_updates_match_rllibs_path(case, reward_scale, path):
    fast, _ = make_learner(**CASES[case])
    slow, _ = make_learner(**CASES[case])
    slow._layers = None  # RLlib's path: autograd, postprocess_gradients, optimizer.step
    slow._numpy_allowed = False
    if path == "torch":
        fast._numpy_allowed = False
    calls = count_calls(fast, "_numpy_update" if path == "numpy" else "_hand_written_update")
    for seed in range(4):
        streams = make_streams(len(fast.config.agent_ids), seed=10 + seed)
        multi = multi_agent_batch(learner_batch(fast, streams, reward_scale))
        for learner in (fast, slow):
            learner.update(batch=multi, timesteps={}, _no_metrics_reduce=True)
    assert len(calls) == 3  # the first step makes Adam's state through RLlib's path
    assert_same_weights_and_adam_state(fast, slow)


def test_numpy_step_keeps_each_modules_lr():
    """Modules whose optimizers have different lrs: one Adam call per module."""
    fast, _ = make_learner(3)
    slow, _ = make_learner(3)
    slow._layers = None
    slow._numpy_allowed = False
    for learner in (fast, slow):
        for m, mid in enumerate(learner._module_ids):
            [(_, optimizer)] = learner.get_optimizers_for_module(mid)
            optimizer.param_groups[0]["lr"] = 1e-3 * (m + 1)
    calls = count_calls(fast, "_numpy_update")
    for seed in range(3):
        multi = multi_agent_batch(learner_batch(fast, make_streams(3, seed=30 + seed)))
        for learner in (fast, slow):
            learner.update(batch=multi, timesteps={}, _no_metrics_reduce=True)
    assert len(calls) == 2
    assert_same_weights_and_adam_state(fast, slow)


def test_numpy_step_follows_an_optimizer_restore():
    """RLlib's restore replaces the optimizers' state tensors: the numpy step must
    notice and work on the restored state, not on its own stale copy."""
    original, _ = make_learner(3)
    restored, _ = make_learner(3)
    batches = [
        multi_agent_batch(learner_batch(original, make_streams(3, seed=20 + i), reward_scale=10))
        for i in range(6)
    ]
    for batch in batches[:3]:
        original.update(batch=batch, timesteps={}, _no_metrics_reduce=True)
    # Its own numpy step on another state (fewer updates: RLlib's set_state skips the
    # weights of a learner whose weights_seq_no is not behind the state's).
    for batch in batches[3:5]:
        restored.update(batch=batch, timesteps={}, _no_metrics_reduce=True)
    stale = restored._numpy_step
    assert stale is not None
    restored.set_state(original.get_state())
    calls = count_calls(restored, "_numpy_update")
    for batch in batches[3:]:
        for learner in (original, restored):
            learner.update(batch=batch, timesteps={}, _no_metrics_reduce=True)
    assert len(calls) == 3 and restored._numpy_step is not stale
    assert_same_weights_and_adam_state(original, restored)


def test_numpy_step_follows_parameters_replaced_between_reports():
    """A parameter given new memory (`p.data = ...`) between training iterations: the
    first step after the report lays the buffers out again over it, so the weights
    keep training as on RLlib's path."""
    fast, _ = make_learner(3)
    slow, _ = make_learner(3)
    slow._layers = None
    slow._numpy_allowed = False
    batches = [
        multi_agent_batch(learner_batch(fast, make_streams(3, seed=40 + i))) for i in range(4)
    ]
    for batch in batches[:2]:
        for learner in (fast, slow):
            learner.update(batch=batch, timesteps={})  # each a report
    stale = fast._numpy_step
    assert stale is not None
    for learner in (fast, slow):
        param = next(learner.module[learner._module_ids[1]].parameters())
        param.data = param.data.clone()
    for batch in batches[2:]:
        for learner in (fast, slow):
            learner.update(batch=batch, timesteps={}, _no_metrics_reduce=True)
    assert fast._numpy_step is not stale
    assert_same_weights_and_adam_state(fast, slow)


def test_non_finite_gradient_stops_naming_the_agent():
    learner, agents = make_learner(2)
    grads = [torch.zeros(2, 3, 4), torch.zeros(2, 3)]
    grads[0][1, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="the gradient of agent_1 is not finite"):
        learner._clip(grads)
    step = ready_numpy_step(learner, learner_batch(learner, make_streams(2)))
    step._grad[:] = 0
    step._grad[1, 5] = float("inf")
    with pytest.raises(FloatingPointError, match="the gradient of agent_1 is not finite"):
        step._clip()


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
    step = ready_numpy_step(learner, learner_batch(learner, make_streams(2)))
    step._grad[0] = 1.0
    step._grad[1] = 1e-3
    small = step._grad[1].copy()
    step._clip()
    np.testing.assert_allclose(np.linalg.norm(step._grad[0]), 0.5, rtol=1e-5)
    np.testing.assert_array_equal(step._grad[1], small)


def test_non_finite_loss_stops_the_numpy_step_naming_the_agent_and_cause():
    learner, _ = make_learner(2)
    step = ready_numpy_step(learner, learner_batch(learner, make_streams(2)))
    before = step._tensors[0]["param"].clone()
    streams = make_streams(2, seed=7)
    streams[1][REWARDS][0, 2] = float("nan")
    batch = learner_batch(learner, streams)
    with pytest.raises(FloatingPointError) as err:
        step([batch[mid] for mid in learner._module_ids], learner._raise_non_finite)
    assert "value_loss of agent_1 = nan" in str(err.value)
    assert "rewards of agent_1" in str(err.value)
    torch.testing.assert_close(step._tensors[0]["param"], before, rtol=0, atol=0)


def test_mlp_backward_matches_autograd_for_inputs_seen_by_all():
    torch.manual_seed(0)
    weights = [torch.randn(3, 5, 4, requires_grad=True), torch.randn(3, 2, 5, requires_grad=True)]
    biases = [torch.randn(3, 5, requires_grad=True), torch.randn(3, 2, requires_grad=True)]
    x = torch.randn(7, 4)
    outputs = loss_gradients.mlp_forward(loss_gradients.layers_of(weights, biases), x)
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
