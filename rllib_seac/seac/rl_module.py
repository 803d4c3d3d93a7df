"""The per-agent network of SEAC: a policy MLP and a separate critic MLP (paper, App. B)."""

from __future__ import annotations

import contextlib
import math

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from rllib_seac._rllib_internals import mark_notices_not_for_our_algorithms_shown

mark_notices_not_for_our_algorithms_shown()

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

    The learner evaluates every module on every agent's data through
    `forward_train` (the logits) and `compute_values` (V), so a subclass that changes
    them changes what trains (`SEACTorchLearner.forward_streams`).
    """

    @contextlib.contextmanager
    def no_sync(self):
        """What TorchLearner enters around each module's gradient step when
        num_learners > 1, expecting torch DDP's wrapper there. SEAC's modules stay
        unwrapped (DataParallelSEACLearner all-reduces the gradients itself): no
        gradient sync to hold back."""
        yield

    def setup(self):
        hidden = list(self.model_config.get("hidden_sizes", DEFAULT_HIDDEN_SIZES))
        obs_dim = self.observation_space.shape[0]
        self.actor = _mlp([obs_dim, *hidden, self.action_space.n], out_gain=0.01)
        self.critic = _mlp([obs_dim, *hidden, 1], out_gain=1.0)

    def _forward(self, batch, **kwargs):
        return {Columns.ACTION_DIST_INPUTS: self.actor(batch[Columns.OBS])}

    def _forward_train(self, batch, **kwargs):
        return self._forward(batch)

    def compute_values(self, batch, embeddings=None):
        return self.critic(batch[Columns.OBS]).squeeze(-1)

    def get_inference_action_dist_cls(self):
        from ray.rllib.core.distribution.torch.torch_distribution import (
            TorchCategorical,
        )

        return TorchCategorical

    get_exploration_action_dist_cls = get_inference_action_dist_cls
    get_train_action_dist_cls = get_inference_action_dist_cls


def flat_parameters(multi_module) -> torch.Tensor:
    """Every module's parameters as one vector (module ids sorted): one array to
    ship to remote env runners per update instead of a nested state dict."""
    with torch.no_grad():
        return torch.cat(
            [
                p.reshape(-1)
                for mid in sorted(multi_module.keys())
                for p in multi_module[mid].parameters()
            ]
        )


@torch.no_grad()
def load_flat_parameters(multi_module, vector: torch.Tensor) -> None:
    """Copies a `flat_parameters` vector back into same-shaped modules."""
    params = [p for mid in sorted(multi_module.keys()) for p in multi_module[mid].parameters()]
    chunks = torch.split(vector, [p.numel() for p in params])
    torch._foreach_copy_(params, [c.view_as(p) for c, p in zip(chunks, params)])
