"""SEACTorchLearner: Eqs. 4 and 5 for every agent in one learner step."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.policy.sample_batch import MultiAgentBatch
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    MODULE_TRAIN_BATCH_SIZE_MEAN,
    NUM_ENV_STEPS_TRAINED,
    NUM_ENV_STEPS_TRAINED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
    WEIGHTS_SEQ_NO,
)

from rllib_seac import losses
from rllib_seac.rl_module import stack_mlps, stacked_forward

# Columns of a SEAC train batch. Each module's batch holds its agents' data laid
# out [agents of the module, envs, n_steps] and flattened to rows.
OBS, NEXT_OBS, ACTIONS, REWARDS = "obs", "new_obs", "actions", "rewards"
TERMINATEDS, TRUNCATEDS, BEHAVIOUR_LOGP = "terminateds", "truncateds", "action_logp"
COLUMNS = (OBS, NEXT_OBS, ACTIONS, REWARDS, TERMINATEDS, TRUNCATEDS, BEHAVIOUR_LOGP)


def _nothing_trained() -> dict:
    """What `update` counts between two reports."""
    return {"updates": 0, "env_steps": 0, "module_steps": {}, "losses": {}}


class SEACTorchLearner(TorchLearner):
    """Trains agent i on its own batch and on every other agent k's batch.

    All modules are evaluated on all agents' data in one batched call per
    network (actor, critic), with the modules' parameters stacked: the cost
    grows with the number of samples, not with N x N small forward passes.
    With lambda = 0 (IAC) only own data is evaluated, so IAC is plain A2C.
    """

    def build(self) -> None:
        super().build()
        # A2C batches are small (agents^2 x envs x n_steps rows of 64 units): one
        # thread beats several that contend with env stepping for the cores.
        torch.set_num_threads(1)
        groups = self.config.module_agents()
        self._module_ids = list(groups)
        agents = list(self.config.agent_ids)
        owner = [self._module_ids.index(self.config.policy_mapping_fn(a, None)) for a in agents]
        self._agents_per_module = [len(groups[m]) for m in self._module_ids]
        own_only = self.config.seac_lambda == 0 and len(self._module_ids) > 1
        # streams[m]: which agents' data module m is evaluated on (its k's).
        streams = [
            [k for k, o in enumerate(owner) if o == m] if own_only else list(range(len(agents)))
            for m in range(len(self._module_ids))
        ]
        if len({len(s) for s in streams}) != 1:
            raise ValueError(
                "With seac_lambda=0 every module must act for the same number of "
                f"agents; got {dict(zip(self._module_ids, self._agents_per_module))}."
            )
        self._streams = torch.tensor(streams)
        self._owner = torch.tensor(owner)
        self._own = self._owner[self._streams] == torch.arange(len(streams))[:, None]
        self._shared_inputs = not own_only
        self._has_other_data = bool((~self._own).any())
        self._stats: dict = {}
        self._trained = _nothing_trained()

    def configure_optimizers_for_module(self, module_id, config=None):
        params = self.get_parameters(self._module[module_id])
        self.register_optimizer(
            module_id=module_id,
            optimizer=torch.optim.Adam(params, eps=config.adam_eps, fused=True),
            params=params,
            lr_or_lr_schedule=config.lr,
        )

    def postprocess_gradients_for_module(self, *, module_id, config=None, module_gradients_dict):
        """Clips agent i's gradients to global norm `grad_clip` (per agent, as in A2C).

        One fused norm per module instead of RLlib's loop over tensors; the same
        norm checks for NaN/inf, which stops training before any weight moves
        (RLlib's own scans are off through `torch_skip_nan_gradients`).
        """
        grads = [g for g in module_gradients_dict.values() if g is not None]
        if not grads:
            return module_gradients_dict
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        if not torch.isfinite(norm):
            raise FloatingPointError(
                f"SEAC stopped before updating the weights: the gradient of {module_id} "
                f"is not finite (global norm {norm.item()})."
            )
        if config.grad_clip is not None:
            torch._foreach_mul_(grads, torch.clamp(config.grad_clip / (norm + 1e-6), max=1.0))
        return module_gradients_dict

    def compute_losses(self, *, fwd_out, batch):
        cfg = self.config
        data = self._stream_data(batch)  # column -> [K, E, T, ...], agent order
        # Per (module m, stream k) pair: [M, K', E, T, ...]. Observations are only
        # gathered per pair when modules see different data (IAC).
        pair_columns = COLUMNS[2:] if self._shared_inputs else COLUMNS
        pairs = {col: data[col][self._streams] for col in pair_columns}
        logits, values, next_values = self._evaluate(data, pairs)

        log_pi = F.log_softmax(logits, dim=-1)
        logp = log_pi.gather(-1, pairs[ACTIONS].long().unsqueeze(-1)).squeeze(-1)
        entropy = -(log_pi.exp() * log_pi).sum(-1)

        if cfg.seac_target == "reference" and self._shared_inputs:
            # As the authors' code: agent k's targets bootstrap with k's own critic.
            streams = torch.arange(len(self._owner))
            next_values = next_values[self._owner, streams].expand_as(next_values)
        # y^k_i of Eq. 5: n-step returns, bootstrapped with V_i (paper) or V_k.
        returns = losses.n_step_returns(
            pairs[REWARDS],
            next_values,
            pairs[TERMINATEDS],
            pairs[TRUNCATEDS],
            cfg.gamma,
        )
        advantages = returns - values
        is_weights = losses.importance_weights(logp, pairs[BEHAVIOUR_LOGP], cfg.is_weight_clip)
        coefficients = losses.sample_coefficients(self._own, is_weights, cfg.seac_lambda)

        policy = losses.policy_loss(logp, advantages, coefficients)  # Eq. 4
        value = losses.value_loss(advantages, coefficients)  # Eq. 5
        bonus = losses.entropy_bonus(entropy, self._own)
        total = losses.total_loss(policy, value, bonus, cfg.vf_loss_coeff, cfg.entropy_coeff)

        if not torch.isfinite(total).all():
            terms = {"policy_loss": policy.detach(), "value_loss": value.detach()}
            self._raise_non_finite(data, terms)
        self._accumulate_stats(policy, value, bonus, is_weights)
        return {mid: total[m] for m, mid in enumerate(self._module_ids)}

    def _raise_non_finite(self, data, terms) -> None:
        """Stops before the optimiser step, naming the module, the term and the cause."""
        agents = self.config.agent_ids
        causes = [
            f"{col} of {agents[k]}"
            for col in (REWARDS, OBS, NEXT_OBS)
            for k in range(len(agents))
            if not torch.isfinite(data[col][k]).all()
        ]
        bad = [
            f"{name} of {mid} = {values[m].item():.4g}"
            for name, values in terms.items()
            for m, mid in enumerate(self._module_ids)
            if not torch.isfinite(values[m])
        ]
        raise FloatingPointError(
            f"SEAC stopped before updating the weights: {', '.join(bad) or 'the entropy'} "
            f"is not finite. Non-finite inputs: {', '.join(causes) or 'none'}."
        )

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        raise NotImplementedError(
            "SEAC's loss of one agent depends on every agent's data; it is computed "
            "for all modules at once in `compute_losses`."
        )

    def _stream_data(self, batch) -> dict[str, torch.Tensor]:
        """Splits each module's rows back into per-agent [E, T] streams."""
        n_steps = self.config.n_steps
        columns = {}
        for col in COLUMNS:
            parts = []
            for mid, n_agents in zip(self._module_ids, self._agents_per_module):
                value = batch[mid][col]
                parts.append(value.reshape(n_agents, -1, n_steps, *value.shape[1:]))
            columns[col] = torch.cat(parts)
        return columns

    def _evaluate(self, data, pairs):
        """logits, V(o_t) and bootstrap values V(o_{t+1}) of every module on its
        streams, [M, K', E, T]."""
        modules = [self.module[mid] for mid in self._module_ids]
        shared = self._shared_inputs
        # Shared: every module sees every agent's data, [K, E, T, D]; else module m
        # sees its own agents' data, [M, K', E, T, D].
        source = data if shared else pairs
        obs, next_obs = source[OBS], source[NEXT_OBS]
        lead = ((len(modules),) if shared else ()) + obs.shape[:-1]

        def run(net: str, x: torch.Tensor) -> torch.Tensor:
            nets = [getattr(m, net) for m in modules]
            flat = x.reshape(-1, x.shape[-1]) if shared else x.reshape(len(nets), -1, x.shape[-1])
            return stacked_forward(stack_mlps(nets), flat).reshape(*lead[:-1], -1)

        logits = run("actor", obs).reshape(*lead, -1)
        values = run("critic", obs)
        # The n-step targets read V(o_{t+1}) only where the chain is cut: the last
        # step, and truncations (rare). Targets are constants, so no graph either.
        with torch.no_grad():
            if source[TRUNCATEDS][..., :-1].any():
                next_values = run("critic", next_obs)
            else:
                next_values = torch.zeros_like(values)
                next_values[..., -1:] = run("critic", next_obs[..., -1:, :])
        return logits, values, next_values

    def _accumulate_stats(self, policy, value, entropy, is_weights) -> None:
        """Adds this step's per-module figures to the iteration's stats.

        A few tensor ops per step; `update` turns them into metrics only when the
        metrics are reduced, so each reported figure covers every step since the
        last report. The IS weights are kept whole (M x (K-1) x E x T per step) for
        their quantiles: the paper's Fig. 6 reads their spread, not only extremes.
        """
        acc = self._stats
        losses = torch.stack([policy.detach(), value.detach(), entropy.detach()])
        acc["sum"] = losses if "sum" not in acc else acc["sum"] + losses
        acc["steps"] = acc.get("steps", 0) + 1
        if self._has_other_data:
            others = (~self._own)[:, :, None, None].expand_as(is_weights)
            acc.setdefault("is_weights", []).append(is_weights[others].reshape(len(others), -1))

    def update(
        self, batch=None, *, training_data=None, timesteps=None, _no_metrics_reduce=False, **kwargs
    ):
        """One gradient step on the batch; metrics are reduced only when asked.

        RLlib's `Learner.update` wraps each step in a minibatch iterator, Ray
        gauges and ~20 metric logs: for a 20-sample A2C step that is a sixth of
        the learner's time. One batch (what SEAC sends) takes the direct path:
        the same hooks and `_update`, with the step counts summed and logged at
        the report. Anything else goes through RLlib's path.
        """
        if training_data is not None:
            training_data.solve_refs()
            batch = training_data.batch
        one_step = kwargs.get("num_epochs", 1) == 1 and not kwargs.get("minibatch_size")
        if isinstance(batch, MultiAgentBatch) and one_step:
            self._one_step(batch, timesteps or {})
        else:
            super().update(
                batch=None if training_data is not None else batch,
                training_data=training_data,
                timesteps=timesteps,
                _no_metrics_reduce=True,
                **kwargs,
            )
        if _no_metrics_reduce:
            return None
        self._log_trained()
        self._log_stats()
        return self.metrics.reduce()

    def _one_step(self, batch, timesteps: dict) -> None:
        self.before_gradient_based_update(timesteps=timesteps)
        self._weights_seq_no += 1
        tensors = {
            mid: {col: torch.from_numpy(np.asarray(module_batch[col])) for col in COLUMNS}
            for mid, module_batch in batch.policy_batches.items()
        }
        _, losses_per_module, _ = self._update(tensors)
        trained = self._trained
        trained["updates"] += 1
        trained["env_steps"] += batch.env_steps()
        for mid, module_batch in batch.policy_batches.items():
            trained["module_steps"][mid] = trained["module_steps"].get(mid, 0) + len(module_batch)
        trained["losses"] = {mid: loss.detach() for mid, loss in losses_per_module.items()}
        self.after_gradient_based_update(timesteps=timesteps)

    def _log_trained(self) -> None:
        """RLlib's steps-trained metrics for every step since the last report."""
        trained, self._trained = self._trained, _nothing_trained()
        if not trained["updates"]:
            return
        log = self.metrics.log_value
        for mid, samples in trained["module_steps"].items():
            log((mid, WEIGHTS_SEQ_NO), self._weights_seq_no, window=1)
            log((mid, MODULE_TRAIN_BATCH_SIZE_MEAN), samples / trained["updates"], reduce="mean")
            log((mid, NUM_MODULE_STEPS_TRAINED), samples, reduce="sum")
            log(
                (mid, NUM_MODULE_STEPS_TRAINED_LIFETIME),
                samples,
                reduce="lifetime_sum",
                with_throughput=True,
            )
        module_steps = sum(trained["module_steps"].values())
        env_steps = trained["env_steps"]
        # Ray's own (Prometheus) counters, as RLlib's update increments them.
        self._metrics_all_modules_num_env_steps_trained.inc(value=env_steps)
        self._metrics_all_modules_num_module_steps_trained.inc(value=module_steps)
        for value, per_iteration, lifetime in (
            (module_steps, NUM_MODULE_STEPS_TRAINED, NUM_MODULE_STEPS_TRAINED_LIFETIME),
            (env_steps, NUM_ENV_STEPS_TRAINED, NUM_ENV_STEPS_TRAINED_LIFETIME),
        ):
            log((ALL_MODULES, per_iteration), value, reduce="sum", with_throughput=True)
            log((ALL_MODULES, lifetime), value, reduce="lifetime_sum", with_throughput=True)
        for mid, loss in trained["losses"].items():
            log((mid, self.TOTAL_LOSS_KEY), loss.item(), window=1)

    def _log_stats(self) -> None:
        acc, self._stats = self._stats, {}
        if not acc:
            return
        columns = dict(zip(["policy_loss", "value_loss", "entropy"], acc["sum"] / acc["steps"]))
        if "is_weights" in acc:
            weights = torch.cat(acc["is_weights"], dim=1)
            q05, q95 = torch.quantile(weights, torch.tensor([0.05, 0.95]), dim=1)
            columns.update(
                is_weight_mean=weights.mean(1),
                is_weight_min=weights.amin(1),
                is_weight_max=weights.amax(1),
                is_weight_q05=q05,
                is_weight_q95=q95,
            )
        # With several learners RLlib merges their figures by each stat's reduce:
        # the extremes of the IS weights stay extremes, the rest are averaged.
        extremes = {"is_weight_min": "min", "is_weight_max": "max"}
        for name, row in columns.items():
            for m, mid in enumerate(self._module_ids):
                reduce = extremes.get(name, "mean")
                self.metrics.log_value((mid, name), row[m].item(), reduce=reduce, window=1)
