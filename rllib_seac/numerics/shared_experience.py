"""The weights that share experience between agents (Christianos et al., 2020, Sec. 4),
for any algorithm that trains agent i on agent k's data: SEAC's Eqs. 4 and 5
(`seac/losses.py`) and SE-PPO's surrogate (`seppo/losses.py`).

`is_own[m, k]` says that data stream k is module m's own experience; weights are
per sample, [M, K', ...].
"""

from __future__ import annotations

import torch


def importance_weights(
    logp: torch.Tensor, behaviour_logp: torch.Tensor, clip: float | None = None
) -> torch.Tensor:
    """pi_i(a^k|o^k) / pi_k(a^k|o^k) of Eqs. 4 and 5, detached: it weights the
    gradient, it is not differentiated. `behaviour_logp` is pi_k's log-prob
    recorded when the action was sampled. Unclipped unless `clip` is given."""
    weights = torch.exp(logp.detach() - behaviour_logp)
    return weights if clip is None else weights.clamp(max=clip)


def experience_weights(
    is_own: torch.Tensor, is_weights: torch.Tensor, seac_lambda: float
) -> torch.Tensor:
    """Weight c_ik of each sample in module i's loss: 1 on its own experience,
    lambda * IS weight on another agent's (Eqs. 4 and 5). `is_own` is [M, K'] and
    broadcasts."""
    is_own = is_own[..., None, None]
    return torch.where(is_own, torch.ones_like(is_weights), seac_lambda * is_weights)
