"""SEQL's learner against a hand-written reference of Eq. 6 with shared sampling (App. D).

The reference loops over agents and transitions in plain Python: for agent i, each
transition j of agent k's part gives (Q_i(s_j, a_j) - y_j)^2 with
y_j = r_j + gamma * (1 - terminal_j) * max_a' Q_bar_i(s'_j, a'); the own part's mean
plus lambda times the others' mean is agent i's loss (no Ray needed).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME
from ray.rllib.utils.schedules.scheduler import Scheduler

from rllib_seac import SEQLConfig
from rllib_seac.seac.config import agent_is_module
from rllib_seac.seql.in_process.fused_step import FusedStep
from rllib_seac.seql.in_process.learner_step import (
    STAT_NAMES,
    UpdateSettings,
    agent_networks,
    learner_update,
)
from rllib_seac.seql.in_process.loop import EpsilonSchedule
from rllib_seac.seql.replay_buffer import agent_parts, per_agent_items

OBS_DIM, N_ACTIONS, BATCH, GAMMA = 5, 4, 12, 0.99


def make_learner(
    n_agents, share=True, seql_lambda=1.0, mask_terminals=True, activation="relu", grad_clip=0.5
):
    agents = [f"agent_{i}" for i in range(n_agents)]
    config = SEQLConfig().training(
        share_experience=share,
        seql_lambda=seql_lambda,
        mask_terminals=mask_terminals,
        gamma=GAMMA,
        train_batch_size_per_learner=BATCH,
        grad_clip=grad_clip,
    )
    config.rl_module(model_config={**config.model_config, "fcnet_activation": activation})
    config.agent_ids = agents
    config.multi_agent(policies=set(agents), policy_mapping_fn=agent_is_module)
    spaces = gym.spaces.Box(-1, 1, (OBS_DIM,)), gym.spaces.Discrete(N_ACTIONS)
    torch.manual_seed(0)
    learner = config.build_learner(spaces={aid: spaces for aid in agents})
    # Target networks differ from the Q-networks, as after some training.
    for aid in agents:
        for _, target in learner.module[aid].get_target_network_pairs():
            with torch.no_grad():
                for p in target.parameters():
                    p.add_(0.1 * torch.randn_like(p))
    return learner, agents


def make_batch(agents, per_agent, seed=1, terminal_rate=0.3):
    """What the buffers give: per agent, `per_agent` transitions of its own."""
    g = torch.Generator().manual_seed(seed)
    return {
        aid: {
            Columns.OBS: torch.rand(per_agent, OBS_DIM, generator=g) * 2 - 1,
            Columns.NEXT_OBS: torch.rand(per_agent, OBS_DIM, generator=g) * 2 - 1,
            Columns.ACTIONS: torch.randint(N_ACTIONS, (per_agent,), generator=g),
            Columns.REWARDS: torch.randn(per_agent, generator=g),
            Columns.TERMINATEDS: torch.rand(per_agent, generator=g) < terminal_rate,
        }
        for aid in agents
    }


def learner_losses(learner, batch):
    fwd_out = learner.module.forward_train(batch)
    return learner.compute_losses(fwd_out=fwd_out, batch=batch)


def q(net, obs):
    return net.compute_q_values({Columns.OBS: obs.unsqueeze(0)})["qf_preds"][0]


def q_target(net, obs):
    return net.forward_target({Columns.OBS: obs.unsqueeze(0)})["qf_preds"][0]


def reference_eq6(module, part, mask_terminals=True):
    """Eq. 6 of agent `module` on the transitions `part`, one at a time."""
    errors = []
    for j in range(len(part[Columns.REWARDS])):
        terminal = bool(part[Columns.TERMINATEDS][j]) and mask_terminals
        bootstrap = 0.0 if terminal else float(q_target(module, part[Columns.NEXT_OBS][j]).max())
        y = float(part[Columns.REWARDS][j]) + GAMMA * bootstrap
        q_sa = q(module, part[Columns.OBS][j])[int(part[Columns.ACTIONS][j])]
        errors.append((q_sa - y) ** 2)
    return sum(errors) / len(errors)


def reference_seql(learner, batch, aid, seql_lambda, mask_terminals=True):
    module = learner.module[aid]
    own = reference_eq6(module, batch[aid], mask_terminals)
    others = {k: v for k, v in batch.items() if k != aid}
    joined = {c: torch.cat([part[c] for part in others.values()]) for c in batch[aid]}
    return own + seql_lambda * reference_eq6(module, joined, mask_terminals)


@pytest.mark.parametrize("n_agents", [2, 3])
@pytest.mark.parametrize("seql_lambda", [1.0, 0.3])
def test_seql_loss_matches_reference_of_eq6_on_shared_batch(n_agents, seql_lambda):
    learner, agents = make_learner(n_agents, seql_lambda=seql_lambda)
    # Every agent's batch: M // N transitions of each agent's buffer.
    batch = make_batch(agents, per_agent_items(BATCH, n_agents))
    losses = learner_losses(learner, batch)
    for aid in agents:
        expected = reference_seql(learner, batch, aid, seql_lambda)
        torch.testing.assert_close(losses[aid], expected, rtol=1e-5, atol=1e-6)


def test_per_agent_items_is_m_over_n_rounded_down_like_the_authors():
    assert per_agent_items(128, 2) == 64
    assert per_agent_items(128, 3) == 42


@pytest.mark.parametrize("n_agents", [2, 3])
def test_iql_is_independent_dqn_on_m_own_transitions(n_agents):
    learner, agents = make_learner(n_agents, share=False, seql_lambda=1.0)
    batch = make_batch(agents, BATCH)
    losses = learner_losses(learner, batch)
    for aid in agents:
        expected = reference_eq6(learner.module[aid], batch[aid])
        torch.testing.assert_close(losses[aid], expected, rtol=1e-5, atol=1e-6)
    # Another agent's data does not enter agent i's IQL loss.
    changed = {**batch, agents[1]: make_batch([agents[1]], BATCH, seed=7)[agents[1]]}
    torch.testing.assert_close(learner_losses(learner, changed)[agents[0]], losses[agents[0]])


@pytest.mark.parametrize("share", [True, False])
def test_gradients_of_agent_i_loss_reach_only_agent_i(share):
    learner, agents = make_learner(3, share=share)
    batch = make_batch(agents, per_agent_items(BATCH, 3))
    losses = learner_losses(learner, batch)
    for aid in agents:
        for other in agents:
            learner.module[other].zero_grad(set_to_none=True)
        losses[aid].backward(retain_graph=True)
        for other in agents:
            grads = [p.grad for p in learner.module[other].parameters() if p.requires_grad]
            touched = any(g is not None and g.abs().sum() > 0 for g in grads)
            assert touched == (other == aid), (aid, other)


def test_terminals_stop_the_bootstrap():
    learner, agents = make_learner(2)
    batch = make_batch(agents, 6, terminal_rate=1.0)
    losses = learner_losses(learner, batch)
    # All terminal: y = r, so the next observations cannot matter.
    moved = {
        aid: {**part, Columns.NEXT_OBS: part[Columns.NEXT_OBS] + 0.5} for aid, part in batch.items()
    }
    moved_losses = learner_losses(learner, moved)
    for aid in agents:
        torch.testing.assert_close(moved_losses[aid], losses[aid])
        torch.testing.assert_close(losses[aid], reference_seql(learner, batch, aid, 1.0))
    # The authors' code bootstraps after terminals too: then they matter.
    quirk, _ = make_learner(2, mask_terminals=False)
    quirk_losses = learner_losses(quirk, batch)
    for aid in agents:
        expected = reference_seql(quirk, batch, aid, 1.0, mask_terminals=False)
        torch.testing.assert_close(quirk_losses[aid], expected, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(quirk_losses[aid], losses[aid])


# --- The in-process loop's update (rllib_seac/seql/in_process/learner_step.py) ---


def rllib_update(learner, batch):
    """RLlib's `Learner.update` for one step: SEQLTorchLearner's losses, RLlib's
    clipping, the learner's Adam, then DQN's target update."""
    multi = MultiAgentBatch(
        {aid: SampleBatch({c: v.numpy() for c, v in part.items()}) for aid, part in batch.items()},
        env_steps=len(next(iter(batch.values()))[Columns.REWARDS]),
    )
    learner.update(batch=multi, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: 1})


def parameters(learner, agents):
    return {aid: learner.module[aid].state_dict() for aid in agents}


@pytest.mark.parametrize(
    "n_agents, activation", [(2, "relu"), (3, "relu"), (2, "tanh")], ids=["2", "3", "tanh"]
)
@pytest.mark.parametrize("share", [True, False], ids=["SEQL", "IQL"])
def test_direct_update_equals_the_learners_update(n_agents, activation, share):
    settings = dict(share=share, seql_lambda=0.7, activation=activation)
    rllib_path, agents = make_learner(n_agents, **settings)
    direct_path, _ = make_learner(n_agents, **settings)
    batch = make_batch(agents, per_agent_items(BATCH, n_agents) if share else BATCH)
    expected_losses = [reference_seql(direct_path, batch, aid, 0.7) for aid in agents]
    if not share:
        expected_losses = [reference_eq6(direct_path.module[aid], batch[aid]) for aid in agents]
    for step in range(2):  # the second step runs on Adam's moments of the first
        rllib_update(rllib_path, batch)
        stats = autograd_step(direct_path, agents, batch)
        if step == 0:
            losses = dict(zip(STAT_NAMES, stats.T))["qf_loss"]
            torch.testing.assert_close(
                torch.as_tensor(losses), torch.stack(expected_losses), rtol=1e-5, atol=1e-6
            )
            norms = dict(zip(STAT_NAMES, stats.T))["gradients_default_optimizer_global_norm"]
            assert (norms > direct_path.config.grad_clip).any()  # the clip is exercised
    want, got = parameters(rllib_path, agents), parameters(direct_path, agents)
    for aid in agents:
        assert want[aid].keys() == got[aid].keys()
        assert any("target" in key for key in got[aid])  # target networks moved too
        for key in want[aid]:
            torch.testing.assert_close(got[aid][key], want[aid][key], rtol=1e-5, atol=1e-7)


def test_epsilon_schedule_is_rllibs():
    schedule = SEQLConfig().epsilon
    ours, rllibs = EpsilonSchedule(schedule), Scheduler(schedule)
    for t in (0, 1, 77_777, 150_000, 1_000_000, 2_400_000, 5_000_000):
        assert ours(t) == pytest.approx(float(rllibs.update(t)), rel=1e-6), t
    assert EpsilonSchedule(0.05)(123) == 0.05


# --- The in-process loop's fused step (rllib_seac/seql/in_process/fused_step.py) ---


def direct_networks(learner, agents):
    return [
        agent_networks(learner.module[aid], learner.get_optimizers_for_module(aid)[0][1])
        for aid in agents
    ]


def modules(learner, agents):
    return [learner.module[aid] for aid in agents]


def stacked_update(learner, agents):
    networks = direct_networks(learner, agents)
    assert FusedStep.supports(modules(learner, agents), networks)
    settings = UpdateSettings.from_config(learner.config)
    return FusedStep(networks, agents, settings, N_ACTIONS)


def buffer_sample(batch, agents):
    """`make_batch`'s parts as `AgentReplayBuffers.sample` gives them: [N, n, ...]."""
    return {col: np.stack([batch[aid][col].numpy() for aid in agents]) for col in batch[agents[0]]}


