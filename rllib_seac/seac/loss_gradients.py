"""Hand-written gradients of SEAC's loss for the learner's direct step.

A SEAC step on Table 2's batch is a few thousand multiply-adds per layer: autograd's
per-node bookkeeping (about a hundred nodes) costs more than the arithmetic. The
networks are plain ReLU MLPs stacked across modules (`stacked_forward`), so the
backward pass is a handful of batched matmuls, written out here. The learner's
autograd path (`compute_losses` + backward) stays the reference: tests check these
gradients against it for SEAC, IAC, SNAC, both targets and truncations.

Shapes as in `losses`: [M, K', E, T] per sample, A actions; n = E * T, the mean of
Eqs. 4 and 5 over a stream's samples.
"""

from __future__ import annotations

import torch


def logits_gradient(
    log_pi: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    experience_weights: torch.Tensor,
    is_own: torch.Tensor,
    entropy_coeff: float,
) -> torch.Tensor:
    """d total_loss / d logits, [M, K', E, T, A].

    Eq. 4's term -c A log pi(a|o) / n (A and c constants) gives -c A (onehot(a) - pi) / n;
    the bonus -entropy_coeff * H / n on own streams gives entropy_coeff * pi (log pi + H) / n.
    """
    n = advantages.shape[-2] * advantages.shape[-1]
    probs = log_pi.exp()
    weight = (experience_weights * advantages / n).unsqueeze(-1)  # c A / n
    grad = probs * weight
    grad.scatter_add_(-1, actions.unsqueeze(-1), -weight)
    entropy = -(probs * log_pi).sum(-1, keepdim=True)
    bonus = (is_own.to(log_pi.dtype) * (entropy_coeff / n))[..., None, None, None]
    return grad + bonus * probs * (log_pi + entropy)


def values_gradient(
    advantages: torch.Tensor, experience_weights: torch.Tensor, vf_loss_coeff: float
) -> torch.Tensor:
    """d total_loss / d V(o), [M, K', E, T]: Eq. 5's c (y - V)^2 / n, y constant."""
    n = advantages.shape[-2] * advantages.shape[-1]
    return experience_weights * advantages * (-2.0 * vf_loss_coeff / n)


def layers_of(weights: list, biases: list) -> list[tuple]:
    """What `mlp_forward` multiplies by: per layer, the M stacked weights [M, out, in]
    transposed to [M, in, out] and the biases [M, out] as [M, 1, out] (views)."""
    return [(weight.transpose(1, 2), bias.unsqueeze(1)) for weight, bias in zip(weights, biases)]


def mlp_forward(layers: list[tuple], x: torch.Tensor) -> list[torch.Tensor]:
    """M stacked ReLU MLPs (`layers_of` their weights and biases) on x [B, D] (seen
    by all) or [M, B, D]: the input and every layer's output, the last one [M, B, out].
    The same ops as `rl_module.stacked_forward`, so the same values."""
    outputs = [x]
    x = x.expand(len(layers[0][0]), *x.shape[-2:])
    last = len(layers) - 1
    for i, (weight_t, bias) in enumerate(layers):
        x = torch.baddbmm(bias, x, weight_t)
        if i < last:
            x = torch.relu_(x)
        outputs.append(x)
    return outputs


def mlp_backward(weights: list, outputs: list, grad: torch.Tensor, out: list | None = None) -> list:
    """Gradients [dW_1, db_1, ..., dW_L, db_L] (each [M, ...]) of the stacked MLPs
    given d loss / d output [M, B, out] and `mlp_forward`'s outputs; written into
    `out` (tensors of those shapes, e.g. views of a flat buffer) where given, which
    saves concatenating them there."""
    grads: list[torch.Tensor] = [None] * (2 * len(weights))
    for i in reversed(range(len(weights))):
        inputs = outputs[i]
        if out is None:
            grads[2 * i + 1] = grad.sum(1)  # bias
        else:
            grads[2 * i + 1] = torch.sum(grad, 1, out=out[2 * i + 1])
        # [M, out, B] @ [B, in] (inputs seen by all modules) or @ [M, B, in]. bmm on
        # the inputs expanded (a view) is the call matmul reshapes its way to, without
        # its dispatch; but matmul sees a single output's [M, 1, B] as contiguous and
        # runs another MKL kernel, so a value head's stays with matmul (same sums).
        if grad.shape[-1] == 1:
            d_weight = grad.transpose(1, 2) @ inputs
        else:
            d_weight = torch.bmm(grad.transpose(1, 2), inputs.expand(len(grad), *inputs.shape[-2:]))
        grads[2 * i] = d_weight if out is None else out[2 * i].copy_(d_weight)
        if i:  # through the ReLU that made `inputs`: its output is > 0 where it passed
            # (autograd's ReLU backward: one vectorised kernel, where `* (inputs > 0)`
            # takes two unvectorised passes over mixed dtypes)
            grad = torch.ops.aten.threshold_backward(torch.bmm(grad, weights[i]), inputs, 0)
    return grads
