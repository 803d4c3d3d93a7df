"""SEQLTorchLearner: every agent's Q-network trained on the shared batch (App. D).

The loss is written once, here (its terms in `losses.py`): RLlib's DQN loop and
SEQL's in-process loop both train with `compute_losses`, except where the fused step
(`fused_step.py`) stands in for it: a stock learner and modules, checked against
autograd before first use (`fused_update="auto"`).
"""

from __future__ import annotations

import torch
from ray.rllib.algorithms.dqn.dqn_learner import (
    QF_LOSS_KEY,
    QF_MEAN_KEY,
    QF_PREDS,
    QF_TARGET_NEXT_PREDS,
    TD_ERROR_MEAN_KEY,
)
from ray.rllib.algorithms.dqn.torch.dqn_torch_learner import DQNTorchLearner
from ray.rllib.core.columns import Columns

from rllib_seac.seql.losses import q_loss, q_target, seql_loss
from rllib_seac.torch_threads import set_torch_threads

OWN_Q_LOSS_KEY = "own_q_loss"
OTHERS_Q_LOSS_KEY = "others_q_loss"


class SEQLTorchLearner(DQNTorchLearner):
    """DQN's learner (soft target updates, per-agent optimizers and gradient clipping)
    with the loss of App. D.

    The batch holds, per module, the transitions sampled from that agent's buffer:
    M/N each with shared experience, M without (IQL). RLlib's forward pass already
    gives agent i's Q-values on its own part; with sharing, agent i's networks also
    run on every other agent's part, so each agent trains on the same M transitions.
    """

    # The terms of Eq. 6 and App. D (`losses.py`), each overridable on its own.
    q_target = staticmethod(q_target)
    q_loss = staticmethod(q_loss)
    seql_loss = staticmethod(seql_loss)

    def build(self) -> None:
        super().build()
        set_torch_threads(self.config.torch_num_threads)
        # Per module, this step's [loss, own loss, others' loss, mean Q, mean |TD|]
        # (`STAT_NAMES` but the gradient norm), for the in-process loop's figures.
        self.last_figures: dict = {}

    def configure_optimizers_for_module(self, module_id, config=None):
        # RLlib's default Adam, fused: one kernel per step instead of a Python loop
        # over tensors, which costs more than the update of these small networks.
        params = self.get_parameters(self.module[module_id])
        self.register_optimizer(
            module_id=module_id,
            optimizer=torch.optim.Adam(params, fused=True),
            params=params,
            lr_or_lr_schedule=config.lr,
        )

    def compute_losses(self, *, fwd_out, batch):
        config = self.config
        losses = {}
        for mid in fwd_out:
            own = _transitions(batch[mid], fwd_out[mid])
            own_loss, own_q, own_td = self._eq6(own)
            if config.share_experience:
                module = self.module[mid].unwrapped()
                others = [
                    _transitions(batch[k], _forward(module, batch[k])) for k in batch if k != mid
                ]
                others_loss, others_q, others_td = self._eq6(_concat(others))
                loss = self.seql_loss(own_loss, others_loss, config.seql_lambda)
                q = torch.cat([own_q, others_q])
                td = torch.cat([own_td, others_td])
                self.metrics.log_value((mid, OTHERS_Q_LOSS_KEY), others_loss, window=1)
            else:
                loss, q, td = own_loss, own_q, own_td
                others_loss = torch.zeros_like(own_loss)
            losses[mid] = loss
            self.last_figures[mid] = torch.stack(
                [loss.detach(), own_loss.detach(), others_loss.detach(), q.mean(), td.mean()]
            )
            self.metrics.log_dict(
                {
                    QF_LOSS_KEY: loss,
                    OWN_Q_LOSS_KEY: own_loss,
                    QF_MEAN_KEY: q.mean(),
                    TD_ERROR_MEAN_KEY: td.mean(),
                },
                key=mid,
                window=1,  # this update's values, not smoothed over updates
            )
        return losses

    def _eq6(self, t: dict):
        """Eq. 6 on transitions `t`; also Q(s, a) and |TD error| per transition."""
        target = self.q_target(
            t[Columns.REWARDS],
            t[QF_TARGET_NEXT_PREDS],
            t[Columns.TERMINATEDS],
            self.config.gamma,
            self.config.mask_terminals,
        )
        q_taken = t[QF_PREDS].gather(-1, t[Columns.ACTIONS].long().unsqueeze(-1)).squeeze(-1)
        return self.q_loss(q_taken, target), q_taken.detach(), (q_taken - target).abs().detach()


def _forward(module, batch: dict) -> dict:
    """Agent `module`'s Q-values on `batch`'s observations and its target network's
    on the next observations (what RLlib's forward_train gives for its own batch)."""
    return {
        QF_PREDS: module.compute_q_values({Columns.OBS: batch[Columns.OBS]})[QF_PREDS],
        QF_TARGET_NEXT_PREDS: module.forward_target({Columns.OBS: batch[Columns.NEXT_OBS]})[
            QF_PREDS
        ],
    }


def _transitions(batch: dict, out: dict) -> dict:
    columns = (Columns.REWARDS, Columns.TERMINATEDS, Columns.ACTIONS)
    return {
        **{c: batch[c] for c in columns},
        **{k: out[k] for k in (QF_PREDS, QF_TARGET_NEXT_PREDS)},
    }


def _concat(parts: list[dict]) -> dict:
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
