"""Learner step time of SEAC and IAC for N = 2, 4, 8, 16 agents on a synthetic batch.

    python benchmarks/learner_scaling.py [--agents 2 4 8 16] [--repeats 200] [--json]

The batch has the paper's size per agent (4 envs x 5 steps) and rware's observation
size (71); SEAC evaluates every agent's networks on every agent's data, N x N x 20
samples, in one batched call per network. Times are the full `Learner.update` (loss,
backward, clipping, Adam), median over repeats, in one process with one torch thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import gymnasium as gym
import numpy as np
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from rllib_seac import SEACConfig
from rllib_seac.seac.config import agent_is_module

OBS_DIM, N_ACTIONS, N_ENVS, N_STEPS = 71, 5, 4, 5


def synthetic_batch(agents: list[str], rng: np.random.Generator) -> MultiAgentBatch:
    rows = N_ENVS * N_STEPS
    return MultiAgentBatch(
        {
            aid: SampleBatch(
                {
                    "obs": rng.standard_normal((rows, OBS_DIM), dtype=np.float32),
                    "new_obs": rng.standard_normal((rows, OBS_DIM), dtype=np.float32),
                    "actions": rng.integers(N_ACTIONS, size=rows),
                    "rewards": rng.standard_normal(rows, dtype=np.float32),
                    "terminateds": np.zeros(rows, bool),
                    "truncateds": rng.random(rows) < 0.01,
                    "action_logp": np.full(rows, -np.log(N_ACTIONS), np.float32),
                }
            )
            for aid in agents
        },
        env_steps=rows,
    )


def build_learner(n_agents: int, seac_lambda: float):
    """A SEAC learner of n agents (one module each) on rware-sized spaces, and the agent ids."""
    agents = [f"agent_{i}" for i in range(n_agents)]
    config = SEACConfig().training(seac_lambda=seac_lambda)
    config.agent_ids = agents
    config.multi_agent(policies=set(agents), policy_mapping_fn=agent_is_module)
    spaces = gym.spaces.Box(-1, 1, (OBS_DIM,)), gym.spaces.Discrete(N_ACTIONS)
    return config.build_learner(spaces=dict.fromkeys(agents, spaces)), agents


def step_ms(n_agents: int, seac_lambda: float, repeats: int) -> float:
    learner, agents = build_learner(n_agents, seac_lambda)
    batch = synthetic_batch(agents, np.random.default_rng(0))
    times = []
    for i in range(repeats + 10):
        start = time.perf_counter()
        learner.update(batch=batch, timesteps={}, _no_metrics_reduce=True)
        if i >= 10:  # warm-up
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for n in args.agents:
        seac, iac = step_ms(n, 1.0, args.repeats), step_ms(n, 0.0, args.repeats)
        samples = n * N_ENVS * N_STEPS  # agent-samples in one update
        rows.append(
            {
                "agents": n,
                "seac_step_ms": round(seac, 3),
                "iac_step_ms": round(iac, 3),
                "seac_us_per_agent_sample": round(seac * 1e3 / samples, 2),
            }
        )
    by_n = {r["agents"]: r for r in rows}
    figures = {"rows": rows, "command": "python " + " ".join(sys.argv)}
    if 4 in by_n and 16 in by_n:
        ratio = by_n[16]["seac_us_per_agent_sample"] / by_n[4]["seac_us_per_agent_sample"]
        figures["per_agent_sample_16_over_4"] = round(ratio, 2)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{'agents':>6} {'SEAC ms':>9} {'IAC ms':>9} {'SEAC us/agent-sample':>21}")
        for r in rows:
            print(
                f"{r['agents']:>6} {r['seac_step_ms']:>9.2f} {r['iac_step_ms']:>9.2f} "
                f"{r['seac_us_per_agent_sample']:>21.2f}"
            )
        if "per_agent_sample_16_over_4" in figures:
            print(
                f"16-agent / 4-agent time per agent-sample: {figures['per_agent_sample_16_over_4']}"
            )
        print(figures["command"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
