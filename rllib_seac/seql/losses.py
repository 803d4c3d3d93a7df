"""The loss terms of SEQL and IQL (App. D of the paper), one function each.

Tensors are per transition: `q_taken` [B] is Q(s_j, a_j; theta_i) of the trained agent
i, `next_q_target` [B, n_actions] is Q(s'_j, .; theta_bar_i) of its target network.
"""

from __future__ import annotations

import torch


def q_target(
    rewards: torch.Tensor,
    next_q_target: torch.Tensor,
    terminateds: torch.Tensor,
    gamma: float,
    mask_terminals: bool = True,
) -> torch.Tensor:
    """y_j = r_j + gamma * max_a' Q(s'_j, a'; theta_bar)  (Eq. 6), with no bootstrap
    after a terminal state. `mask_terminals=False` bootstraps there too, as the
    authors' code does. A time limit is a truncation, not a terminal: it bootstraps."""
    not_terminal = 1.0 - terminateds.float() if mask_terminals else 1.0
    return (rewards + gamma * not_terminal * next_q_target.max(dim=-1).values).detach()


def q_loss(q_taken: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L(theta) = 1/M sum_j (Q(s_j, a_j; theta) - y_j)^2  (Eq. 6) over the M
    transitions given; 0 for none."""
    if q_taken.numel() == 0:
        return q_taken.sum()
    return torch.mean((q_taken - target) ** 2)


def seql_loss(own_loss: torch.Tensor, others_loss: torch.Tensor, seql_lambda: float):
    """Agent i's SEQL loss: Eq. 6 on the M/N transitions of its own buffer plus
    lambda times Eq. 6 on the M/N of each other agent's buffer (App. D; the two MSE
    terms and lambda are the authors' code, lambda = 1 their default)."""
    return own_loss + seql_lambda * others_loss
