"""Can the fast step come from the one loss? Per-update time of SEAC's learner, 4 agents,
Table 2's batch (4 envs x 5 steps per agent, 64x64 MLPs), rware-tiny-4ag's spaces:

- the fused step (`fused_update="auto"`): a whole update, gradients to Adam;
- autograd's step (`fused_update="off"`): a whole update through `compute_losses`;
- `torch.func.grad` of the same loss terms (`seac/losses.py`) over stacked parameters,
  eager and under `torch.compile` (gradients only: no clip, no Adam), with the
  compile time.

    python benchmarks/investigations/fused_step_candidates.py [--repeats 300] [--json]

Medians of `--repeats` calls after 10 warm-up calls, in one process, one torch thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import gymnasium as gym
import torch
import torch.nn.functional as F
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from rllib_seac import SEACConfig
from rllib_seac.agent_modules import agent_is_module
from rllib_seac.columns import (
    ACTIONS,
    BEHAVIOUR_LOGP,
    NEXT_OBS,
    OBS,
    REWARDS,
    TERMINATEDS,
    TRUNCATEDS,
)
from rllib_seac.numerics.shared_experience import experience_weights, importance_weights
from rllib_seac.seac import losses

AGENTS, ENVS, STEPS, OBS_DIM, ACTIONS_N, HIDDEN = 4, 4, 5, 71, 5, 64


def median_us(fn, repeats: int) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def streams(seed: int = 0) -> dict[str, torch.Tensor]:
    """Each column as [K, E, T, ...]: random experience of every agent."""
    g = torch.Generator().manual_seed(seed)
    shape = (AGENTS, ENVS, STEPS)
    terminated = torch.rand(shape, generator=g) < 0.1
    return {
        OBS: torch.randn(*shape, OBS_DIM, generator=g),
        NEXT_OBS: torch.randn(*shape, OBS_DIM, generator=g),
        ACTIONS: torch.randint(ACTIONS_N, shape, generator=g),
        REWARDS: torch.randn(shape, generator=g),
        TERMINATEDS: terminated,
        TRUNCATEDS: torch.zeros(shape, dtype=torch.bool),
        BEHAVIOUR_LOGP: -torch.rand(shape, generator=g) - 0.5,
    }


def learner_update_us(mode: str, data: dict, repeats: int) -> float:
    agents = [f"agent_{i}" for i in range(AGENTS)]
    config = SEACConfig().training(n_steps=STEPS, fused_update=mode)
    config.agent_ids = agents
    config.multi_agent(policies=set(agents), policy_mapping_fn=agent_is_module)
    spaces = gym.spaces.Box(-1, 1, (OBS_DIM,)), gym.spaces.Discrete(ACTIONS_N)
    learner = config.build_learner(spaces=dict.fromkeys(agents, spaces))
    batch = MultiAgentBatch(
        {
            aid: SampleBatch({c: v[k].reshape(-1, *v.shape[3:]).numpy() for c, v in data.items()})
            for k, aid in enumerate(agents)
        },
        env_steps=ENVS * STEPS,
    )

    def update():
        learner.update(batch=batch, timesteps={}, _no_metrics_reduce=True)

    update()  # Adam's state
    update()  # with "auto": the fused step made and self-checked
    assert (learner._fused is not None) == (mode == "auto")
    return median_us(update, repeats)


def stacked_loss(params, data, is_own):
    """Eqs. 4 and 5 for every agent from stacked parameters, with `losses.py`'s terms."""
    m = AGENTS

    def forward(p, x):
        x = x.reshape(-1, OBS_DIM).expand(m, -1, OBS_DIM)
        x = torch.relu(torch.baddbmm(p[1], x, p[0]))
        x = torch.relu(torch.baddbmm(p[3], x, p[2]))
        return torch.baddbmm(p[5], x, p[4])

    actor, critic = params[:6], params[6:]
    lead = (m, AGENTS, ENVS, STEPS)
    logits = forward(actor, data[OBS]).reshape(*lead, ACTIONS_N)
    values = forward(critic, data[OBS]).reshape(lead)
    next_values = forward([p.detach() for p in critic], data[NEXT_OBS]).reshape(lead)
    log_pi = F.log_softmax(logits, -1)
    logp = log_pi.gather(-1, data[ACTIONS].expand(lead).unsqueeze(-1)).squeeze(-1)
    entropy = -(log_pi.exp() * log_pi).sum(-1)
    targets = losses.n_step_targets(
        data[REWARDS].expand(lead),
        next_values,
        data[TERMINATEDS].expand(lead),
        data[TRUNCATEDS].expand(lead),
        0.99,
    )
    advantages = targets - values
    weights = experience_weights(is_own, importance_weights(logp, data[BEHAVIOUR_LOGP]), 1.0)
    total = losses.total_loss(
        losses.policy_loss(logp, advantages, weights),
        losses.value_loss(advantages, weights),
        losses.entropy_bonus(entropy, is_own),
        0.5,
        0.01,
    )
    return total.sum()


def functional_us(data: dict, repeats: int) -> dict:
    g = torch.Generator().manual_seed(1)

    def mlp(out):
        sizes = [(OBS_DIM, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, out)]
        return [
            t
            for n_in, n_out in sizes
            for t in (
                0.1 * torch.randn(AGENTS, n_in, n_out, generator=g),
                torch.zeros(AGENTS, 1, n_out),
            )
        ]

    params = mlp(ACTIONS_N) + mlp(1)
    is_own = torch.eye(AGENTS, dtype=torch.bool)
    grad = torch.func.grad(stacked_loss)
    eager = median_us(lambda: grad(params, data, is_own), repeats)
    compiled = torch.compile(grad, fullgraph=True)
    start = time.perf_counter()
    compiled(params, data, is_own)
    compile_s = time.perf_counter() - start
    expected, got = grad(params, data, is_own), compiled(params, data, is_own)
    difference = max(float((a - b).abs().max()) for a, b in zip(expected, got))
    return {
        "func_grad_gradients_only_us": round(eager),
        "compiled_func_grad_gradients_only_us": round(
            median_us(lambda: compiled(params, data, is_own), repeats)
        ),
        "compile_s": round(compile_s, 1),
        "compiled_max_abs_difference": difference,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = streams()
    figures = {
        "fused_update_us": round(learner_update_us("auto", data, args.repeats)),
        "autograd_update_us": round(learner_update_us("off", data, args.repeats)),
        **functional_us(data, args.repeats),
        "command": "python benchmarks/investigations/fused_step_candidates.py",
    }
    print(
        json.dumps(figures) if args.json else "\n".join(f"{k:40s} {v}" for k, v in figures.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
