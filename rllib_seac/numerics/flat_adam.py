"""Several modules' parameters and torch Adam state in flat buffers, one row per module,
for the fused CPU steps of SEAC (`seac/fused_step.py`) and SEQL (`seql/in_process/fused_step.py`).

On small networks a gradient step is dominated by per-call dispatch: a clip and an
Adam step per module cost more than their arithmetic. With every module's parameters,
gradients and Adam moments in one [modules, parameters] buffer each, the per-module
global-norm clip is one numpy row norm, Adam is one fused torch call for every module,
and the stacked weights [modules, out, in] of a layer are views of the buffer.

The buffers are RLlib's tensors: when made, the modules' parameters and their Adam
state (exp_avg, exp_avg_sq, step) are moved into them and the parameters and the
optimizers' state point at views of them. Checkpoints, `get_state`, the weight copy
to env runners and RLlib's LR schedules keep seeing the usual modules and optimizers;
`is_current` says when RLlib has replaced those tensors (an optimizer state restore)
and the owner must make its step again.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from rllib_seac.numerics.clipping import clip_global_norm_rows_

ADAM_KEYS = ("param", "grad", "exp_avg", "exp_avg_sq")


class FlatAdam:
    """The parameters of `optimizers` (torch Adams, one per module, the same
    parameter shapes each) and their Adam state, in flat [modules, P] buffers.

    `names` name the modules in errors; `algorithm` names who stopped."""

    def __init__(self, optimizers: list, names: list, algorithm: str):
        self._optimizers = optimizers
        self._names = list(names)
        self._algorithm = algorithm
        first = optimizers[0].param_groups[0]["params"]
        self._shapes = [p.shape for p in first]
        self._offsets = [0, *itertools.accumulate(p.numel() for p in first)]
        rows = len(optimizers)
        self.buffers = {key: torch.zeros(rows, self._offsets[-1]) for key in ADAM_KEYS}
        self.steps = torch.zeros(rows, len(first))
        with torch.no_grad():
            for m, opt in enumerate(optimizers):
                for j, param in enumerate(opt.param_groups[0]["params"]):
                    state = opt.state[param]
                    view = {key: self._row_view(self.buffers[key], m, j) for key in ADAM_KEYS}
                    view["param"].copy_(param)
                    param.data = view["param"]
                    for key in ("exp_avg", "exp_avg_sq"):
                        view[key].copy_(state[key])
                        state[key] = view[key]
                    self.steps[m, j] = state["step"]
                    state["step"] = self.steps[m, j]
        self._tracked = [p for opt in optimizers for p in opt.param_groups[0]["params"]]
        self._data_ptrs = [p.data_ptr() for p in self._tracked]
        self._states = [opt.state for opt in optimizers]
        self._groups = [opt.param_groups[0] for opt in optimizers]
        # Adam's arguments: per module (False), and for all modules at once (True).
        self._adam_rows = {
            False: [
                (*(self.buffers[key][m] for key in ADAM_KEYS), self.steps[m, 0])
                for m in range(rows)
            ],
            True: [(*(self.buffers[key] for key in ADAM_KEYS), self.steps[0, 0])],
        }
        self.grad = self.buffers["grad"].numpy()  # the gradients, [modules, P], in numpy
        self._steps = self.steps.numpy()

    @staticmethod
    def supports(optimizers) -> bool:
        """Whether these optimizers' parameters and state fit: every module's
        parameters of the same shapes, float32 on the CPU, Adam's state made, one
        step count and the same Adam settings (lr aside)."""
        shapes = [[p.shape for p in opt.param_groups[0]["params"]] for opt in optimizers]
        params = [p for opt in optimizers for p in opt.param_groups[0]["params"]]
        if any(s != shapes[0] for s in shapes) or any(
            p.dtype != torch.float32 or p.device.type != "cpu" for p in params
        ):
            return False
        states = [opt.state.get(p) for opt in optimizers for p in opt.param_groups[0]["params"]]
        if any(
            not s or not isinstance(s.get("step"), torch.Tensor) or s["step"].dtype != torch.float32
            for s in states
        ):
            return False
        groups = [opt.param_groups[0] for opt in optimizers]
        settings = {(tuple(g["betas"]), g["eps"], g["weight_decay"]) for g in groups}
        plain = not any(g.get("amsgrad") or g.get("maximize") for g in groups)
        return plain and len(settings) == 1 and len({float(s["step"]) for s in states}) == 1

    def _row_view(self, flat: torch.Tensor, m: int, j: int) -> torch.Tensor:
        return flat[m, self._offsets[j] : self._offsets[j + 1]].view(self._shapes[j])

    def stacked(self, j: int, flat: torch.Tensor | None = None) -> torch.Tensor:
        """Every module's j-th parameter (optimizer order), [modules, *shape]: a view
        of the parameters' buffer, or of `flat` laid out alike (`adopt`)."""
        flat = self.buffers["param"] if flat is None else flat
        return flat[:, self._offsets[j] : self._offsets[j + 1]].view(len(flat), *self._shapes[j])

    def adopt(self, tensors: list[list[torch.Tensor]]) -> torch.Tensor:
        """Moves other parameters laid out as the optimizers' (`tensors[m][j]` like
        module m's j-th parameter: e.g. target networks) into a flat [modules, P]
        buffer of their own, which they then view; returns it. `is_current` watches
        them too."""
        flat = torch.zeros_like(self.buffers["param"])
        with torch.no_grad():
            for m, row in enumerate(tensors):
                for j, tensor in enumerate(row):
                    view = self._row_view(flat, m, j)
                    view.copy_(tensor)
                    tensor.data = view
        adopted = [t for row in tensors for t in row]
        self._tracked += adopted
        self._data_ptrs += [t.data_ptr() for t in adopted]
        return flat

    def gradient_views(self, parameters: list) -> list[torch.Tensor]:
        """The gradient buffer's view of each of `parameters` (tensors that view the
        parameters' buffer): what a fused step computed for them, before clipping."""
        grad = self.buffers["grad"].reshape(-1)
        base = self.buffers["param"].untyped_storage().data_ptr()
        views = []
        for p in parameters:
            if p.untyped_storage().data_ptr() != base:
                raise ValueError("a parameter outside the flat buffers")
            start = p.storage_offset()
            views.append(grad[start : start + p.numel()].view_as(p))
        return views

    def is_current(self, params: bool = True) -> bool:
        """Whether the optimizers' state and param groups are still the ones laid out
        (RLlib's optimizer restore replaces them) and, with `params`, every tracked
        tensor still views the buffers (a `.data` assignment replaces its memory;
        one torch call per tensor, so callers may check this less often)."""
        return all(
            opt.state is state and opt.param_groups[0] is group
            for opt, state, group in zip(self._optimizers, self._states, self._groups)
        ) and (not params or list(map(torch.Tensor.data_ptr, self._tracked)) == self._data_ptrs)

    def clip(self, grad_clip: float | None) -> np.ndarray:
        """Each module's gradient row scaled to global norm `grad_clip`
        (`clipping.clip_global_norm_rows_`); returns the norms before clipping."""
        return clip_global_norm_rows_(self.grad, grad_clip, self._algorithm, self._names)

    def step(self) -> None:
        """torch's fused Adam on the flat buffers: one call for every module (one per
        module where their lrs differ), with each optimizer's current settings (RLlib's
        LR schedules set the lr). Every parameter's step count advances here at once;
        the kernel reads the count of each row's first parameter."""
        groups = self._groups
        lrs = [group["lr"] for group in groups]
        one_call = len(set(lrs)) == 1
        beta1, beta2 = groups[0]["betas"]
        self._steps += 1
        for (param, grad, exp_avg, exp_avg_sq, step), lr in zip(self._adam_rows[one_call], lrs):
            fused_adam(
                param,
                grad,
                exp_avg,
                exp_avg_sq,
                step,
                lr=lr,
                beta1=beta1,
                beta2=beta2,
                weight_decay=groups[0]["weight_decay"],
                eps=groups[0]["eps"],
            )


def fused_adam(param, grad, exp_avg, exp_avg_sq, step, **settings) -> None:
    """One Adam step of a flat tensor whose step count `step` has already advanced:
    the kernel `torch.optim.adam.adam(fused=True)` ends in (`torch._fused_adam_`),
    without that function's Python (it groups its lists by device and dtype and adds
    1 to the steps), which costs more than the kernel at these sizes. The tests that
    compare SEAC's and SEQL's fast steps with torch's own Adam check it."""
    torch._fused_adam_(
        [param],
        [grad],
        [exp_avg],
        [exp_avg_sq],
        [],
        [step],
        amsgrad=False,
        maximize=False,
        grad_scale=None,
        found_inf=None,
        **settings,
    )