def autograd_step(learner, agents, batch):
    """The in-process loop's autograd step (the learner's loss): it makes Adam's state."""
    parts = agent_parts(buffer_sample(batch, agents))
    networks = direct_networks(learner, agents)
    return learner_update(learner, agents, networks, parts, learner.config.tau)


def adam_state(learner, agents):
    state = {}
    for aid in agents:
        optimizer = learner.get_optimizers_for_module(aid)[0][1]
        for j, p in enumerate(optimizer.param_groups[0]["params"]):
            for key, value in optimizer.state[p].items():
                state[aid, j, key] = value.clone()
    return state


def assert_same_weights_and_adam_state(got, want, agents):
    got_weights, want_weights = parameters(got, agents), parameters(want, agents)
    for aid in agents:
        assert got_weights[aid].keys() == want_weights[aid].keys()
        for key in want_weights[aid]:
            torch.testing.assert_close(
                got_weights[aid][key], want_weights[aid][key], rtol=1e-5, atol=1e-7
            )
    got_adam, want_adam = adam_state(got, agents), adam_state(want, agents)
    assert got_adam.keys() == want_adam.keys() and len(got_adam) == 3 * 6 * len(agents)
    for key in want_adam:
        # Moments near zero (gradients that cancel) carry float32 rounding of the
        # whole gradient's scale: tolerance relative to the largest moment.
        scale = float(want_adam[key].abs().max())
        torch.testing.assert_close(got_adam[key], want_adam[key], rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("grad_clip", [0.5, None], ids=["clip", "no-clip"])
@pytest.mark.parametrize("n_agents", [2, 3])
@pytest.mark.parametrize("share", [True, False], ids=["SEQL", "IQL"])
def test_fused_step_equals_the_learners_and_autograd_updates(n_agents, share, grad_clip):
    """Weights, target weights and Adam's state after several steps: RLlib's learner
    update, the direct loop's autograd step and the fused step agree, and the fused
    step's figures are the autograd step's."""
    settings = dict(share=share, seql_lambda=0.7, grad_clip=grad_clip)
    rllib_path, agents = make_learner(n_agents, **settings)
    autograd_path, _ = make_learner(n_agents, **settings)
    stacked_path, _ = make_learner(n_agents, **settings)
    per_agent = per_agent_items(BATCH, n_agents) if share else BATCH
    batches = [make_batch(agents, per_agent, seed=10 + step) for step in range(4)]
    # The first step (Adam's state made) goes through autograd on both direct paths.
    autograd_step(stacked_path, agents, batches[0])
    stacked = stacked_update(stacked_path, agents)
    for step, batch in enumerate(batches):
        rllib_update(rllib_path, batch)
        want = autograd_step(autograd_path, agents, batch)
        if step:
            got = stacked(buffer_sample(batch, agents), update_targets=True)
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
            norms = got[:, STAT_NAMES.index("gradients_default_optimizer_global_norm")]
            assert (norms > 0.5).any()  # with grad_clip=0.5 the clip is exercised
            if not share:
                assert (got[:, STAT_NAMES.index("others_q_loss")] == 0).all()
    assert stacked.is_current()
    assert_same_weights_and_adam_state(stacked_path, rllib_path, agents)
    assert_same_weights_and_adam_state(autograd_path, rllib_path, agents)


def test_fused_step_without_target_update_leaves_the_targets():
    learner, agents = make_learner(2)
    autograd_step(learner, agents, make_batch(agents, BATCH // 2, seed=3))
    before = parameters(learner, agents)
    before = {aid: {k: v.clone() for k, v in w.items()} for aid, w in before.items()}
    stacked_update(learner, agents)(buffer_sample(make_batch(agents, BATCH // 2), agents), False)
    after = parameters(learner, agents)
    for aid in agents:
        for key in [k for k in before[aid] if k.endswith(("weight", "bias"))]:
            moved = not torch.equal(before[aid][key], after[aid][key])
            assert moved == ("target" not in key), key


@pytest.mark.parametrize("share", [True, False], ids=["SEQL", "IQL"])
def test_fused_step_continues_identically_from_a_restored_checkpoint(share, tmp_path):
    """A learner restored from a checkpoint continues as the one that wrote it: the
    restore replaces Adam's state, the stacked update notices (`is_current`) and the
    one made on the restored tensors takes the same steps."""
    original, agents = make_learner(2, share=share)
    restored, _ = make_learner(2, share=share)
    per_agent = per_agent_items(BATCH, 2) if share else BATCH
    batches = [buffer_sample(make_batch(agents, per_agent, seed=40 + i), agents) for i in range(6)]
    for learner in (original, restored):
        autograd_step(learner, agents, make_batch(agents, per_agent, seed=39))
    steps = {"original": stacked_update(original, agents)}
    for batch in batches[:3]:
        steps["original"](batch, update_targets=True)
    # The restored learner has moved on its own (another state) before the restore.
    stale = stacked_update(restored, agents)
    stale(batches[5], update_targets=True)
    original.save_to_path(tmp_path / "learner")
    restored.restore_from_path(tmp_path / "learner")
    assert not stale.is_current()
    assert_same_weights_and_adam_state(restored, original, agents)
    steps["restored"] = stacked_update(restored, agents)
    for batch in batches[3:]:
        for step in steps.values():
            step(batch, update_targets=True)
    assert_same_weights_and_adam_state(restored, original, agents)


def test_fused_step_stops_on_a_non_finite_gradient_naming_the_agent():
    learner, agents = make_learner(2)
    autograd_step(learner, agents, make_batch(agents, BATCH // 2, seed=3))
    stacked = stacked_update(learner, agents)
    before = parameters(learner, agents)
    before = {aid: {k: v.clone() for k, v in w.items()} for aid, w in before.items()}
    batch = make_batch(agents, BATCH // 2, seed=4)
    batch = buffer_sample(batch, agents)
    batch[Columns.REWARDS][1, 0] = np.inf  # agent_1's transition: in everyone's SEQL batch
    with pytest.raises(FloatingPointError, match="SEQL stopped .* gradient of agent_0 is not"):
        stacked(batch, update_targets=True)
    after = parameters(learner, agents)
    for aid in agents:
        for key in before[aid]:
            assert torch.equal(before[aid][key], after[aid][key]), key


def test_fused_step_covers_plain_relu_mlps_only():
    learner, agents = make_learner(2, activation="tanh")
    autograd_step(learner, agents, make_batch(agents, BATCH // 2, seed=3))
    assert not FusedStep.supports(modules(learner, agents), direct_networks(learner, agents))
    fresh, agents = make_learner(2)  # Adam's state not made yet
    assert not FusedStep.supports(modules(fresh, agents), direct_networks(fresh, agents))
