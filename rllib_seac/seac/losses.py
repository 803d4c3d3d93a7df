"""SEAC's loss terms (Christianos et al., 2020, Sec. 4), as plain tensor functions.

Shapes: M modules being trained (the i of the paper), K' data streams each module
is evaluated on (the k of the paper, k = i included), E envs, T = n rollout steps.
Every tensor below is [M, K', E, T] unless said otherwise; `is_own[m, k]` says
that stream k is module m's own on-policy experience (for SNAC every stream is own).

The two weights of shared experience, the importance weight pi_i / pi_k and each
sample's weight c_ik (1 on own data, lambda times the importance weight on another
agent's), are `rllib_seac/numerics/shared_experience.py`: SE-PPO uses them too.

tests/test_losses.py writes Eqs. 4 and 5 out loop by loop (agent by agent, stream
by stream, step by step) and checks the learner's loss against it.
"""

from __future__ import annotations

import torch


def n_step_targets(
    rewards: torch.Tensor,
    bootstrap_values: torch.Tensor,
    terminateds: torch.Tensor,
    truncateds: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """A2C's n-step return targets y, computed backwards over the T axis (last dim).

    y_t = r_t + gamma * (1 - terminated_t) * (y_{t+1} if the rollout goes on
    else V(o_{t+1})). The chain is cut at the rollout's end and where an episode
    was truncated; `bootstrap_values[..., t]` is V(o_{t+1}), taken on the final
    observation of an episode that ended at t. A true terminal never bootstraps.
    """
    not_terminal = 1.0 - terminateds.float()
    cut = truncateds.clone()
    cut[..., -1] = True
    targets = torch.empty_like(rewards)
    following = bootstrap_values[..., -1]
    for t in reversed(range(rewards.shape[-1])):
        following = torch.where(cut[..., t], bootstrap_values[..., t], following)
        following = rewards[..., t] + gamma * not_terminal[..., t] * following
        targets[..., t] = following
    return targets


def policy_loss(
    logp: torch.Tensor, advantages: torch.Tensor, experience_weights: torch.Tensor
) -> torch.Tensor:
    """Eq. 4, per module [M]: -sum_k mean_t c_ik log pi_i(a^k_t|o^k_t) A^k_i(t),
    with the advantage A = y - V(o) held constant."""
    terms = experience_weights * logp * advantages.detach()
    return -terms.mean(dim=(-2, -1)).sum(dim=-1)


def value_loss(advantages: torch.Tensor, experience_weights: torch.Tensor) -> torch.Tensor:
    """Eq. 5, per module [M]: sum_k mean_t c_ik (V_i(o^k_t) - y^k_i(t))^2; the
    target y is built from detached values, so only V_i(o^k_t) is differentiated."""
    terms = experience_weights * advantages.pow(2)
    return terms.mean(dim=(-2, -1)).sum(dim=-1)


def entropy_bonus(entropy: torch.Tensor, is_own: torch.Tensor) -> torch.Tensor:
    """Per module [M]: entropy of pi_i on its own observations only (Sec. 5.3)."""
    per_stream = entropy.mean(dim=(-2, -1))
    return (per_stream * is_own).sum(dim=-1)


def total_loss(
    policy: torch.Tensor,
    value: torch.Tensor,
    entropy: torch.Tensor,
    vf_loss_coeff: float,
    entropy_coeff: float,
) -> torch.Tensor:
    """A2C's combined objective per module (App. B: value coef 0.5, entropy 0.01)."""
    return policy + vf_loss_coeff * value - entropy_coeff * entropy
