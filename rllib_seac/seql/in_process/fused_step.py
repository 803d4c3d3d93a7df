"""SEQL's and IQL's fused update step: Eq. 6 and App. D differentiated by hand, every
agent at once. A speed option of the in-process loop (`fused_update="auto"`, the
default), not the definition: the loss is `SEQLTorchLearner.compute_losses`, and the
loop uses this step only for a stock learner with ReLU MLP Q-networks, after a
self-check on a synthetic batch has given autograd's gradients. You may ignore this
file.

Autograd's step is, per agent and env step, about sixty small torch calls (forward,
target forward, loss, backward, clip, Adam, Polyak), each tens of thousands of
instructions of dispatch around a few thousand of arithmetic on a batch of 128. Here
every agent's Q-network is one row of stacked weights [N, out, in]
(`numerics.flat_adam.FlatAdam`, as SEAC's fused step), so:

- the N Q-networks on the batch and the N target networks on its next observations
  are batched matmuls (`numerics.stacked_mlp`; with SEQL every network reads the same
  M transitions, with IQL network i its own M);
- Eq. 6's targets, the two MSE terms of App. D and their gradient with respect to
  Q(s_j, a_j) (2 w_ij (Q - y_j), w_ij = 1/|own| on agent i's part, lambda/|others| on
  the rest; 1/M for IQL) are a few numpy operations for all agents;
- the backward pass is one batched matmul per layer, the per-agent global-norm clip
  one numpy row norm, Adam one fused call for every agent, and the soft target update
  theta_bar <- (1 - tau) theta_bar + tau theta two in-place ops on flat buffers.

It works in place on the learner's parameters and Adam state, so checkpoints and
`get_state` see the usual modules and optimizers; `is_current` says when a restore has
replaced them. tests/test_seql_losses.py checks it against the learner's step.
"""

from __future__ import annotations

import numpy as np
import torch
from ray.rllib.core.columns import Columns

from rllib_seac.numerics.flat_adam import FlatAdam
from rllib_seac.numerics.stacked_mlp import layers_of, mlp_backward, mlp_forward, relu_mlp_linears
from rllib_seac.seql.in_process.learner_step import AgentNetworks, UpdateSettings

OBS, ACTIONS, REWARDS = Columns.OBS, Columns.ACTIONS, Columns.REWARDS
NEXT_OBS, TERMINATEDS = Columns.NEXT_OBS, Columns.TERMINATEDS


