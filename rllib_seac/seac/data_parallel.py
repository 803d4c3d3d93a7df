"""Data-parallel SEAC learners (num_learners > 1): each holds an equal share of the envs.

RLlib's data parallelism wraps each module in torch DDP, whose gradient hooks are
armed only by DDP's own forward call. SEAC's learner evaluates each module on every
agent's data through the module's own `forward_train` and `compute_values`, never
DDP's forward, so DDP would never average anything.
This learner keeps the modules unwrapped and averages the gradients itself: one
all_reduce per step over every parameter. Each learner's loss is a mean over its
envs and steps, and the shares are equal (`SEACConfig.validate`), so the average is
the gradient of the whole batch; per-agent clipping then sees the same norm as a
single learner would.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from rllib_seac.seac.learner import SEACTorchLearner

NON_FINITE_ELSEWHERE = (
    "SEAC stopped before updating the weights: another learner's share of the batch "
    "gave a non-finite loss (that learner's error names the agent and the quantity)."
)


class DataParallelSEACLearner(SEACTorchLearner):
    """The gradients are all-reduced before clipping (the overrides below), so this
    learner always takes autograd's step: the fused step sees the overrides."""

    def _make_modules_ddp_if_necessary(self) -> None:
        # Instead of wrapping in DDP (see the module docstring): start every learner
        # from learner 0's weights, as DDP's constructor would.
        for module_id in sorted(self.module.keys()):
            for param in self.module[module_id].parameters():
                dist.broadcast(param.data, src=0)

    def compute_losses(self, *, fwd_out, batch):
        # A learner that stops on a non-finite loss must not leave the others
        # waiting for its gradients in all_reduce: all agree first.
        try:
            losses = super().compute_losses(fwd_out=fwd_out, batch=batch)
        except FloatingPointError:
            _all_agree(False, self.device)
            raise
        if not _all_agree(True, self.device):
            raise FloatingPointError(NON_FINITE_ELSEWHERE)
        return losses

    def compute_gradients(self, loss_per_module, **kwargs):
        grads = super().compute_gradients(loss_per_module, **kwargs)
        tensors = [g for g in grads.values() if g is not None]
        flat = torch.cat([g.reshape(-1) for g in tensors])
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
        chunks = torch.split(flat, [g.numel() for g in tensors])
        torch._foreach_copy_(tensors, [c.view_as(g) for c, g in zip(chunks, tensors)])
        return grads


def _all_agree(ok: bool, device) -> bool:
    """True when every learner's `ok` is True. The flag lives on the learner's
    device: NCCL (GPU learners) reduces only CUDA tensors, gloo CPU ones."""
    flag = torch.tensor([0.0 if ok else 1.0], device=device)
    dist.all_reduce(flag)
    return flag.item() == 0.0
