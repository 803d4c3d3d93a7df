"""One SEQL/IQL gradient step of every agent's Q-network for the in-process loop,
through the learner's own loss (`SEQLTorchLearner.compute_losses`) and RLlib's
public Learner steps, without `Learner.update`'s per-call machinery (batch
conversion, connectors, metric reduction: ~30 ms per env step).

The loop runs this step for the first update (which makes Adam's state) and whenever
the fused step (`fused_step.py`) does not stand in for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from ray.rllib.algorithms.dqn.dqn_learner import QF_PREDS
from ray.rllib.core.columns import Columns

# The per-agent figures one step returns, in this order (learners/<agent>/<name>).
STAT_NAMES = (
    "qf_loss",
    "own_q_loss",
    "others_q_loss",
    "qf_mean",
    "td_error_mean",
    "gradients_default_optimizer_global_norm",
)


@dataclass(frozen=True)
class UpdateSettings:
    share_experience: bool
    seql_lambda: float
    gamma: float
    mask_terminals: bool
    grad_clip: float | None
    tau: float

    @classmethod
    def from_config(cls, config) -> UpdateSettings:
        return cls(
            share_experience=config.share_experience,
            seql_lambda=config.seql_lambda,
            gamma=config.gamma,
            mask_terminals=config.mask_terminals,
            grad_clip=config.grad_clip,
            tau=config.tau,
        )


@dataclass(frozen=True)
class AgentNetworks:
    """What the loop uses of one agent: Q(obs, .) for acting, the learner's optimizer
    of the Q-network, and the (network, target) parameters in matching order."""

    q: Callable[[torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    pairs: tuple[list, list]


def agent_networks(module, optimizer) -> AgentNetworks:
    """`module`'s networks (a DQN RLModule) for the loop."""
    return AgentNetworks(
        lambda obs: module.compute_q_values({Columns.OBS: obs})[QF_PREDS],
        optimizer,
        target_pairs(module),
    )


def learner_update(
    learner,
    module_ids: list,
    networks: list[AgentNetworks],
    parts: list[dict[str, torch.Tensor]],
    tau: float,
    update_targets: bool = True,
) -> np.ndarray:
    """One gradient step of every agent: `parts[k]` holds the transitions sampled from
    agent k's buffer (M // N each for SEQL, M for IQL), the batch of module k. The
    learner's `forward_train`, `compute_losses`, `compute_gradients`,
    `postprocess_gradients` (its clipping) and `apply_gradients` (Adam), then each
    target network moves by tau if `update_targets`. Returns the STAT_NAMES figures
    per agent, [N, 6]."""
    batch = dict(zip(module_ids, parts))
    fwd_out = {mid: learner.module[mid].forward_train(batch[mid]) for mid in module_ids}
    losses = learner.compute_losses(fwd_out=fwd_out, batch=batch)
    gradients = learner.compute_gradients(losses)
    norms = [
        torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in agent.pairs[0]]))
        for agent in networks
    ]
    learner.apply_gradients(learner.postprocess_gradients(gradients))
    if update_targets:
        for agent in networks:
            soft_update_targets(agent.pairs, tau)
    figures = [
        torch.cat([learner.last_figures[mid], norm[None]]) for mid, norm in zip(module_ids, norms)
    ]
    return torch.stack(figures).numpy()


def target_pairs(module) -> tuple[list, list]:
    """The parameters of the module's networks and of their target networks, in
    matching order (RLlib's `get_target_network_pairs`)."""
    pairs = module.get_target_network_pairs()
    mains = [p for main, _ in pairs for p in main.parameters()]
    targets = [p for _, target in pairs for p in target.parameters()]
    return mains, targets


@torch.no_grad()
def soft_update_targets(pairs: tuple[list, list], tau: float) -> None:
    """theta_bar <- tau * theta + (1 - tau) * theta_bar for `target_pairs(module)`,
    as RLlib's `update_target_network`."""
    mains, targets = pairs
    torch._foreach_mul_(targets, 1.0 - tau)
    torch._foreach_add_(targets, mains, alpha=tau)
