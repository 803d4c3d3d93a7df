"""SEACTorchLearner: Eqs. 4 and 5 for every agent in one learner step.

The loss is written once: the terms in `losses.py`, assembled per module by
`compute_losses` and differentiated by autograd. That is what trains unless the fused
step applies (`fused_update="auto"`, the default, on the CPU): the same loss
differentiated by hand for speed (`fused_step.py`), used only while this learner's
loss path and the modules are the stock ones, and after a self-check on a synthetic
batch has given autograd's gradients.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
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

from rllib_seac import _rllib_internals
from rllib_seac.agent_modules import module_of_each_agent
from rllib_seac.columns import (
    ACTIONS,
    BEHAVIOUR_LOGP,
    COLUMNS,
    NEXT_OBS,
    OBS,
    REWARDS,
    TERMINATEDS,
    TRUNCATEDS,
)
from rllib_seac.fused_guard import gradients_differ, overridden
from rllib_seac.numerics import shared_experience
from rllib_seac.numerics.clipping import clip_global_norm_
from rllib_seac.numerics.stacked_mlp import relu_mlp_linears
from rllib_seac.seac import losses
from rllib_seac.seac.fused_step import FusedStep
from rllib_seac.seac.rl_module import SEACTorchRLModule
from rllib_seac.torch_threads import set_torch_threads

logger = logging.getLogger(__name__)

# What the fused step computes in place of these learner methods and RLModule methods:
# it is used only while a learner and its modules override none of them.
LOSS_PATH = (
    "compute_losses",
    "compute_loss_for_module",
    "loss_terms",
    "forward_streams",
    "n_step_targets",
    "importance_weights",
    "experience_weights",
    "policy_loss",
    "value_loss",
    "entropy_bonus",
    "total_loss",
    "compute_gradients",
    "postprocess_gradients",
    "postprocess_gradients_for_module",
    "apply_gradients",
    "configure_optimizers_for_module",
)
MODULE_PATH = ("forward_train", "_forward_train", "compute_values", "setup")


def _nothing_trained() -> dict:
    """What `update` counts between two reports."""
    return {"updates": 0, "env_steps": 0, "module_steps": {}, "losses": {}, "timesteps": {}}


def _is_plain_adam(optimizer, params: list) -> bool:
    """One group of exactly `params`, in order; no AMSGrad, maximize or decoupled decay."""
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return False
    group = optimizer.param_groups[0]
    same = len(group["params"]) == len(params) and all(
        a is b for a, b in zip(group["params"], params)
    )
    plain = not (group["amsgrad"] or group["maximize"] or group.get("decoupled_weight_decay"))
    return same and plain and not group["differentiable"]


class SEACTorchLearner(TorchLearner):
    """Trains agent i on its own batch and on every other agent k's batch.

    Every module is evaluated on the data of every agent it learns from through its
    `forward_train` and `compute_values` (`forward_streams`); the loss terms are
    methods (`policy_loss`, `value_loss`, ...) so that a subclass can change one.
    With lambda = 0 (IAC) only own data is evaluated, so IAC is plain A2C.
    """

    # The terms of Eqs. 4 and 5 (`losses.py`, the shared-experience weights in
    # `numerics/shared_experience.py`), each overridable on its own.
    n_step_targets = staticmethod(losses.n_step_targets)
    importance_weights = staticmethod(shared_experience.importance_weights)
    experience_weights = staticmethod(shared_experience.experience_weights)
    policy_loss = staticmethod(losses.policy_loss)
    value_loss = staticmethod(losses.value_loss)
    entropy_bonus = staticmethod(losses.entropy_bonus)
    total_loss = staticmethod(losses.total_loss)

    def build(self) -> None:
        super().build()
        set_torch_threads(self.config.torch_num_threads)
        groups = self.config.module_agents()
        self._module_ids = list(groups)
        agents = list(self.config.agent_ids)
        owner = [
            self._module_ids.index(m)
            for m in module_of_each_agent(self.config.policy_mapping_fn, agents)
        ]
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
        device = self.device
        self._streams = torch.tensor(streams, device=device)
        self._owner = torch.tensor(owner, device=device)
        arange = torch.arange(len(streams), device=device)
        # is_own[m, k]: stream k is module m's own experience (weight 1 in Eqs. 4, 5).
        self._is_own = self._owner[self._streams] == arange[:, None]
        # (module, stream) index pairs of other agents' data, for the IS weight stats.
        self._others = (~self._is_own).nonzero(as_tuple=True)
        self._shared_inputs = not own_only
        self._has_other_data = bool((~self._is_own).any())
        self._stats: dict = {}
        self._trained = _nothing_trained()
        # The fused step: made at the first step that finds Adam's state (and again
        # after RLlib replaces the tensors it works on), unless `_fused_off` says why not.
        self._fused: FusedStep | None = None
        self._fused_off: str | None = None
        # Whether the next step checks every parameter's memory (`_fused_step`).
        self._check_params = True
        # Without LR schedules the lrs stay put between reports, so the direct path
        # runs RLlib's `after_gradient_based_update` (it steps the schedules and logs
        # each module's lr: a metric log per module) once per report, not per update.
        self._lr_scheduled = any(
            isinstance(self.config.get_config_for_module(m).lr, (list, tuple))
            for m in self._module_ids
        )

    def configure_optimizers_for_module(self, module_id, config=None):
        params = self.get_parameters(self.module[module_id])
        self.register_optimizer(
            module_id=module_id,
            optimizer=torch.optim.Adam(params, eps=config.adam_eps, fused=True),
            params=params,
            lr_or_lr_schedule=config.lr,
        )

    def postprocess_gradients_for_module(self, *, module_id, config=None, module_gradients_dict):
        """Clips agent i's gradients to global norm `grad_clip` (per agent, as in A2C).

        A non-finite norm stops training before any weight moves (RLlib's own scans
        are off through `torch_skip_nan_gradients`)."""
        grads = [g for g in module_gradients_dict.values() if g is not None]
        if grads:
            clip_global_norm_(grads, config.grad_clip, "SEAC", module_id)
        return module_gradients_dict

    def compute_losses(self, *, fwd_out, batch):
        """Eqs. 4 and 5 per module. `fwd_out` is not read: module i is evaluated on
        every agent's data, not only its own batch, by `forward_streams`."""
        data, pairs = self._data_and_pairs(batch)
        logits, values, next_values = self.forward_streams(data, pairs)
        terms = self.loss_terms(data, pairs, logits, values, next_values)
        return {mid: terms["total"][m] for m, mid in enumerate(self._module_ids)}

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        raise NotImplementedError(
            "SEAC's loss of one agent depends on every agent's data; it is computed "
            "for all modules at once in `compute_losses`."
        )

    def _data_and_pairs(self, batch):
        data = self._stream_data(batch)  # column -> [K, E, T, ...], agent order
        # Per (module m, stream k) pair: [M, K', E, T, ...]. Observations are only
        # gathered per pair when modules see different data (IAC).
        pair_columns = COLUMNS[2:] if self._shared_inputs else COLUMNS
        return data, {col: data[col][self._streams] for col in pair_columns}

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

    def forward_streams(self, data, pairs):
        """Each module i on the streams k it learns from: the logits of pi_i(.|o^k),
        V_i(o^k) and the bootstrap values V_i(o^k_{t+1}), [M, K', E, T(, A)], through
        the modules' `forward_train` and `compute_values`."""
        # Shared: every module sees every agent's data, [K, E, T, D]; else module m
        # sees its own agents' data, [M, K', E, T, D].
        source = data if self._shared_inputs else pairs
        obs, next_obs = source[OBS], source[NEXT_OBS]
        # The n-step targets read V(o_{t+1}) only where the chain is cut: the last
        # step, and truncations (rare). Targets are constants, so no graph.
        every_step = bool(source[TRUNCATEDS][..., :-1].any())
        rows = next_obs if every_step else next_obs[..., -1:, :]
        logits, values, next_values = [], [], []
        for m, mid in enumerate(self._module_ids):
            module = self.module[mid]
            x = obs if self._shared_inputs else obs[m]
            flat = {Columns.OBS: x.reshape(-1, x.shape[-1])}
            logits.append(module.forward_train(flat)[Columns.ACTION_DIST_INPUTS])
            values.append(module.compute_values(flat))
            nxt = rows if self._shared_inputs else rows[m]
            with torch.no_grad():
                next_values.append(
                    module.compute_values({Columns.OBS: nxt.reshape(-1, nxt.shape[-1])})
                )
        lead = (len(self._module_ids), *x.shape[:-1])
        logits = torch.stack(logits).reshape(*lead, -1)
        values = torch.stack(values).reshape(lead)
        next_rows = torch.stack(next_values).reshape(*lead[:-1], -1)
        if every_step:
            return logits, values, next_rows
        next_values = torch.zeros_like(values)
        next_values[..., -1:] = next_rows
        return logits, values, next_values

    def loss_terms(self, data, pairs, logits, values, next_values) -> dict:
        """Eqs. 4 and 5 per module from the networks' outputs; stops on a non-finite
        loss. Returns the per-module total (what trains) and its terms."""
        cfg = self.config
        log_pi = F.log_softmax(logits, dim=-1)
        logp = log_pi.gather(-1, pairs[ACTIONS].long().unsqueeze(-1)).squeeze(-1)
        entropy = -(log_pi.exp() * log_pi).sum(-1)

        if cfg.seac_target == "authors" and self._shared_inputs:
            # As the authors' code: agent k's targets bootstrap with k's own critic.
            streams = torch.arange(len(self._owner), device=self._owner.device)
            next_values = next_values[self._owner, streams].expand_as(next_values)
        # y^k_i of Eq. 5: n-step targets, bootstrapped with V_i (paper) or V_k.
        targets = self.n_step_targets(
            pairs[REWARDS],
            next_values,
            pairs[TERMINATEDS],
            pairs[TRUNCATEDS],
            cfg.gamma,
        )
        advantages = targets - values
        is_weights = self.importance_weights(logp, pairs[BEHAVIOUR_LOGP], cfg.is_weight_clip)
        weights = self.experience_weights(self._is_own, is_weights, cfg.seac_lambda)

        policy = self.policy_loss(logp, advantages, weights)  # Eq. 4
        value = self.value_loss(advantages, weights)  # Eq. 5
        bonus = self.entropy_bonus(entropy, self._is_own)
        total = self.total_loss(policy, value, bonus, cfg.vf_loss_coeff, cfg.entropy_coeff)

        if not torch.isfinite(total).all():
            terms = {"policy_loss": policy.detach(), "value_loss": value.detach()}
            self._raise_non_finite(data, terms)
        stats = torch.stack([policy.detach(), value.detach(), bonus.detach()])
        others = None
        if self._has_other_data:  # each module's IS weights on other agents' data
            others = is_weights[self._others].reshape(len(is_weights), -1)
        self._accumulate_stats(stats, others)
        return {"total": total, "policy_loss": policy, "value_loss": value, "entropy": bonus}

    def _raise_non_finite(self, data, terms) -> None:
        """Stops before the optimiser step, naming the module, the term and the cause
        (`data` and `terms` are torch tensors or numpy arrays)."""
        agents = self.config.agent_ids
        causes = [
            f"{col} of {agents[k]}"
            for col in (REWARDS, OBS, NEXT_OBS)
            for k in range(len(agents))
            if not torch.isfinite(torch.as_tensor(data[col][k])).all()
        ]
        bad = [
            f"{name} of {mid} = {values[m].item():.4g}"
            for name, values in terms.items()
            for m, mid in enumerate(self._module_ids)
            if not math.isfinite(values[m].item())
        ]
        raise FloatingPointError(
            f"SEAC stopped before updating the weights: {', '.join(bad) or 'the entropy'} "
            f"is not finite. Non-finite inputs: {', '.join(causes) or 'none'}."
        )

    # --- the fused step: when it may run, and its self-check ---

    def _fused_step(self, batch: MultiAgentBatch) -> FusedStep | None:
        """The fused step on the modules' and optimizers' current tensors, or None
        where autograd's step runs: settings or classes it does not cover (decided
        once, one log line), Adam's state not made yet (the first update makes it)."""
        if self._fused_off is not None:
            return None
        step = self._fused
        # RLlib's optimizer restore (it replaces the optimizers' state) is looked for
        # at every step; the parameters' memory (a `.data` assignment: one torch call
        # per parameter, ~1 % of a 4-agent update) at the first step after each
        # report, as only code between training iterations replaces it.
        check_params, self._check_params = self._check_params, False
        if step is not None and step.is_current(params=check_params):
            return step
        if not self._adam_ready():
            return None
        layers = self._fused_layers()
        if isinstance(layers, str):
            return self._turn_fused_off(layers)
        first = step is None
        step = FusedStep(
            layers=layers,
            optimizers=self._optimizers,
            config=self.config,
            grad_clip=self._grad_clip,
            module_ids=self._module_ids,
            streams=self._streams.tolist(),
            owner=self._owner.tolist(),
            is_own=self._is_own.tolist(),
            shared=self._shared_inputs,
        )
        if first:
            failed = self._self_check(step, batch)
            if failed:
                return self._turn_fused_off(failed, warn=True)
        self._fused = step
        return step

    def _turn_fused_off(self, reason: str, warn: bool = False) -> None:
        self._fused_off = reason
        if self.config.fused_update != "off":
            (logger.warning if warn else logger.info)(
                "SEAC trains through autograd, not the fused step: %s.", reason
            )

    def _fused_layers(self) -> dict | str:
        """Per network, the modules' Linear layers, where the fused step computes what
        this learner would: else why not."""
        if self.config.fused_update == "off":
            return "fused_update='off'"
        if self.device.type != "cpu":
            return f"the learner is on {self.device}, the fused step on the CPU only"
        changed = overridden(self, SEACTorchLearner, LOSS_PATH)
        if changed:
            return f"{type(self).__name__} overrides {', '.join(changed)}"
        if _rllib_internals.torch_learner_customises_optimizer_step(self):
            return "the optimizer step is customised (grad scaler, LR scheduler or compile)"
        clips = {self.config.get_config_for_module(m).grad_clip for m in self._module_ids}
        if len(clips) != 1:
            return "the modules clip their gradients differently"
        layers = {"actor": [], "critic": []}
        for mid in self._module_ids:
            module = self.module[mid]
            changed = overridden(module, SEACTorchRLModule, MODULE_PATH)
            if not isinstance(module, SEACTorchRLModule) or changed:
                return f"module {mid} is a {type(module).__name__} ({', '.join(changed)})"
            for net in layers:
                linears = relu_mlp_linears(getattr(module, net))
                if linears is None:
                    return f"the {net} of {mid} is not a ReLU MLP"
                layers[net].append(linears)
        optimizers = []
        for m, mid in enumerate(self._module_ids):
            expected = [
                p
                for net in layers
                for linear in layers[net][m]
                for p in (linear.weight, linear.bias)
            ]
            named = self.get_optimizers_for_module(mid)
            if len(named) != 1 or not _is_plain_adam(named[0][1], expected):
                return f"the optimizer of {mid} is not one plain Adam over its layers"
            optimizers.append(named[0][1])
        if not FusedStep.supports(optimizers):
            return "the modules' parameters or Adam settings differ in shape, dtype or step"
        self._optimizers, self._grad_clip = optimizers, clips.pop()
        return layers

    def _adam_ready(self) -> bool:
        """Adam's state exists (autograd's step makes it on the first update and after
        a restore without optimizer state)."""
        return all(
            len(opt.state) == len(opt.param_groups[0]["params"])
            for mid in self._module_ids
            for _, opt in self.get_optimizers_for_module(mid)
        )

    def _self_check(self, step: FusedStep, batch: MultiAgentBatch) -> str | None:
        """Whether the fused step's losses and gradients are autograd's on random
        data of `batch`'s shapes; None if so, else what differs. Changes no weight."""
        rng = np.random.default_rng(0)
        synthetic = {}
        for mid, module_batch in batch.policy_batches.items():
            rows = len(module_batch)
            obs_shape = np.shape(module_batch[OBS])[1:]
            n_actions = self.module[mid].action_space.n
            terminated = rng.random(rows) < 0.15
            synthetic[mid] = {
                OBS: rng.standard_normal((rows, *obs_shape), np.float32),
                NEXT_OBS: rng.standard_normal((rows, *obs_shape), np.float32),
                ACTIONS: rng.integers(n_actions, size=rows),
                REWARDS: rng.standard_normal(rows, np.float32),
                TERMINATEDS: terminated,
                TRUNCATEDS: (rng.random(rows) < 0.15) & ~terminated,
                BEHAVIOUR_LOGP: np.log(rng.uniform(0.05, 1.0, rows)).astype(np.float32),
            }
        # (the check's loss statistics go to a dict of their own, then are dropped)
        stats, self._stats = self._stats, {}
        try:
            tensors = {
                mid: {col: torch.as_tensor(v) for col, v in b.items()}
                for mid, b in synthetic.items()
            }
            expected = self.compute_gradients(self.compute_losses(fwd_out={}, batch=tensors))
            params = [p for mid in self._module_ids for p in self.get_parameters(self.module[mid])]
            autograd = [expected[self.get_param_ref(p)] for p in params]
            step.gradients([synthetic[mid] for mid in self._module_ids], self._raise_non_finite)
            fused = step.flat_gradients(params)
        finally:
            self._stats = stats
            for opt in self._optimizers:
                opt.zero_grad(set_to_none=True)
        return gradients_differ(params, autograd, fused)

    def _fused_update(self, step: FusedStep, batch: MultiAgentBatch) -> dict:
        """One gradient step with the fused step; the per-module losses."""
        terms = step(
            [batch.policy_batches[mid] for mid in self._module_ids], self._raise_non_finite
        )
        self._accumulate_stats(terms["losses"], terms["is_weights_of_others"])
        return dict(zip(self._module_ids, terms["total"]))

    def _autograd_update(self, batch: MultiAgentBatch) -> dict:
        """One gradient step through RLlib's public Learner steps: `compute_losses`,
        `compute_gradients`, `postprocess_gradients` (per-agent clipping),
        `apply_gradients` (Adam). The per-module losses."""
        device = self.device
        tensors = {
            mid: {
                # (a copy where the column is read-only: torch warns on those)
                col: torch.as_tensor(np.require(module_batch[col], requirements="W"), device=device)
                for col in COLUMNS
            }
            for mid, module_batch in batch.policy_batches.items()
        }
        loss_per_module = self.compute_losses(fwd_out={}, batch=tensors)
        gradients = self.compute_gradients(loss_per_module)
        self.apply_gradients(self.postprocess_gradients(gradients))
        return {mid: loss.detach() for mid, loss in loss_per_module.items()}

    def _accumulate_stats(self, losses, is_weights_of_others) -> None:
        """Keeps this step's per-module figures for the iteration's stats: `losses`
        [3, M] (policy, value, entropy), `is_weights_of_others` each module's IS
        weights on other agents' data, [M, (K'-1) * E * T], or None (no such data).

        Tensors or numpy arrays, as the step made them: `update` turns them into
        metrics only when the metrics are reduced, so each reported figure covers
        every step since the last report. The IS weights are kept whole for their
        quantiles: the paper's Fig. 6 reads their spread, not only extremes.
        """
        acc = self._stats
        acc.setdefault("losses", []).append(losses)
        if is_weights_of_others is not None:
            acc.setdefault("is_weights", []).append(is_weights_of_others)

    def update(
        self, batch=None, *, training_data=None, timesteps=None, _no_metrics_reduce=False, **kwargs
    ):
        """One gradient step on the batch; metrics are reduced only when asked.

        RLlib's `Learner.update` wraps each step in a minibatch iterator, Ray
        gauges and ~20 metric logs: for a 20-sample A2C step that is a sixth of
        the learner's time. One batch (what SEAC sends) takes the direct path:
        the same hooks and gradient step (autograd's or the fused one), with the
        step counts summed and logged at the report (and, without LR schedules,
        `after_gradient_based_update` run there once). Anything else (epochs,
        minibatches) goes through RLlib's path, and so through `compute_losses`.
        """
        if training_data is not None:
            batch = _rllib_internals.training_data_batch(training_data)
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
        _rllib_internals.count_weights_update(self)
        step = self._fused_step(batch)
        if step is not None:
            losses_per_module = self._fused_update(step, batch)
        else:
            losses_per_module = self._autograd_update(batch)
        trained = self._trained
        trained["updates"] += 1
        trained["env_steps"] += batch.env_steps()
        for mid, module_batch in batch.policy_batches.items():
            trained["module_steps"][mid] = trained["module_steps"].get(mid, 0) + len(module_batch)
        trained["losses"] = losses_per_module
        trained["timesteps"] = timesteps
        if self._lr_scheduled:
            self.after_gradient_based_update(timesteps=timesteps)

    def _log_trained(self) -> None:
        """RLlib's steps-trained metrics for every step since the last report (the
        keys `Learner.update` logs: tests/test_rllib_internals.py compares them)."""
        trained, self._trained = self._trained, _nothing_trained()
        self._check_params = True
        if not trained["updates"]:
            return
        if not self._lr_scheduled:
            self.after_gradient_based_update(timesteps=trained["timesteps"])
        log = self.metrics.log_value
        seq_no = _rllib_internals.weights_seq_no(self)
        for mid, samples in trained["module_steps"].items():
            log((mid, WEIGHTS_SEQ_NO), seq_no, window=1)
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
        _rllib_internals.count_steps_trained_in_ray_metrics(self, env_steps, module_steps)
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
        losses = torch.stack([torch.as_tensor(x) for x in acc["losses"]]).mean(0)
        columns = dict(zip(["policy_loss", "value_loss", "entropy"], losses))
        if "is_weights" in acc:
            weights = torch.cat([torch.as_tensor(w) for w in acc["is_weights"]], dim=1)
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
