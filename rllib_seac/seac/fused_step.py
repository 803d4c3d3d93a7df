"""SEAC's fused update step: Eqs. 4 and 5 differentiated by hand, every agent at once,
numpy for the many small operations and torch for the few large ones. A speed option
(`SEACConfig.training(fused_update="auto")`, the default), not the definition: the
loss is `losses.py` as `SEACTorchLearner.compute_losses` assembles it, and the learner
uses this step only when that loss, the optimizer step and the modules are the stock
ones and a self-check on a synthetic batch gives autograd's gradients
(`SEACTorchLearner._fused_step`). You may ignore this file.

On Table 2's batch (4 envs x 5 steps per agent, 64x64 MLPs) autograd's step is a few
hundred small torch calls, each tens of thousands of instructions of dispatch around a
few thousand of arithmetic. Here the batch's columns, the loss terms (n-step targets,
IS weights, Eqs. 4 and 5, the entropy bonus), their closed-form gradients with
respect to the logits and V(o), and each agent's clipping to its own global norm run
in numpy, whose per-call cost is a fraction of torch's. The stacked MLPs' batched
matmuls (`numerics.stacked_mlp`: MKL, cheaper than numpy's matmuls at these sizes)
and one fused Adam call over every module (`numerics.flat_adam`) stay in torch.
tests/test_fused_step.py checks this step against autograd's.

The step works in place on RLlib's tensors: when it is made, every module's parameters
and its torch Adam's state (exp_avg, exp_avg_sq, step) are moved into flat buffers, one
row per module, that the numpy arrays and torch views share (`FlatAdam`, also SEQL's).
Checkpoints, `get_state`, the weight copy to env runners and RLlib's LR schedules keep
seeing the usual modules and optimizers; `is_current` says when RLlib has replaced
those tensors (an optimizer state restore) and the learner makes the step again.

Shapes as in `losses`: [M, K', E, T] per sample (M modules, K' streams each module is
evaluated on, E envs, T steps), A actions, n = E * T.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from rllib_seac.columns import (
    ACTIONS,
    BEHAVIOUR_LOGP,
    NEXT_OBS,
    OBS,
    REWARDS,
    TERMINATEDS,
    TRUNCATEDS,
)
from rllib_seac.numerics.flat_adam import FlatAdam
from rllib_seac.numerics.stacked_mlp import layers_of, mlp_backward, mlp_forward


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log pi(.|o) over the last axis, as torch's: x - max - log sum exp(x - max)."""
    # The max over the (few) actions as a chain of elementwise maxima: exact in any
    # order, and a reduction over a short last axis costs twice as much in numpy.
    top = np.maximum(logits[..., :1], logits[..., 1:2])
    for a in range(2, logits.shape[-1]):
        np.maximum(top, logits[..., a : a + 1], out=top)
    shifted = logits - top
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def n_step_targets(rewards, bootstrap_values, terminateds, truncateds, gamma: float) -> np.ndarray:
    """The n-step targets of `losses.n_step_targets`, in numpy: y_t = r_t + gamma
    (1 - terminated_t) * (V(o_{t+1}) where the chain is cut: the rollout's end and
    truncations; else y_{t+1}).

    Written as y_t = start_t + carry_t * y_{t+1}, start and carry computed for every t at once.
    """
    # gamma (1 - terminated) and carry as products with the flags' negation: the
    # same float32 values as selecting them with np.where, at a fraction of its cost.
    discount = np.float32(gamma) * ~terminateds
    cut = truncateds.copy()
    cut[..., -1] = True
    start = rewards + discount * np.where(cut, bootstrap_values, np.float32(0))
    carry = discount * ~cut
    # In place: start becomes the targets, from the last step back (a + b == b + a
    # exactly in IEEE arithmetic, so the sums are start_t + carry_t * y_{t+1}'s).
    targets = start
    for t in reversed(range(rewards.shape[-1] - 1)):
        y_t = targets[..., t]  # a view: `targets[..., t] +=` would also copy it onto itself
        y_t += carry[..., t] * targets[..., t + 1]
    return targets


