"""SE-PPO's learner connector piece: every module's advantages and log-probs on
every other agent's data, before the update.

RLlib's PPO computes GAE in its learner connector (`GeneralAdvantageEstimation`):
one critic pass over each module's own batch, whose rows are each agent's episode
chunks with one bootstrap row appended (`AddOneTsToEpisodesAndTruncate`). This
piece runs right after it and does the same for every pair (i, k), i != k: module
i's critic V_i on agent k's batch (bootstrap rows included), GAE with k's rewards
and episode ends by RLlib's own `compute_value_targets`, advantages standardized
over k's batch as RLlib does for its own. It also records log pi_i(a^k|o^k) with
module i's weights before the update (pi_i_old of the clipped ratio). Results go
into k's batch as [rows, modules] columns (column i: module i's), so RLlib's
minibatching slices them with the rest of k's rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.postprocessing.value_predictions import compute_value_targets

# [rows, modules]: column i holds module i's value of each row of this agent's batch.
SE_ADVANTAGES = "seppo_advantages"
SE_VALUE_TARGETS = "seppo_value_targets"
SE_OLD_LOGP = "seppo_old_logp"
SE_COLUMNS = (SE_ADVANTAGES, SE_VALUE_TARGETS, SE_OLD_LOGP)


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class SharedExperienceAdvantages(ConnectorV2):
    """Adds SE_ADVANTAGES, SE_VALUE_TARGETS and SE_OLD_LOGP to every module's batch.

    `module_ids`: the modules in order (the column order). Each module acts for one
    agent, every agent at every env step, so row r of each module's batch is the same
    env step for all modules; the piece checks that from the episodes.
    """

    def __init__(
        self, input_observation_space=None, input_action_space=None, *, module_ids, gamma, lambda_
    ):
        super().__init__(input_observation_space, input_action_space)
        self.module_ids = list(module_ids)
        self.gamma = gamma
        self.lambda_ = lambda_

    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, **kwargs):
        self._check_rows_line_up(episodes)
        mids = self.module_ids
        missing = [m for m in mids if m not in batch]
        if missing:
            raise ValueError(f"SE-PPO: the train batch has no data for modules {missing}.")
        for k in mids:
            data = batch[k]
            rewards = _numpy(data[Columns.REWARDS]).astype(np.float32)
            terminateds = _numpy(data[Columns.TERMINATEDS]).astype(np.float32)
            truncateds = _numpy(data[Columns.TRUNCATEDS]).astype(np.float32)
            actions = data[Columns.ACTIONS]
            advantages, targets, old_logp = [], [], []
            for i in mids:
                if i == k:
                    # RLlib's own GAE (already in the batch) and the behaviour log-prob.
                    advantages.append(torch.as_tensor(data[Postprocessing.ADVANTAGES]))
                    targets.append(torch.as_tensor(data[Postprocessing.VALUE_TARGETS]))
                    old_logp.append(torch.as_tensor(data[Columns.ACTION_LOGP]))
                    continue
                module = rl_module[i].unwrapped()
                with torch.no_grad():
                    values = _numpy(module.compute_values(data))
                    logits = module.forward_train(data)[Columns.ACTION_DIST_INPUTS]
                    dist = module.get_train_action_dist_cls().from_logits(logits)
                    old_logp.append(dist.logp(actions))
                value_targets = compute_value_targets(
                    values=values,
                    rewards=rewards,
                    terminateds=terminateds,
                    truncateds=truncateds,
                    gamma=self.gamma,
                    lambda_=self.lambda_,
                )
                adv = value_targets - values
                # As RLlib's GeneralAdvantageEstimation standardizes its own.
                adv = (adv - adv.mean()) / max(1e-4, adv.std())
                advantages.append(torch.from_numpy(adv))
                targets.append(torch.from_numpy(value_targets))
            device = actions.device if isinstance(actions, torch.Tensor) else None
            for name, cols in (
                (SE_ADVANTAGES, advantages),
                (SE_VALUE_TARGETS, targets),
                (SE_OLD_LOGP, old_logp),
            ):
                cols = [c.to(device=device, dtype=torch.float32) for c in cols]
                data[name] = torch.stack(cols, dim=1)
        return batch

    def _check_rows_line_up(self, episodes) -> None:
        """Every module's batch lists the same episode chunks with the same lengths:
        each agent of each multi-agent episode has as many steps as the episode."""
        for episode in episodes:
            lengths = {aid: len(sa) for aid, sa in episode.agent_episodes.items() if sa.module_id}
            modules = {sa.module_id for sa in episode.agent_episodes.values()}
            if len(set(lengths.values())) > 1 or not set(self.module_ids) <= modules:
                raise ValueError(
                    "SE-PPO needs every agent to act at every env step (each agent's "
                    f"data is re-evaluated by the others, row by row); an episode has "
                    f"agent steps {lengths} for modules {sorted(map(str, modules))}."
                )
