"""SE-PPO's term on other agents' data, as a plain tensor function.

Module i's loss is RLlib's PPO loss on its own data (clipped surrogate, clipped
value loss, entropy, KL penalty: `PPOTorchLearner.compute_loss_for_module`, unchanged)
plus, for every other agent k, lambda times PPO's clipped surrogate and value loss
on k's data, each sample weighted by the importance weight pi_i_old(a|o) / pi_k(a|o)
(docs/seppo.md writes the math out and says why the clip is on pi_i / pi_i_old).

The importance weight and the per-sample weight c_ik = lambda * weight are SEAC's
(`rllib_seac/numerics/shared_experience.py`), laid out as their docstrings say:
[M modules, K' streams, E, T], here with E = 1 and T the rows of a minibatch, and
every stream another agent's (`is_own` all False).

tests/test_seppo.py writes the whole loss out agent by agent, source by source and
row by row and checks the learner against it.
"""

from __future__ import annotations

import torch

from rllib_seac.numerics.shared_experience import experience_weights, importance_weights


def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's surrogate objective min(r A, clip(r, 1 - eps, 1 + eps) A), per sample."""
    return torch.min(advantages * ratio, advantages * ratio.clamp(1 - clip, 1 + clip))


def clipped_value_loss(values: torch.Tensor, targets: torch.Tensor, clip: float) -> torch.Tensor:
    """RLlib's PPO value loss per sample: (V(o) - target)^2, clamped to [0, clip]."""
    return (values - targets).pow(2).clamp(0, clip)


def others_terms(
    *,
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    behaviour_logp: torch.Tensor,
    advantages: torch.Tensor,
    values: torch.Tensor,
    value_targets: torch.Tensor,
    mask: torch.Tensor,
    seppo_lambda: float,
    clip_param: float,
    vf_clip_param: float,
    is_weight_clip: float | None = None,
) -> dict[str, torch.Tensor]:
    """Module i's loss terms on the other agents' minibatches, each tensor [K', B]
    (K' other agents, B rows of a minibatch; a leading module axis also works).

    logp: log pi_i(a^k|o^k) now (differentiated); old_logp: the same before the update
    (pi_i_old); behaviour_logp: log pi_k(a^k|o^k) recorded when k acted; advantages and
    value_targets: GAE of k's rewards with module i's critic; values: V_i(o^k) now
    (differentiated); mask: the rows that are real steps (not RLlib's bootstrap rows).

    Returns the per-module sums over k of masked means over rows: `surrogate_loss`
    (-lambda * w * clipped surrogate), `value_loss` (lambda * w * clipped value loss),
    and the importance weights `is_weights` [K', B] (detached, rows of the mask only
    meaningful).
    """
    is_weights = importance_weights(old_logp, behaviour_logp, is_weight_clip)
    # [K', B] -> SEAC's [M=1, K', E=1, T=B] layout, every stream another agent's.
    streams = is_weights.shape[-2]
    is_own = torch.zeros(1, streams, dtype=torch.bool, device=is_weights.device)
    weights = experience_weights(is_own, is_weights.unsqueeze(-2).unsqueeze(0), seppo_lambda)
    weights = weights.squeeze(0).squeeze(-2)
    ratio = torch.exp(logp - old_logp)
    surrogate = clipped_surrogate(ratio, advantages, clip_param)
    value = clipped_value_loss(values, value_targets, vf_clip_param)
    mask = mask.to(weights.dtype)
    valid = mask.sum(-1)

    def masked_mean_summed(terms):
        return ((terms * mask).sum(-1) / valid).sum(-1)

    return {
        "surrogate_loss": masked_mean_summed(-weights * surrogate),
        "value_loss": masked_mean_summed(weights * value),
        "is_weights": is_weights,
    }
