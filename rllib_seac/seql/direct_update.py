"""One SEQL/IQL gradient step of every agent's Q-network, without RLlib's Learner.update.

The same step as `SEQLTorchLearner` under RLlib's `Learner.update` (the loss of
`seql/losses.py`, global-norm gradient clipping as RLlib's `clip_gradients`, the
learner's own Adam optimizers, then DQN's Polyak target update), called once per
env step by `SEQL`'s direct loop. RLlib's path costs ~30 ms per step in batch
conversion, connectors and metric logging; this one is the arithmetic alone, through
autograd. The loop runs it for the first update (which makes Adam's state) and for
networks other than plain ReLU MLPs; otherwise `stacked_update.StackedUpdate`, the
same step with its gradients written out, whose reference it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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


@dataclass(frozen=True)
class AgentNetworks:
    """What one agent's update uses: Q(obs, .), its target network's Q(obs, .), the
    learner's optimizer of the Q-network and the (network, target) parameters;
    `plain_mlp`: whether q and target_q run the Linear layers directly."""

    q: Callable[[torch.Tensor], torch.Tensor]
    target_q: Callable[[torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    pairs: tuple[list, list]
    plain_mlp: bool


def agent_networks(module, optimizer) -> AgentNetworks:
    """`module`'s networks (a DQN RLModule) for `update_agents`.

    RLlib's `compute_q_values` / `forward_target` pass dicts through its encoder
    and head wrappers, a fifth of a step for 128-unit MLPs; where the networks are
    plain ReLU MLPs (SEQLConfig's default) and give the same Q-values, the update
    runs their Linear layers directly instead."""
    pairs = module.get_target_network_pairs()
    main = _relu_mlp_weights([m for m, _ in pairs])
    target = _relu_mlp_weights([t for _, t in pairs])
    if main and target and _same_q_values(module, main, target):
        return AgentNetworks(
            lambda obs: relu_mlp(main, obs),
            lambda obs: relu_mlp(target, obs),
            optimizer,
            target_pairs(module),
            plain_mlp=True,
        )
    return AgentNetworks(
        lambda obs: module.compute_q_values({Columns.OBS: obs})[QF_PREDS],
        lambda obs: module.forward_target({Columns.OBS: obs})[QF_PREDS],
        optimizer,
        target_pairs(module),
        plain_mlp=False,
    )


def relu_mlp(weights: list[tuple], x: torch.Tensor) -> torch.Tensor:
    for weight, bias in weights[:-1]:
        x = F.relu(F.linear(x, weight, bias))
    return F.linear(x, *weights[-1])


def _relu_mlp_weights(networks: list) -> list[tuple] | None:
    """(weight, bias) of each Linear layer of `networks` run one after the other,
    if their layers are Linear, ReLU, ..., Linear and nothing else; else None."""
    leaves = [m for net in networks for m in net.modules() if not list(m.children())]
    n_linear = (len(leaves) + 1) // 2
    expected = [torch.nn.Linear, torch.nn.ReLU] * (n_linear - 1) + [torch.nn.Linear]
    if [type(m) for m in leaves] != expected:
        return None
    return [(m.weight, m.bias) for m in leaves[::2]]


@torch.no_grad()
def _same_q_values(module, main: list[tuple], target: list[tuple]) -> bool:
    """Whether the Linear layers, run in order, are what RLlib's forward runs."""
    obs = torch.randn(4, main[0][0].shape[1])
    batch = {Columns.OBS: obs}
    return torch.allclose(
        relu_mlp(main, obs), module.compute_q_values(batch)[QF_PREDS]
    ) and torch.allclose(relu_mlp(target, obs), module.forward_target(batch)[QF_PREDS])


def update_agents(
    networks: list[AgentNetworks],
    parts: list[dict[str, torch.Tensor]],
    settings: UpdateSettings,
    update_targets: bool = True,
) -> torch.Tensor:
    """One gradient step of each agent i (`networks[i]`, see `agent_networks`).

    `parts[k]` holds the transitions sampled from agent k's buffer (OBS, ACTIONS,
    REWARDS, NEXT_OBS, TERMINATEDS): M // N each for SEQL, where every agent
    trains on all parts (own part + lambda x the others', App. D); M each for IQL,
    where agent i trains on part i only (Eq. 6). Then each target network moves
    by tau towards its Q-network if `update_targets`. Returns the figures of
    STAT_NAMES per agent, [N, 6] (others_q_loss is 0 for IQL)."""
    n = len(networks)
    shared = settings.share_experience and n > 1
    if shared:
        joined = {c: torch.cat([p[c] for p in parts]) for c in parts[0]}
        bounds = torch.tensor([0] + [len(p[Columns.REWARDS]) for p in parts]).cumsum(0).tolist()
    stats = []
    for i, agent in enumerate(networks):
        batch = joined if shared else parts[i]
        q = agent.q(batch[Columns.OBS])
        with torch.no_grad():
            next_q = agent.target_q(batch[Columns.NEXT_OBS])
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
        agent.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = _clip_global_norm(agent.optimizer, settings.grad_clip, i)
        agent.optimizer.step()
        if update_targets:
            soft_update_targets(agent.pairs, settings.tau)
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
