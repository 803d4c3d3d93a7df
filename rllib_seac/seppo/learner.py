"""SEPPOTorchLearner: RLlib's PPO loss per agent, plus lambda times its clipped
surrogate and value loss on every other agent's data."""

from __future__ import annotations

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns

from rllib_seac._rllib_internals import ReplacesMinibatchIterator
from rllib_seac.seppo import losses
from rllib_seac.seppo.connector import (
    SE_ADVANTAGES,
    SE_OLD_LOGP,
    SE_VALUE_TARGETS,
    SharedExperienceAdvantages,
)
from rllib_seac.seppo.minibatches import AlignedMiniBatchIterator
from rllib_seac.torch_threads import set_torch_threads

OTHERS_POLICY_LOSS_KEY = "others_policy_loss"
OTHERS_VF_LOSS_KEY = "others_vf_loss"


class SEPPOTorchLearner(ReplacesMinibatchIterator, PPOTorchLearner):
    """Module i's loss: `PPOTorchLearner.compute_loss_for_module` on its own batch
    (RLlib's code, unchanged), plus `losses.others_terms` on every other agent k's
    minibatch, with module i's actor and critic evaluated on k's observations.

    With seppo_lambda = 0 nothing of this runs: the learner is RLlib's PPO learner,
    its connector and minibatches included (IPPO). With RLlib's own PPOConfig
    (`.training(learner_class=SEPPOTorchLearner)`), seppo_lambda is 1 and the
    importance weights unclipped.
    """

    def build(self) -> None:
        set_torch_threads(getattr(self.config, "torch_num_threads", None))
        super().build()
        self._module_ids = list(self.module.keys())
        self._lambda = getattr(self.config, "seppo_lambda", 1.0)
        self._is_weight_clip = getattr(self.config, "is_weight_clip", None)
        self._sharing = self._lambda > 0 and len(self._module_ids) > 1
        if self._sharing and self._learner_connector is not None:
            self._learner_connector.append(
                SharedExperienceAdvantages(
                    module_ids=self._module_ids,
                    gamma=self.config.gamma,
                    lambda_=self.config.lambda_,
                )
            )

    def minibatch_iterator(self, batch, **settings):
        """Every module's minibatch holds the same env steps (AlignedMiniBatchIterator)."""
        return AlignedMiniBatchIterator(batch, **settings) if self._sharing else None

    def compute_losses(self, *, fwd_out, batch):
        own = super().compute_losses(fwd_out=fwd_out, batch=batch)
        if not self._sharing:
            return own
        mids = self._module_ids
        for i, mid in enumerate(mids):
            others = [k for k in mids if k != mid]
            terms = self._others_terms(i, mid, others, batch)
            own[mid] = (
                own[mid] + terms["surrogate_loss"] + self._vf_coeff(mid) * terms["value_loss"]
            )
        return own

    def _vf_coeff(self, mid) -> float:
        return self.config.get_config_for_module(mid).vf_loss_coeff

    def _others_terms(self, i: int, mid, others: list, batch) -> dict:
        """Module `mid` (column i) on the minibatches of `others`, in one actor and
        one critic pass over their rows stacked."""
        config = self.config.get_config_for_module(mid)
        module = self.module[mid].unwrapped()
        rows = [len(batch[k][Columns.OBS]) for k in others]
        if len(set(rows)) != 1:
            raise ValueError(f"SE-PPO's minibatches differ in length across agents: {rows}.")
        stacked = {Columns.OBS: torch.cat([batch[k][Columns.OBS] for k in others])}
        out = module.forward_train(stacked)
        values = module.compute_values(stacked, embeddings=out.get(Columns.EMBEDDINGS))
        dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        actions = torch.cat([batch[k][Columns.ACTIONS] for k in others])
        shape = (len(others), rows[0])

        def column(name):
            return torch.stack([batch[k][name][:, i] for k in others])

        def own_column(name, default=None):
            if default is not None and name not in batch[others[0]]:
                return default
            return torch.stack([batch[k][name] for k in others])

        ones = torch.ones(shape, dtype=torch.bool, device=values.device)
        terms = losses.others_terms(
            logp=dist.logp(actions).reshape(shape),
            old_logp=column(SE_OLD_LOGP),
            behaviour_logp=own_column(Columns.ACTION_LOGP),
            advantages=column(SE_ADVANTAGES),
            values=values.reshape(shape),
            value_targets=column(SE_VALUE_TARGETS),
            mask=own_column(Columns.LOSS_MASK, ones),
            seppo_lambda=self._lambda,
            clip_param=config.clip_param,
            vf_clip_param=config.vf_clip_param,
            is_weight_clip=self._is_weight_clip,
        )
        mask = own_column(Columns.LOSS_MASK, ones)
        weights = terms["is_weights"][mask]
        self.metrics.log_dict(
            {
                OTHERS_POLICY_LOSS_KEY: terms["surrogate_loss"],
                OTHERS_VF_LOSS_KEY: terms["value_loss"],
                "is_weight_mean": weights.mean(),
                "is_weight_min": weights.min(),
                "is_weight_max": weights.max(),
            },
            key=mid,
            window=1,
        )
        return terms
