"""The per-agent network of SEAC: a policy MLP and a separate critic MLP (paper, App. B)."""

from __future__ import annotations

import math

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

DEFAULT_HIDDEN_SIZES = (64, 64)


def _mlp(sizes: list[int], out_gain: float) -> nn.Sequential:
    """ReLU MLP with orthogonal init (gain sqrt 2 on hidden layers), as in A2C."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        linear = nn.Linear(n_in, n_out)
        nn.init.orthogonal_(linear.weight, gain=out_gain if last else math.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SEACTorchRLModule(TorchRLModule, ValueFunctionAPI):
    """`actor` maps o to the logits of pi(.|o); `critic` maps o to V(o).

    Training does not go through `forward_train`: the learner evaluates every
    module on every agent's data in one batched call (`SEACTorchLearner`), using
    the `actor` and `critic` submodules directly.
    """

    def setup(self):
        hidden = list(self.model_config.get("hidden_sizes", DEFAULT_HIDDEN_SIZES))
        obs_dim = self.observation_space.shape[0]
        self.actor = _mlp([obs_dim, *hidden, self.action_space.n], out_gain=0.01)
        self.critic = _mlp([obs_dim, *hidden, 1], out_gain=1.0)

    def _forward(self, batch, **kwargs):
        return {Columns.ACTION_DIST_INPUTS: self.actor(batch[Columns.OBS])}

    def _forward_train(self, batch, **kwargs):
        return {}

    def compute_values(self, batch, embeddings=None):
        return self.critic(batch[Columns.OBS]).squeeze(-1)

    def get_inference_action_dist_cls(self):
        from ray.rllib.core.distribution.torch.torch_distribution import (
            TorchCategorical,
        )

        return TorchCategorical

    get_exploration_action_dist_cls = get_inference_action_dist_cls
    get_train_action_dist_cls = get_inference_action_dist_cls


def stacked_params(modules: list[nn.Module]) -> dict[str, torch.Tensor]:
    """Stacks the parameters of same-shaped modules along a new leading axis.

    `torch.stack` keeps the autograd graph, so gradients of a loss on the stacked
    tensors reach each module's own parameters.
    """
    names = [name for name, _ in modules[0].named_parameters()]
    per_module = [dict(m.named_parameters()) for m in modules]
    return {name: torch.stack([p[name] for p in per_module]) for name in names}


def batched_call(template: nn.Module, params: dict, x: torch.Tensor, shared_x: bool):
    """Runs M copies of `template`, one per slice of `params`, in one vmapped call.

    x is [M, B, D] (module m sees x[m]) or, with `shared_x`, [B, D] seen by all.
    """

    def call(p, inputs):
        return torch.func.functional_call(template, p, (inputs,))

    return torch.vmap(call, in_dims=(0, None if shared_x else 0))(params, x)
