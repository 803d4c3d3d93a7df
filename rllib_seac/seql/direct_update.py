"""One SEQL/IQL gradient step of every agent's Q-network, without RLlib's Learner.update.

The same step as `SEQLTorchLearner` under RLlib's `Learner.update` (the loss of
`seql/losses.py`, global-norm gradient clipping as RLlib's `clip_gradients`, the
learner's own Adam optimizers, then DQN's Polyak target update), called once per
env step by `SEQL`'s direct loop. RLlib's path costs ~30 ms per step in batch
conversion, connectors and metric logging; this one is the arithmetic alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from ray.rllib.algorithms.dqn.dqn_learner import QF_PREDS
from ray.rllib.core.columns import Columns

from rllib_seac.seql.losses import q_loss, q_target, seql_loss

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


def update_agents(
    modules: list,
    optimizers: list,
    parts: list[dict[str, torch.Tensor]],
    settings: UpdateSettings,
    update_targets: bool = True,
    pairs: list | None = None,
) -> torch.Tensor:
    """One gradient step of each agent i (module i, Adam `optimizers[i]`).

    `parts[k]` holds the transitions sampled from agent k's buffer (OBS, ACTIONS,
    REWARDS, NEXT_OBS, TERMINATEDS): M // N each for SEQL, where every agent
    trains on all parts (own part + lambda x the others', App. D); M each for IQL,
    where agent i trains on part i only (Eq. 6). Then each target network moves
    by tau towards its Q-network if `update_targets` (`pairs`: the modules'
    `target_pairs`, computed here when not given). Returns the figures of
    STAT_NAMES per agent, [N, 6] (others_q_loss is 0 for IQL)."""
    n = len(modules)
    shared = settings.share_experience and n > 1
    if shared:
        joined = {c: torch.cat([p[c] for p in parts]) for c in parts[0]}
        bounds = torch.tensor([0] + [len(p[Columns.REWARDS]) for p in parts]).cumsum(0).tolist()
    if update_targets and pairs is None:
        pairs = [target_pairs(module) for module in modules]
    stats = []
    for i, (module, optimizer) in enumerate(zip(modules, optimizers)):
        batch = joined if shared else parts[i]
        q = module.compute_q_values({Columns.OBS: batch[Columns.OBS]})[QF_PREDS]
        with torch.no_grad():
            next_q = module.forward_target({Columns.OBS: batch[Columns.NEXT_OBS]})[QF_PREDS]
        target = q_target(
            batch[Columns.REWARDS],
            next_q,
            batch[Columns.TERMINATEDS],
            settings.gamma,
            settings.mask_terminals,
        )
        q_taken = q.gather(-1, batch[Columns.ACTIONS].long().unsqueeze(-1)).squeeze(-1)
        if shared:
            own = slice(bounds[i], bounds[i + 1])
            own_loss = q_loss(q_taken[own], target[own])
            others = torch.cat([q_taken[: bounds[i]], q_taken[bounds[i + 1] :]])
            others_target = torch.cat([target[: bounds[i]], target[bounds[i + 1] :]])
            others_loss = q_loss(others, others_target)
            loss = seql_loss(own_loss, others_loss, settings.seql_lambda)
        else:
            own_loss = loss = q_loss(q_taken, target)
            others_loss = torch.zeros(())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = _clip_global_norm(optimizer, settings.grad_clip, i)
        optimizer.step()
        if update_targets:
            soft_update_targets(pairs[i], settings.tau)
        q_taken = q_taken.detach()
        stats.append(
            torch.stack(
                [
                    loss.detach(),
                    own_loss.detach(),
                    others_loss.detach(),
                    q_taken.mean(),
                    (q_taken - target).abs().mean(),
                    norm,
                ]
            )
        )
    return torch.stack(stats)


def _clip_global_norm(optimizer, grad_clip: float | None, agent: int) -> torch.Tensor:
    """Scales the optimizer's gradients to global L2 norm `grad_clip` as RLlib's
    `clip_gradients(grad_clip_by="global_norm")` does (factor clip / max(norm +
    1e-6, clip)); returns the norm before clipping. A non-finite norm stops before
    any weight moves."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
    grads = [g for g in grads if g is not None]
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    if not torch.isfinite(norm):
        raise FloatingPointError(
            f"SEQL stopped before updating the weights: the gradient of agent {agent} "
            f"is not finite (global norm {norm.item()})."
        )
    if grad_clip is not None:
        factor = grad_clip / torch.clamp(norm + 1e-6, min=grad_clip)
        torch._foreach_mul_(grads, torch.clamp(factor, max=1.0))
    return norm


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
