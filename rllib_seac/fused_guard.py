"""When a fused update step may stand in for autograd's: the checks SEAC's and SEQL's
learners share.

A fused step computes the stock loss's gradients by hand. It may run only while
nothing it replaces was changed (`overridden`) and after a self-check on a synthetic
batch has given autograd's gradients (`gradients_differ`).
"""

from __future__ import annotations

import torch

# The fused step's gradients against autograd's on the self-check's synthetic batch:
# the largest difference per parameter tensor, relative to that tensor's largest
# gradient (float32 sums in another order differ by about 1e-6).
SELF_CHECK_TOLERANCE = 1e-4


def overridden(obj, base: type, names: tuple) -> list[str]:
    """Those of `names` that type(obj) defines otherwise than `base`."""
    return [n for n in names if getattr(type(obj), n, None) is not getattr(base, n, None)]


def gradients_differ(params, autograd, fused) -> str | None:
    """None if every fused gradient is autograd's within SELF_CHECK_TOLERANCE, else
    what differs (for the one line saying why the fused step stays off)."""
    for p, a, f in zip(params, autograd, fused):
        a, f = torch.as_tensor(a), torch.as_tensor(f)
        error = float((a - f).abs().max()) / (float(a.abs().max()) + 1e-12)
        if not error <= SELF_CHECK_TOLERANCE:
            return (
                f"its gradients differ from autograd's on a synthetic batch (relative "
                f"difference {error:.2g} in a parameter of shape {tuple(p.shape)})"
            )
    return None
