"""SEAC's learner against a hand-written reference of Eqs. 4 and 5 (no Ray needed).

The reference below loops over agents, data sources, envs and time steps with
plain Python, one small forward per (i, k) pair: slow and obvious, so that the
batched learner can be checked against it term by term.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import pytest
import torch
import torch.nn.functional as F
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from rllib_seac import SEACConfig
from rllib_seac.columns import (
    ACTIONS,
    BEHAVIOUR_LOGP,
    NEXT_OBS,
    OBS,
    REWARDS,
    TERMINATEDS,
    TRUNCATEDS,
)
from rllib_seac.seac.config import SHARED_MODULE_ID, agent_is_module, all_agents_share

OBS_DIM, N_ACTIONS, N_ENVS, N_STEPS = 6, 4, 3, 5
GAMMA, VF_COEF, ENT_COEF = 0.99, 0.5, 0.01


def make_learner(
    n_agents,
    seac_lambda=1.0,
    seac_target="paper",
    shared=False,
    fused_update="auto",
    learner_class=None,
    module_class=None,
):
    agents = [f"agent_{i}" for i in range(n_agents)]
    config = SEACConfig().training(
        seac_lambda=seac_lambda,
        seac_target=seac_target,
        shared_policy=shared,
        n_steps=N_STEPS,
        fused_update=fused_update,
    )
    if learner_class is not None:
        config.training(learner_class=learner_class)
    if module_class is not None:
        config.rl_module(rl_module_spec=RLModuleSpec(module_class=module_class))
    config.agent_ids = agents
    if shared:
        config.multi_agent(policies={SHARED_MODULE_ID}, policy_mapping_fn=all_agents_share)
    else:
        config.multi_agent(policies=set(agents), policy_mapping_fn=agent_is_module)
    spaces = gym.spaces.Box(-1, 1, (OBS_DIM,)), gym.spaces.Discrete(N_ACTIONS)
    module_ids = [SHARED_MODULE_ID] if shared else agents
    torch.manual_seed(0)
    learner = config.build_learner(spaces={mid: spaces for mid in module_ids})
    return learner, agents


def make_streams(n_agents, seed=1, truncation_rate=0.15):
    """Random experience of each agent: [E, T, ...] tensors, with terminal and
    truncated steps scattered so every branch of the n-step target is used."""
    g = torch.Generator().manual_seed(seed)
    streams = []
    for _ in range(n_agents):
        shape = (N_ENVS, N_STEPS)
        terminated = torch.rand(shape, generator=g) < 0.15
        truncated = (torch.rand(shape, generator=g) < truncation_rate) & ~terminated
        streams.append(
            {
                OBS: torch.randn(*shape, OBS_DIM, generator=g),
                NEXT_OBS: torch.randn(*shape, OBS_DIM, generator=g),
                ACTIONS: torch.randint(N_ACTIONS, shape, generator=g),
                REWARDS: torch.randn(shape, generator=g),
                TERMINATEDS: terminated,
                TRUNCATEDS: truncated,
                # A behaviour policy's log-prob of the action (any valid value).
                BEHAVIOUR_LOGP: -torch.rand(shape, generator=g) * 2 - 0.2,
            }
        )
    return streams


def to_batch(streams, module_agents):
    """The learner's batch: per module, its agents' [E, T] data flattened to rows."""
    return {
        mid: {
            col: torch.stack([streams[k][col] for k in ks]).reshape(-1, *streams[0][col].shape[2:])
            for col in streams[0]
        }
        for mid, ks in module_agents.items()
    }


def reference_returns(rewards, next_values, terminated, truncated):
    """n-step returns by the textbook recursion, one env and step at a time."""
    returns = torch.zeros_like(rewards)
    for e in range(rewards.shape[0]):
        following = None
        for t in reversed(range(rewards.shape[1])):
            r = rewards[e, t]
            if terminated[e, t]:
                following = r
            elif truncated[e, t] or t == rewards.shape[1] - 1:
                following = r + GAMMA * next_values[e, t]
            else:
                following = r + GAMMA * following
            returns[e, t] = following
    return returns


def log_prob_and_entropy(actor, obs, actions):
    log_pi = F.log_softmax(actor(obs), dim=-1)
    logp = log_pi.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    return logp, -(log_pi.exp() * log_pi).sum(-1)


def reference_seac_loss(nets, streams, i, seac_lambda, seac_target="paper"):
    """Eq. 4 + 0.5 * Eq. 5 - 0.01 * entropy for agent i, written out per k."""
    actor_i, critic_i = nets[i]
    policy_loss = value_loss = 0.0
    for k, d in enumerate(streams):
        logp, entropy = log_prob_and_entropy(actor_i, d[OBS], d[ACTIONS])
        values = critic_i(d[OBS]).squeeze(-1)
        bootstrap_critic = critic_i if seac_target == "paper" else nets[k][1]
        with torch.no_grad():
            next_values = bootstrap_critic(d[NEXT_OBS]).squeeze(-1)
        y = reference_returns(d[REWARDS], next_values, d[TERMINATEDS], d[TRUNCATEDS])
        advantage = y - values
        if k == i:
            policy_loss = policy_loss - (logp * advantage.detach()).mean()
            value_loss = value_loss + advantage.pow(2).mean()
            own_entropy = entropy.mean()
        else:
            weight = torch.exp(logp - d[BEHAVIOUR_LOGP]).detach()
            policy_loss = policy_loss - seac_lambda * (weight * logp * advantage.detach()).mean()
            value_loss = value_loss + seac_lambda * (weight * advantage.pow(2)).mean()
    return policy_loss + VF_COEF * value_loss - ENT_COEF * own_entropy


def reference_a2c_loss(actor, critic, d):
    """Independent A2C (Eqs. 1 and 2 with n-step returns) on one agent's own data."""
    logp, entropy = log_prob_and_entropy(actor, d[OBS], d[ACTIONS])
    values = critic(d[OBS]).squeeze(-1)
    with torch.no_grad():
        next_values = critic(d[NEXT_OBS]).squeeze(-1)
    advantage = reference_returns(d[REWARDS], next_values, d[TERMINATEDS], d[TRUNCATEDS]) - values
    return (
        -(logp * advantage.detach()).mean()
        + VF_COEF * advantage.pow(2).mean()
        - ENT_COEF * entropy.mean()
    )


