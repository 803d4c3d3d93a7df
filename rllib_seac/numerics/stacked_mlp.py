"""Several same-shaped ReLU MLPs (one per agent) run as one: per layer, the agents'
weights stacked [M, out, in], so a layer is one batched matmul whatever M is.

SEAC's and SEQL's fused update steps run their networks forward and backward here;
SEAC's rollouts sample actions with the numpy forward. Which networks qualify is
decided once, by `relu_mlp_linears`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def relu_mlp_linears(*networks: nn.Module) -> list[nn.Linear] | None:
    """The Linear layers of `networks` run one after the other, if their leaf modules
    are Linear, ReLU, ..., Linear and nothing else; else None. (Whether a network's
    forward really runs them in that order is for the caller's self-check.)"""
    leaves = [m for net in networks for m in net.modules() if not list(m.children())]
    n_linear = (len(leaves) + 1) // 2
    expected = [nn.Linear, nn.ReLU] * (n_linear - 1) + [nn.Linear]
    if not leaves or [type(m) for m in leaves] != expected:
        return None
    return leaves[::2]


def layers_of(weights: list, biases: list) -> list[tuple]:
    """What `mlp_forward` multiplies by: per layer, the M stacked weights [M, out, in]
    transposed to [M, in, out] and the biases [M, out] as [M, 1, out] (views)."""
    return [(weight.transpose(1, 2), bias.unsqueeze(1)) for weight, bias in zip(weights, biases)]


def mlp_forward(layers: list[tuple], x: torch.Tensor) -> list[torch.Tensor]:
    """M stacked ReLU MLPs (`layers_of` their weights and biases) on x [B, D] (seen
    by all) or [M, B, D]: the input and every layer's output, the last one [M, B, out]
    (`mlp_backward` needs them all)."""
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


def numpy_layers(linears_per_network: list[list[nn.Linear]]) -> list[tuple[np.ndarray, ...]]:
    """Copies of N networks' Linear layers as float32 arrays, per layer W^T [N, in, out]
    and b [N, 1, out]: what `numpy_mlp_forward` multiplies by."""
    return [
        (
            np.stack([net[i].weight.detach().cpu().numpy().T for net in linears_per_network]),
            np.stack([net[i].bias.detach().cpu().numpy() for net in linears_per_network])[:, None],
        )
        for i in range(len(linears_per_network[0]))
    ]


def numpy_mlp_forward(layers: list[tuple[np.ndarray, ...]], x: np.ndarray) -> np.ndarray:
    """`mlp_forward`'s output in numpy, for inference on a few rows per network
    (x [N, B, D]): there a numpy op costs a fraction of a torch call."""
    last = len(layers) - 1
    for i, (weight_t, bias) in enumerate(layers):
        x = np.matmul(x, weight_t) + bias
        if i < last:
            np.maximum(x, 0.0, out=x)
    return x
