"""SEACTorchLearner: Eqs. 4 and 5 for every agent in one learner step."""

from __future__ import annotations

import math

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
from torch.optim.adam import adam as adam_step

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
from rllib_seac.seac import loss_gradients, losses
from rllib_seac.seac.numpy_step import NumpyStep
from rllib_seac.seac.rl_module import stack_mlps, stacked_forward
from rllib_seac.torch_threads import set_torch_threads


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

    All modules are evaluated on all agents' data in one batched call per
    network (actor, critic), with the modules' parameters stacked: the cost
    grows with the number of samples, not with N x N small forward passes.
    With lambda = 0 (IAC) only own data is evaluated, so IAC is plain A2C.
    """

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
        self._layers = self._linear_layers() if self.hand_written_gradients else None
        self._adam_state = None  # (optimizers' state dicts, Adam's per-parameter lists)
        # On the CPU the hand-written step runs in numpy (`numpy_step`), made at the
        # first step that finds Adam's state, and again after RLlib replaces it.
        self._numpy_allowed = self._layers is not None and device.type == "cpu"
        self._numpy_step = None
        # Whether the next step checks every parameter's memory (`_current_numpy_step`).
        self._check_params = True
        # Without LR schedules the lrs stay put between reports, so the direct path
        # runs RLlib's `after_gradient_based_update` (it steps the schedules and logs
        # each module's lr: a metric log per module) once per report, not per update.
        self._lr_scheduled = any(
            isinstance(self.config.get_config_for_module(m).lr, (list, tuple))
            for m in self._module_ids
        )

    # Subclasses that change how gradients are computed or combined (e.g. the
    # data-parallel learner's all-reduce) set this to False: RLlib's path then runs.
    hand_written_gradients = True

    def _linear_layers(self) -> dict[str, tuple] | None:
        """Per network, the modules' Linear weights and biases by layer, if every
        module is a ReLU MLP pair (actor, critic) whose parameters are exactly those
        layers' weights and biases in that order, trained by one Adam each, without
        grad scalers or LR scheduler classes: the case `loss_gradients` covers.
        None otherwise."""
        if _rllib_internals.torch_learner_customises_optimizer_step(self):
            return None
        clips = {self.config.get_config_for_module(m).grad_clip for m in self._module_ids}
        if len(clips) != 1:
            return None
        layers = {}
        for net in ("actor", "critic"):
            layers[net] = []
            for mid in self._module_ids:
                seq = getattr(self.module[mid], net, None)
                if not isinstance(seq, torch.nn.Sequential) or len(seq) % 2 != 1:
                    return None
                kinds = [type(layer) for layer in seq]
                if kinds != [torch.nn.Linear, torch.nn.ReLU] * (len(seq) // 2) + [torch.nn.Linear]:
                    return None
                layers[net].append(list(seq)[::2])
        optimizers = []
        for m, mid in enumerate(self._module_ids):
            expected = [
                p
                for net in ("actor", "critic")
                for linear in layers[net][m]
                for p in (linear.weight, linear.bias)
            ]
            named = self.get_optimizers_for_module(mid)
            if len(named) != 1 or not _is_plain_adam(named[0][1], expected):
                return None
            optimizers.append(named[0][1])
        self._optimizers, self._grad_clip = optimizers, clips.pop()
        # Per net, per layer: the modules' weights and biases (parameters, not
        # looked up through nn.Module at every step).
        return {
            net: (
                [[m[i].weight for m in per_module] for i in range(len(per_module[0]))],
                [[m[i].bias for m in per_module] for i in range(len(per_module[0]))],
            )
            for net, per_module in layers.items()
        }

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
        data, pairs = self._data_and_pairs(batch)
        logits, values, next_values = self._evaluate(data, pairs)
        terms = self._loss_terms(data, pairs, logits, values, next_values)
        return {mid: terms["total"][m] for m, mid in enumerate(self._module_ids)}

    def _data_and_pairs(self, batch):
        data = self._stream_data(batch)  # column -> [K, E, T, ...], agent order
        # Per (module m, stream k) pair: [M, K', E, T, ...]. Observations are only
        # gathered per pair when modules see different data (IAC).
        pair_columns = COLUMNS[2:] if self._shared_inputs else COLUMNS
        return data, {col: data[col][self._streams] for col in pair_columns}

    def _loss_terms(self, data, pairs, logits, values, next_values) -> dict:
        """Eqs. 4 and 5 per module from the networks' outputs, and what their
        gradients need; stops on a non-finite loss."""
        cfg = self.config
        log_pi = F.log_softmax(logits, dim=-1)
        logp = log_pi.gather(-1, pairs[ACTIONS].long().unsqueeze(-1)).squeeze(-1)
        entropy = -(log_pi.exp() * log_pi).sum(-1)

        if cfg.seac_target == "authors" and self._shared_inputs:
            # As the authors' code: agent k's targets bootstrap with k's own critic.
            streams = torch.arange(len(self._owner), device=self._owner.device)
            next_values = next_values[self._owner, streams].expand_as(next_values)
        # y^k_i of Eq. 5: n-step targets, bootstrapped with V_i (paper) or V_k.
        targets = losses.n_step_targets(
            pairs[REWARDS],
            next_values,
            pairs[TERMINATEDS],
            pairs[TRUNCATEDS],
            cfg.gamma,
        )
        advantages = targets - values
        is_weights = losses.importance_weights(logp, pairs[BEHAVIOUR_LOGP], cfg.is_weight_clip)
        weights = losses.experience_weights(self._is_own, is_weights, cfg.seac_lambda)

        policy = losses.policy_loss(logp, advantages, weights)  # Eq. 4
        value = losses.value_loss(advantages, weights)  # Eq. 5
        bonus = losses.entropy_bonus(entropy, self._is_own)
        total = losses.total_loss(policy, value, bonus, cfg.vf_loss_coeff, cfg.entropy_coeff)

        if not torch.isfinite(total).all():
            terms = {"policy_loss": policy.detach(), "value_loss": value.detach()}
            self._raise_non_finite(data, terms)
        stats = torch.stack([policy.detach(), value.detach(), bonus.detach()])
        others = None
        if self._has_other_data:  # each module's IS weights on other agents' data
            others = is_weights[self._others].reshape(len(is_weights), -1)
        self._accumulate_stats(stats, others)
        return {
            "total": total,
            "log_pi": log_pi,
            "advantages": advantages,
            "experience_weights": weights,
        }

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

    def _evaluate(self, data, pairs, forward=None):
        """logits, V(o_t) and bootstrap values V(o_{t+1}) of every module on its
        streams, [M, K', E, T]. `forward(net, x)` runs the stacked networks (by
        default with autograd's graph through `stack_mlps`)."""
        modules = [self.module[mid] for mid in self._module_ids]
        shared = self._shared_inputs
        # Shared: every module sees every agent's data, [K, E, T, D]; else module m
        # sees its own agents' data, [M, K', E, T, D].
        source = data if shared else pairs
        obs, next_obs = source[OBS], source[NEXT_OBS]
        lead = ((len(modules),) if shared else ()) + obs.shape[:-1]
        if forward is None:

            def forward(net, flat):
                return stacked_forward(stack_mlps([getattr(m, net) for m in modules]), flat)

        def run(net: str, x: torch.Tensor) -> torch.Tensor:
            flat = (
                x.reshape(-1, x.shape[-1]) if shared else x.reshape(len(modules), -1, x.shape[-1])
            )
            return forward(net, flat).reshape(*lead[:-1], -1)

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

    @torch.no_grad()
    def _hand_written_update(self, batch) -> dict:
        """One gradient step with `loss_gradients` instead of autograd: the same
        loss terms (`_loss_terms`), per-agent clipping and Adam as RLlib's path, with
        every module's gradients computed, clipped and applied at once."""
        stacked = {net: self._stacked(net) for net in ("actor", "critic")}
        outputs = {}

        def forward(net, flat):
            layer_outputs = loss_gradients.mlp_forward(
                loss_gradients.layers_of(*stacked[net]), flat
            )
            outputs.setdefault(net, layer_outputs)  # the first call is on o_t
            return layer_outputs[-1]

        data, pairs = self._data_and_pairs(batch)
        logits, values, next_values = self._evaluate(data, pairs, forward)
        terms = self._loss_terms(data, pairs, logits, values, next_values)
        cfg, n_modules = self.config, len(self._module_ids)
        d_logits = loss_gradients.logits_gradient(
            terms["log_pi"],
            pairs[ACTIONS].long(),
            terms["advantages"],
            terms["experience_weights"],
            self._is_own,
            cfg.entropy_coeff,
        )
        d_values = loss_gradients.values_gradient(
            terms["advantages"], terms["experience_weights"], cfg.vf_loss_coeff
        )
        grads = loss_gradients.mlp_backward(
            stacked["actor"][0], outputs["actor"], d_logits.reshape(n_modules, -1, logits.shape[-1])
        ) + loss_gradients.mlp_backward(
            stacked["critic"][0], outputs["critic"], d_values.reshape(n_modules, -1, 1)
        )
        self._clip(grads)
        self._adam_step(grads)
        total = terms["total"]
        return {mid: total[m] for m, mid in enumerate(self._module_ids)}

    def _current_numpy_step(self) -> NumpyStep | None:
        """The numpy step on the modules' and optimizers' current tensors, or None
        where it does not apply (not on the CPU, Adam's state not made yet, settings
        it does not cover): made again when RLlib has replaced those tensors."""
        if not self._numpy_allowed:
            return None
        step = self._numpy_step
        # RLlib's optimizer restore (it replaces the optimizers' state) is looked for
        # at every step; the parameters' memory (a `.data` assignment: one torch call
        # per parameter, ~1 % of a 4-agent update) at the first step after each
        # report, as only code between training iterations replaces it.
        check_params, self._check_params = self._check_params, False
        if step is None or not step.is_current(params=check_params):
            if not self._adam_ready():
                return None
            if not NumpyStep.supports(self._optimizers):
                return None
            step = self._numpy_step = NumpyStep(
                layers=self._layers,
                optimizers=self._optimizers,
                config=self.config,
                grad_clip=self._grad_clip,
                module_ids=self._module_ids,
                streams=self._streams.tolist(),
                owner=self._owner.tolist(),
                is_own=self._is_own.tolist(),
                shared=self._shared_inputs,
            )
        return step

    def _numpy_update(self, step: NumpyStep, batch: MultiAgentBatch) -> dict:
        """One gradient step in numpy (`numpy_step`); the per-module losses."""
        terms = step(
            [batch.policy_batches[mid] for mid in self._module_ids], self._raise_non_finite
        )
        self._accumulate_stats(terms["losses"], terms["is_weights_of_others"])
        return dict(zip(self._module_ids, terms["total"]))

    def _stacked(self, net: str) -> tuple[list, list]:
        """Weights [M, out, in] and biases [M, out] of every module's `net`, per layer."""
        weights, biases = self._layers[net]
        return [torch.stack(w) for w in weights], [torch.stack(b) for b in biases]

    def _clip(self, grads: list[torch.Tensor]) -> None:
        """`postprocess_gradients_for_module` for all modules at once: each module's
        gradients [M, ...] scaled to global norm `grad_clip`, a non-finite norm stops."""
        norms = torch.linalg.vector_norm(
            torch.cat([g.reshape(len(g), -1) for g in grads], dim=1), dim=1
        )
        if not torch.isfinite(norms).all():
            m = int((~torch.isfinite(norms)).nonzero()[0])
            raise FloatingPointError(
                f"SEAC stopped before updating the weights: the gradient of "
                f"{self._module_ids[m]} is not finite (global norm {norms[m].item()})."
            )
        if self._grad_clip is not None:
            factors = torch.clamp(self._grad_clip / (norms + 1e-6), max=1.0)
            for g in grads:
                g.mul_(factors.view(-1, *([1] * (g.dim() - 1))))

    def _adam_ready(self) -> bool:
        """Adam's state exists (RLlib's path makes it on the first step and after
        a restore without optimizer state)."""
        return all(len(opt.state) == len(opt.param_groups[0]["params"]) for opt in self._optimizers)

    def _adam_step(self, grads: list[torch.Tensor]) -> None:
        """Every module's Adam step in one fused call, on the optimizers' own state
        (so checkpoints and RLlib's LR schedules see the usual optimizers)."""
        optimizers = self._optimizers
        states = [opt.state for opt in optimizers]
        if self._adam_state is None or any(a is not b for a, b in zip(self._adam_state[0], states)):
            params = [p for opt in optimizers for p in opt.param_groups[0]["params"]]
            per_param = [opt.state[p] for opt in optimizers for p in opt.param_groups[0]["params"]]
            self._adam_state = (
                states,
                params,
                [s["exp_avg"] for s in per_param],
                [s["exp_avg_sq"] for s in per_param],
                [s["step"] for s in per_param],
            )
        _, params, exp_avgs, exp_avg_sqs, steps = self._adam_state
        # Module-major, parameter order within a module: as `params`.
        flat_grads = [g for per_module in zip(*(g.unbind(0) for g in grads)) for g in per_module]
        groups = [opt.param_groups[0] for opt in optimizers]
        if len({g["lr"] for g in groups}) == 1:
            spans = [slice(0, len(params))]
        else:  # one call per module
            size = len(params) // len(groups)
            spans = [slice(i * size, (i + 1) * size) for i in range(len(groups))]
        for span, group in zip(spans, groups):
            beta1, beta2 = group["betas"]
            adam_step(
                params[span],
                flat_grads[span],
                exp_avgs[span],
                exp_avg_sqs[span],
                [],
                steps[span],
                fused=True,
                amsgrad=False,
                beta1=beta1,
                beta2=beta2,
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
            )

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
        the same hooks and `_update`, with the step counts summed and logged at
        the report (and, without LR schedules, `after_gradient_based_update` run
        there once). Anything else goes through RLlib's path.
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
        step = self._current_numpy_step()
        if step is not None:
            losses_per_module = self._numpy_update(step, batch)
        else:
            device = self.device
            tensors = {
                mid: {
                    col: torch.as_tensor(np.asarray(module_batch[col]), device=device)
                    for col in COLUMNS
                }
                for mid, module_batch in batch.policy_batches.items()
            }
            if self._layers is not None and self._adam_ready():
                losses_per_module = self._hand_written_update(tensors)
            else:
                _, losses, _ = _rllib_internals.torch_learner_update(self, tensors)
                losses_per_module = {mid: loss.detach() for mid, loss in losses.items()}
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
        """RLlib's steps-trained metrics for every step since the last report."""
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