def nets_of(learner, agents):
    return [(learner.module[a].actor, learner.module[a].critic) for a in agents]


def learner_losses(learner, streams):
    batch = to_batch(
        streams,
        {
            mid: [int(a.split("_")[1]) for a in ags]
            for mid, ags in learner.config.module_agents().items()
        },
    )
    return learner.compute_losses(fwd_out={}, batch=batch)


@pytest.mark.parametrize("n_agents", [2, 3])
@pytest.mark.parametrize("seac_target", ["paper", "authors"])
@pytest.mark.parametrize("seac_lambda", [1.0, 0.3])
# Without truncations the learner evaluates V(o_{t+1}) at the rollout's last step only.
@pytest.mark.parametrize("truncation_rate", [0.15, 0.0], ids=["truncations", "none"])
def test_loss_matches_reference_of_eqs_4_and_5(n_agents, seac_target, seac_lambda, truncation_rate):
    learner, agents = make_learner(n_agents, seac_lambda, seac_target)
    streams = make_streams(n_agents, truncation_rate=truncation_rate)
    losses = learner_losses(learner, streams)
    nets = nets_of(learner, agents)
    for i, aid in enumerate(agents):
        expected = reference_seac_loss(nets, streams, i, seac_lambda, seac_target)
        torch.testing.assert_close(losses[aid], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_agents", [2, 3])
def test_gradients_match_reference_and_stay_with_their_agent(n_agents):
    learner, agents = make_learner(n_agents)
    streams = make_streams(n_agents, seed=2)
    losses = learner_losses(learner, streams)
    nets = nets_of(learner, agents)
    params = [list(learner.module[a].parameters()) for a in agents]
    for i, aid in enumerate(agents):
        all_params = [p for ps in params for p in ps]
        grads = torch.autograd.grad(losses[aid], all_params, retain_graph=True, allow_unused=True)
        expected = torch.autograd.grad(
            reference_seac_loss(nets, streams, i, 1.0), params[i], allow_unused=True
        )
        offset = 0
        for j, ps in enumerate(params):
            mine = grads[offset : offset + len(ps)]
            offset += len(ps)
            if j == i:
                for got, want in zip(mine, expected):
                    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
            else:  # agent i's loss must not move agent j's parameters
                assert all(g is None or not g.any() for g in mine), (aid, agents[j])


@pytest.mark.parametrize("n_agents", [2, 3])
def test_lambda_zero_is_independent_a2c(n_agents):
    learner, agents = make_learner(n_agents, seac_lambda=0.0)
    streams = make_streams(n_agents, seed=3)
    losses = learner_losses(learner, streams)
    for i, aid in enumerate(agents):
        module = learner.module[aid]
        expected = reference_a2c_loss(module.actor, module.critic, streams[i])
        torch.testing.assert_close(losses[aid], expected, rtol=1e-5, atol=1e-6)


def test_lambda_zero_never_evaluates_other_agents_data():
    """IAC must skip the shared terms, not multiply them by zero: NaN in agent 1's
    observations would turn a 0 * term into NaN in agent 0's loss."""
    learner, agents = make_learner(2, seac_lambda=0.0)
    streams = make_streams(2, seed=6)
    streams[1][OBS] = torch.full_like(streams[1][OBS], float("nan"))
    with pytest.raises(FloatingPointError) as err:
        learner_losses(learner, streams)
    assert "loss of agent_1 = nan" in str(err.value)
    assert "of agent_0 =" not in str(err.value)


def test_equal_policies_give_importance_weights_of_one():
    learner, agents = make_learner(3)
    source = learner.module[agents[0]]
    for aid in agents[1:]:
        learner.module[aid].load_state_dict(copy.deepcopy(source.state_dict()))
    streams = make_streams(3, seed=4)
    with torch.no_grad():  # behaviour log-probs from the (shared) policy itself
        for d in streams:
            d[BEHAVIOUR_LOGP] = log_prob_and_entropy(source.actor, d[OBS], d[ACTIONS])[0]
    batch = to_batch(streams, {aid: [k] for k, aid in enumerate(agents)})
    results = learner.update(
        batch=MultiAgentBatch({m: SampleBatch(b) for m, b in batch.items()}, env_steps=1),
        timesteps={},
    )
    for aid in agents:  # the reported metrics, as they reach the result dict
        for stat in ("is_weight_min", "is_weight_max", "is_weight_mean"):
            assert results[aid][stat].peek() == 1.0


@pytest.mark.parametrize("n_agents", [2, 3])
def test_snac_is_one_module_trained_on_the_sum_of_agent_losses(n_agents):
    learner, agents = make_learner(n_agents, shared=True)
    streams = make_streams(n_agents, seed=5)
    losses = learner_losses(learner, streams)
    module = learner.module[SHARED_MODULE_ID]
    expected = sum(reference_a2c_loss(module.actor, module.critic, d) for d in streams)
    assert list(losses) == [SHARED_MODULE_ID]
    torch.testing.assert_close(losses[SHARED_MODULE_ID], expected, rtol=1e-5, atol=1e-6)


def test_n_step_targets_by_hand():
    from rllib_seac.seac.losses import n_step_targets

    rewards = torch.tensor([1.0, 2.0, 3.0])
    next_values = torch.tensor([10.0, 20.0, 30.0])
    no = torch.tensor([False, False, False])
    at_1 = torch.tensor([False, True, False])
    # Truncated at t=1: bootstrap from V(o_2) = 20 there; the rollout's end uses 30.
    truncated = n_step_targets(rewards, next_values, no, at_1, gamma=0.5)
    torch.testing.assert_close(truncated, torch.tensor([7.0, 12.0, 18.0]))
    # Terminal at t=1: no bootstrap there.
    terminal = n_step_targets(rewards, next_values, at_1, no, gamma=0.5)
    torch.testing.assert_close(terminal, torch.tensor([2.0, 2.0, 18.0]))


def test_non_finite_reward_stops_with_the_agent_and_term_named():
    learner, agents = make_learner(2)
    streams = make_streams(2, seed=7)
    streams[1][REWARDS][0, 2] = float("nan")
    with pytest.raises(FloatingPointError) as err:
        learner_losses(learner, streams)
    msg = str(err.value)
    assert "before updating the weights" in msg
    assert "value_loss of agent_1 = nan" in msg and "rewards of agent_1" in msg


def test_non_finite_gradient_stops_before_the_step():
    learner, agents = make_learner(2)
    module = learner.module[agents[1]]
    before = [p.clone() for p in module.parameters()]
    grads = {ref: torch.zeros_like(p) for ref, p in learner._params.items()}
    first_param_of_agent_1 = learner.get_param_ref(next(module.parameters()))
    grads[first_param_of_agent_1][0] = float("inf")
    with pytest.raises(FloatingPointError, match="the gradient of agent_1 is not finite"):
        learner.apply_gradients(learner.postprocess_gradients(grads))
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_each_agents_gradient_is_clipped_to_global_norm_half_on_its_own():
    learner, agents = make_learner(2)
    scale = {agents[0]: 3.0, agents[1]: 1e-4}  # agent_1's gradient is under the clip
    grads = {}
    for aid in agents:
        for p in learner.module[aid].parameters():
            grads[learner.get_param_ref(p)] = torch.full_like(p, scale[aid])
    originals = {ref: g.clone() for ref, g in grads.items()}
    clipped = learner.postprocess_gradients(grads)
    for aid in agents:
        refs = [learner.get_param_ref(p) for p in learner.module[aid].parameters()]
        norm = torch.linalg.vector_norm(torch.cat([clipped[r].reshape(-1) for r in refs]))
        before = torch.linalg.vector_norm(torch.cat([originals[r].reshape(-1) for r in refs]))
        expected = min(before.item(), 0.5)
        assert norm.item() == pytest.approx(expected, rel=1e-5), aid