class FusedStep:
    """One SEQL/IQL step of every agent (`networks[i]`, see
    `learner_step.agent_networks`), in place on their parameters and optimizers."""

    def __init__(
        self, networks: list[AgentNetworks], names: list, settings: UpdateSettings, n_actions: int
    ):
        self._settings = settings
        self._shared = settings.share_experience and len(networks) > 1
        self._flat = FlatAdam([agent.optimizer for agent in networks], names, "SEQL")
        n_params = len(networks[0].pairs[0])
        self._weights = [self._flat.stacked(j) for j in range(0, n_params, 2)]
        self._layers = layers_of(
            self._weights, [self._flat.stacked(j) for j in range(1, n_params, 2)]
        )
        # The target networks' parameters, laid out as the Q-networks', in a buffer of
        # their own: the soft update is two in-place ops on it.
        self._target = self._flat.adopt([agent.pairs[1] for agent in networks])
        target = [self._flat.stacked(j, self._target) for j in range(n_params)]
        self._target_layers = layers_of(target[::2], target[1::2])
        # The backward writes each parameter's gradient into these views of the buffer.
        self._grads = [self._flat.stacked(j, self._flat.buffers["grad"]) for j in range(n_params)]
        self._n_actions = n_actions
        self._by_batch: dict = {}

    @staticmethod
    def supports(modules: list, networks: list[AgentNetworks]) -> bool:
        """Whether the step covers these agents: Q-networks and target networks of
        Linear and ReLU layers only, whose optimizer holds exactly their Linear layers'
        weights and biases (in order), and optimizers `FlatAdam` covers (float32 on the
        CPU, Adam's state made, one step count). (That the module's forward runs those
        layers in order is the self-check's to find.)"""
        optimizers = [agent.optimizer for agent in networks]
        return (
            all(
                all(relu_mlp_linears(*nets) for nets in zip(*module.get_target_network_pairs()))
                for module in modules
            )
            and all(
                len(agent.optimizer.param_groups) == 1
                and [id(p) for p in agent.optimizer.param_groups[0]["params"]]
                == [id(p) for p in agent.pairs[0]]
                and [p.shape for p in agent.pairs[1]] == [p.shape for p in agent.pairs[0]]
                for agent in networks
            )
            and FlatAdam.supports(optimizers)
        )

    def is_current(self) -> bool:
        return self._flat.is_current()

    @torch.no_grad()
    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q_i(o^i, a) of every agent i, obs [N, D]."""
        q = mlp_forward(self._layers, torch.from_numpy(obs[:, None]))[-1]
        return q[:, 0].argmax(-1).numpy()

    def _loss_weights(self, n_agents: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per batch shape: the flat index of Q(s_j, a=0) per (agent, transition),
        [N, B], and d loss_i / d (Q - y)^2 per transition, w [N, B]: 1/|own| on
        agent i's part and lambda/|others| on the others' (SEQL), 1/M (IQL)."""
        key = (n_agents, n)
        if key not in self._by_batch:
            if self._shared:
                own = np.kron(np.eye(n_agents, dtype=bool), np.ones((1, n), bool))
                others = (n_agents - 1) * n
                w = np.where(
                    own, np.float32(1 / n), np.float32(self._settings.seql_lambda / others)
                )
            else:
                w = np.full((n_agents, n), np.float32(1 / n))
            width = w.shape[1]
            first = np.arange(n_agents * width).reshape(n_agents, width) * self._n_actions
            self._by_batch[key] = first, w
        return self._by_batch[key]

    def __call__(self, batch: dict[str, np.ndarray], update_targets: bool) -> np.ndarray:
        """One gradient step of every agent on `batch` (`gradients`), each agent's clip
        and Adam step, then the target networks move by tau if `update_targets`.
        Returns the STAT_NAMES figures per agent, [N, 6]."""
        figures = self.gradients(batch)
        norms = self._flat.clip(self._settings.grad_clip)
        self._flat.step()
        if update_targets:
            params = self._flat.buffers["param"]
            self._target.mul_(1.0 - self._settings.tau).add_(params, alpha=self._settings.tau)
        return np.concatenate([figures, norms[:, None]], axis=1).astype(np.float32)

    def gradients(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Every agent's gradient on `batch` (columns [N, n, ...]: the n transitions
        sampled from each agent's buffer; SEQL: every agent trains on all N * n, IQL:
        agent i on its own n), left in the flat gradient buffer, not yet clipped.
        Returns the STAT_NAMES figures but the norm, [N, 5]."""
        settings = self._settings
        n_agents, n = batch[REWARDS].shape
        first, w = self._loss_weights(n_agents, n)
        if self._shared:  # one batch of N * n transitions, agent-major, for everyone
            batch = {col: x.reshape(n_agents * n, *x.shape[2:]) for col, x in batch.items()}
        outputs = mlp_forward(self._layers, torch.from_numpy(batch[OBS]))
        next_q = mlp_forward(self._target_layers, torch.from_numpy(batch[NEXT_OBS]))
        # y_j = r_j + gamma * max_a' Q_bar_i(s'_j, a') (Eq. 6), no bootstrap after terminals.
        discount = np.float32(settings.gamma)
        if settings.mask_terminals:
            discount = np.where(batch[TERMINATEDS], np.float32(0), discount)
        target = batch[REWARDS] + discount * next_q[-1].numpy().max(-1)
        index = first + batch[ACTIONS]
        q_taken = outputs[-1].numpy().reshape(-1)[index]
        td = q_taken - target
        squared = td * td
        if self._shared:  # Eq. 6 on each agent's part: own + lambda x others (App. D)
            part_losses = squared.reshape(n_agents, n_agents, n).mean(-1)
            own = np.diagonal(part_losses).copy()
            others = (part_losses.sum(-1) - own) / (n_agents - 1)
            loss = own + np.float32(settings.seql_lambda) * others
        else:
            own = loss = squared.mean(-1)
            others = np.zeros_like(loss)
        # d loss_i / d Q_i(s_j, a_j) = 2 w_ij (Q - y_j); zero for the actions not taken.
        d_q = np.zeros((*index.shape, self._n_actions), np.float32)
        d_q.reshape(-1)[index] = 2 * w * td
        mlp_backward(self._weights, outputs, torch.from_numpy(d_q), out=self._grads)
        return np.stack([loss, own, others, q_taken.mean(-1), np.abs(td).mean(-1)], axis=1)

    def flat_gradients(self, parameters: list) -> list[torch.Tensor]:
        """The gradients `gradients` left, one per parameter of `parameters` (the
        Q-networks' parameters, which view the same buffer at the same offsets)."""
        return self._flat.gradient_views(parameters)