# The batch's columns as the step reads them (float32 throughout, as the networks),
# grouped by dtype and shape: each group is gathered by one concatenation, whose
# fixed cost is most of its time at these sizes.
COLUMN_GROUPS = (
    ((OBS, NEXT_OBS), np.float32),
    ((ACTIONS,), np.int64),
    ((REWARDS, BEHAVIOUR_LOGP), np.float32),
    ((TERMINATEDS, TRUNCATEDS), bool),
)


class FusedStep:
    """One SEAC gradient step of every module at once, in place on RLlib's tensors.

    `layers` are the learner's `_linear_layers`: per network ("actor", "critic"), the
    modules' Linear weights and biases by layer. `streams[m]` lists the agents whose
    data module m is evaluated on, `is_own[m, k]` whether stream k is m's own, and
    `shared` whether every module sees every agent's data.
    """

    def __init__(
        self, *, layers, optimizers, config, grad_clip, module_ids, streams, owner, is_own, shared
    ):
        self._optimizers = optimizers
        self._config = config
        self._grad_clip = grad_clip
        self._module_ids = module_ids
        self._streams = np.asarray(streams)
        self._owner = np.asarray(owner)
        self._is_own = np.asarray(is_own)  # [M, K']
        self._shared = shared
        # (module, stream) pairs of other agents' data, for the IS weight stats.
        self._others = np.nonzero(~self._is_own) if not self._is_own.all() else None
        self._own = np.nonzero(self._is_own)
        self._by_batch_shape: dict = {}
        self._lay_out(layers)

    @staticmethod
    def supports(optimizers) -> bool:
        """Whether the step covers these optimizers' parameters and state
        (`FlatAdam.supports`)."""
        return FlatAdam.supports(optimizers)

    def _lay_out(self, layers) -> None:
        """Moves every module's parameters (in its optimizer's order: the actor's
        layers, then the critic's) and their Adam state into `FlatAdam`'s buffers,
        one row per module, and takes each network's stacked layers as views of them."""
        self._flat = FlatAdam(self._optimizers, self._module_ids, "SEAC")
        # Per network, per layer: every module's weights [M, out, in] and biases [M, out];
        # and the views of the gradients' buffer that the network's backward fills.
        grad = self._flat.buffers["grad"]
        self._nets, self._grads, start = {}, {}, 0
        for net in ("actor", "critic"):
            end = start + 2 * len(layers[net][0])
            views = [self._flat.stacked(j) for j in range(start, end)]
            self._grads[net] = [self._flat.stacked(j, grad) for j in range(start, end)]
            self._nets[net], start = (views[::2], views[1::2]), end
        self._layers = {net: layers_of(*views) for net, views in self._nets.items()}

    def is_current(self, params: bool = True) -> bool:
        """Whether the optimizers' state and, with `params`, the modules' parameters
        are still the buffers' (`FlatAdam.is_current`)."""
        return self._flat.is_current(params)

    def __call__(self, batches: list[dict], on_non_finite_loss) -> dict[str, np.ndarray]:
        """One gradient step on the modules' batches (in module order): `gradients`,
        then each module's clip and Adam step. Returns the loss terms per module."""
        terms = self.gradients(batches, on_non_finite_loss)
        self._flat.clip(self._grad_clip)
        self._flat.step()
        return terms

    def gradients(self, batches: list[dict], on_non_finite_loss) -> dict[str, np.ndarray]:
        """The loss terms per module, with every module's gradient (not yet clipped)
        left in the flat gradient buffer (`flat_gradients`). `on_non_finite_loss(data,
        terms)` is called, before any weight moves, if a module's loss is not finite."""
        data = self._stream_data(batches)
        inputs = self._net_inputs(data[OBS])
        actor = mlp_forward(self._layers["actor"], inputs)
        critic = mlp_forward(self._layers["critic"], inputs)
        lead = self._pair_shape(data[OBS])
        logits = actor[-1].numpy().reshape(*lead, -1)
        values = critic[-1].numpy().reshape(lead)
        next_values = self._bootstrap_values(data[NEXT_OBS], data[TRUNCATEDS])
        terms = self._loss_terms(data, logits, values, next_values)
        if not all(map(math.isfinite, terms["total"].tolist())):  # (M floats: cheaper than numpy)
            on_non_finite_loss(data, {key: terms[key] for key in ("policy_loss", "value_loss")})
        n_modules = len(self._streams)
        d_logits = torch.from_numpy(terms["d_logits"].reshape(n_modules, -1, logits.shape[-1]))
        d_values = torch.from_numpy(terms["d_values"].reshape(n_modules, -1, 1))
        for net, d_outputs, outputs in (("actor", d_logits, actor), ("critic", d_values, critic)):
            mlp_backward(self._nets[net][0], outputs, d_outputs, out=self._grads[net])
        return terms

    def flat_gradients(self, parameters: list) -> list[torch.Tensor]:
        """The gradients `gradients` left, one per parameter of `parameters` (the
        modules' parameters, which view the same buffers at the same offsets)."""
        return self._flat.gradient_views(parameters)

    def _stream_data(self, batches) -> dict[str, np.ndarray]:
        """Each column as per-agent [K, E, T, ...] streams, agents in module order."""
        n_agents, n_steps = len(self._owner), self._config.n_steps
        data = {}
        # The columns as stored: `SampleBatch.__getitem__` first asks `hasattr(batch,
        # col)`, an AttributeError raised and caught per read, which costs more than
        # the concatenation (and its access tracking and read interceptors serve
        # RLlib's old stack, not a learner reading numpy columns).
        read = dict.__getitem__
        for cols, dtype in COLUMN_GROUPS:
            arrays = [read(batch, col) for col in cols for batch in batches]
            if len(arrays) == 1:
                x = np.asarray(arrays[0], dtype=dtype)
            else:
                x = np.concatenate(arrays, dtype=dtype)
            x = x.reshape(len(cols), n_agents, -1, n_steps, *x.shape[1:])
            data.update(zip(cols, x))
        return data

    def _pairs(self, x: np.ndarray) -> np.ndarray:
        """A per-agent column [K, ...] per (module m, stream k) pair, [M or 1, K', ...]."""
        return x[None] if self._shared else x[self._streams]

    def _pair_shape(self, obs: np.ndarray) -> tuple:
        """[M, K', E, T] of per-agent observations [K, E, T, D]."""
        streams = self._streams.shape
        return streams + obs.shape[1:-1] if not self._shared else streams[:1] + obs.shape[:-1]

    def _net_inputs(self, obs: np.ndarray) -> torch.Tensor:
        """Observations [K, E, T, D] as the stacked networks read them: [B, D] seen by
        every module, or [M, B, D] per module."""
        if self._shared:
            x = obs.reshape(-1, obs.shape[-1])
        else:
            x = obs[self._streams].reshape(len(self._streams), -1, obs.shape[-1])
        # (writeable, as torch wants: `_stream_data` concatenated the observations)
        return torch.from_numpy(x)

    def _bootstrap_values(self, next_obs, truncateds) -> np.ndarray:
        """V(o_{t+1}) where the n-step targets read it: the last step's, [M, K', E, 1]
        (the targets cut the chain only there), or every step's, [M, K', E, T], when
        an episode was truncated before it (rare)."""
        # (count_nonzero: a plain C loop, where .any() sets up a ufunc reduction)
        every_step = np.count_nonzero(truncateds[..., :-1]) > 0
        rows = next_obs if every_step else next_obs[..., -1:, :]
        values = mlp_forward(self._layers["critic"], self._net_inputs(rows))[-1]
        return values.numpy().reshape(self._pair_shape(rows))

    def _indices(self, shape: tuple) -> tuple:
        """Per batch shape [M, K', E, T]: the flat index of each sample's first logit
        and d loss / d logits' entropy coefficient on own streams, [M, K', 1, 1, 1]."""
        if shape not in self._by_batch_shape:
            n_actions = self._nets["actor"][1][-1].shape[1]
            first = np.arange(math.prod(shape)).reshape(shape) * n_actions
            n = shape[-2] * shape[-1]
            coeff = self._is_own.astype(np.float32) * (self._config.entropy_coeff / n)
            self._by_batch_shape[shape] = first, coeff[..., None, None, None]
        return self._by_batch_shape[shape]

    def _loss_terms(self, data, logits, values, next_values) -> dict[str, np.ndarray]:
        """Eqs. 4 and 5 per module (as `SEACTorchLearner.loss_terms`) and their
        gradients with respect to the logits and V(o):

        - Eq. 4's term -c A log pi(a|o) / n (c, A constants) gives -c A (onehot(a) - pi) / n;
        - the bonus -entropy_coeff * H / n on own streams gives entropy_coeff * pi (log pi + H) / n;
        - Eq. 5's c (y - V)^2 / n (y constant) gives -2 c (y - V) / n.
        """
        cfg = self._config
        first_logit, entropy_coeff = self._indices(values.shape)
        action_index = first_logit + self._pairs(data[ACTIONS])
        log_pi = log_softmax(logits)
        probs = np.exp(log_pi)
        logp = log_pi.reshape(-1)[action_index]
        # Per sample: Eq. 4's and Eq. 5's summands and the entropy, in one array so
        # that each numpy reduction (a fixed cost of tens of thousands of
        # instructions, whatever the size) runs once for all three.
        per_sample = np.empty((3, *values.shape), np.float32)
        entropy = per_sample[2]
        np.sum(probs * log_pi, -1, out=entropy)
        np.negative(entropy, out=entropy)

        if cfg.seac_target == "authors" and self._shared:
            # As the authors' code: agent k's targets bootstrap with k's own critic.
            next_values = next_values[self._owner, np.arange(len(self._owner))]
        # y^k_i of Eq. 5: n-step targets, bootstrapped with V_i (paper) or V_k.
        targets = n_step_targets(
            self._pairs(data[REWARDS]),
            next_values,
            self._pairs(data[TERMINATEDS]),
            self._pairs(data[TRUNCATEDS]),
            cfg.gamma,
        )
        advantages = targets - values
        # pi_i(a^k|o^k) / pi_k(a^k|o^k), and each sample's weight c_ik: 1 on own data.
        is_weights = np.exp(logp - self._pairs(data[BEHAVIOUR_LOGP]))
        if cfg.is_weight_clip is not None:
            np.minimum(is_weights, cfg.is_weight_clip, out=is_weights)
        weights = cfg.seac_lambda * is_weights
        weights[self._own] = 1

        np.multiply(weights * logp, advantages, out=per_sample[0])  # Eq. 4
        np.multiply(weights, advantages**2, out=per_sample[1])  # Eq. 5
        means = per_sample.mean((-2, -1))  # [3, M, K']
        means[2] *= self._is_own  # the bonus counts a module's own streams only
        # Per module: the policy loss (negated below), the value loss and the bonus.
        losses = means.sum(-1)
        np.negative(losses[0], out=losses[0])
        policy, value, bonus = losses
        total = policy + cfg.vf_loss_coeff * value - cfg.entropy_coeff * bonus

        # d total / d logits: from Eq. 4 and from the bonus (see the docstring).
        n = values.shape[-2] * values.shape[-1]
        scaled = weights * advantages / n  # c A / n
        d_logits = probs * scaled[..., None]
        d_logits.reshape(-1)[action_index] -= scaled
        d_logits += entropy_coeff * probs * (log_pi + entropy[..., None])
        others = self._others
        return {
            "total": total,
            "policy_loss": policy,
            "value_loss": value,
            "losses": losses,  # [3, M]: policy, value, entropy bonus
            "is_weights_of_others": (
                None if others is None else is_weights[others].reshape(len(is_weights), -1)
            ),
            "d_logits": d_logits,
            "d_values": scaled * (-2.0 * cfg.vf_loss_coeff),  # Eq. 5: c (y - V)^2 / n
        }
