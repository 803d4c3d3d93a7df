"""Global-norm gradient clipping per module, as RLlib's
`clip_gradients(grad_clip_by="global_norm")`: every gradient of one module scaled by
min(clip / (norm + 1e-6), 1), where norm is the L2 norm of all of them together.

A non-finite norm stops training before any weight moves, naming the module: RLlib
would instead zero the gradient and step on (its own scans are off for SEAC and SEQL).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def clip_global_norm_(
    grads: list[torch.Tensor], grad_clip: float | None, algorithm: str, module: str
) -> torch.Tensor:
    """Scales one module's gradients in place; returns their norm before clipping."""
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    if not torch.isfinite(norm):
        raise non_finite_gradient(algorithm, module, norm.item())
    if grad_clip is not None:
        torch._foreach_mul_(grads, torch.clamp(grad_clip / (norm + 1e-6), max=1.0))
    return norm


def clip_global_norm_rows_(
    grads: np.ndarray, grad_clip: float | None, algorithm: str, modules: list
) -> np.ndarray:
    """The same for several modules at once: row m of `grads` [modules, P] holds every
    gradient of module m (a fused step's flat buffer). Returns the norms before
    clipping."""
    norms = np.sqrt(np.vecdot(grads, grads))
    # (a handful of floats: Python's isfinite over them costs less than numpy's)
    if not all(map(math.isfinite, norms.tolist())):
        m = int(np.flatnonzero(~np.isfinite(norms))[0])
        raise non_finite_gradient(algorithm, modules[m], norms[m])
    if grad_clip is not None:
        grads *= np.minimum(grad_clip / (norms + 1e-6), 1.0)[:, None]
    return norms


def non_finite_gradient(algorithm: str, module, norm: float) -> FloatingPointError:
    return FloatingPointError(
        f"{algorithm} stopped before updating the weights: the gradient of {module} is "
        f"not finite (global norm {norm})."
    )
