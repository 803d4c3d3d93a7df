"""End-to-end env steps/s of SEQL and IQL next to SEAC's, in one run.

    python benchmarks/seql_throughput.py [--envs rware-tiny-2ag-v2 Foraging-8x8-2p-2f-v3]
        [--seconds 30] [--no-rllib-loop] [--json]

Per env: SEAC (Table 2: 4 envs, 5-step rollouts, one A2C update per rollout), SEQL
and IQL (the authors' settings: one env, one DQN update of batch 128 per env step)
with SEQL's in-process loop (the default) and, unless --no-rllib-loop, with RLlib's DQN
loop (`loop="rllib"`, what SEQL ran before its own loop). Their train()
calls are interleaved so machine noise hits all alike, each algorithm until it
has trained `--seconds` (benchmarks/throughput.py's `build`). Foraging-* envs get
the paper's limit of 25 steps. An env step is one step of one env with all
agents acting. Also reported: the driver's CPU seconds per env step of the direct
loop (process time over its train() calls), a figure less bent by other jobs on a
shared machine than wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from throughput import build

LBF_EPISODE_LIMIT = 25
# Env steps per train() call: a few calls fit in the measured time at either speed
# (SEQLConfig: 1000). The steps after the first 128 each make one update.
STEPS_PER_ITERATION = {"direct": 500, "rllib": 50}


def build_seql(env_name: str, env_config: dict, share: bool, loop: str):
    from rllib_seac import SEQLConfig

    config = (
        SEQLConfig()
        .environment(env_name, env_config=env_config)
        .training(share_experience=share, loop="in_process" if loop == "direct" else "rllib")
        .reporting(min_sample_timesteps_per_iteration=STEPS_PER_ITERATION[loop])
        .debugging(seed=0, log_level="ERROR")
    )
    return config.build_algo()


def rates(algos: dict, seconds: float) -> tuple[dict, dict]:
    """Env steps/s and CPU seconds per env step of each algorithm, their train()
    calls interleaved, each until it has trained `seconds` (after a warm-up call,
    which also fills SEQL's buffers past the first update)."""

    def env_steps(result) -> int:
        return int(result["env_runners"]["num_env_steps_sampled_lifetime"])

    steps = {name: env_steps(algo.train()) for name, algo in algos.items()}
    start_steps = dict(steps)
    elapsed, cpu = dict.fromkeys(algos, 0.0), dict.fromkeys(algos, 0.0)
    while any(e < seconds for e in elapsed.values()):
        for name, algo in algos.items():
            if elapsed[name] >= seconds:
                continue
            t, c = time.perf_counter(), time.process_time()
            steps[name] = env_steps(algo.train())
            elapsed[name] += time.perf_counter() - t
            cpu[name] += time.process_time() - c
    for algo in algos.values():
        algo.stop()
    done = {name: steps[name] - start_steps[name] for name in algos}
    return (
        {name: done[name] / elapsed[name] for name in algos},
        {name: cpu[name] / done[name] for name in algos},
    )


def measure(env_name: str, seconds: float, rllib_loop: bool) -> dict:
    env_config = {"max_episode_steps": LBF_EPISODE_LIMIT} if env_name.startswith("Foraging") else {}
    algos = {"SEAC": build(env_name, env_config=env_config)}
    for loop in ("direct", "rllib") if rllib_loop else ("direct",):
        suffix = "" if loop == "direct" else "_rllib_loop"
        for name, share in (("SEQL", True), ("IQL", False)):
            algos[name + suffix] = build_seql(env_name, env_config, share, loop)
    rate, cpu = rates(algos, seconds)
    figures = {
        "env": env_name,
        "env_config": env_config,
        **{f"{name.lower()}_env_steps_per_s": round(r, 1) for name, r in rate.items()},
        "seac_over_seql": round(rate["SEAC"] / rate["SEQL"], 1),
        **{
            f"{name.lower()}_cpu_ms_per_env_step": round(1e3 * cpu[name], 2)
            for name in ("SEQL", "IQL")
        },
    }
    if rllib_loop:
        figures["seql_direct_over_rllib_loop"] = round(rate["SEQL"] / rate["SEQL_rllib_loop"], 1)
        figures["iql_direct_over_rllib_loop"] = round(rate["IQL"] / rate["IQL_rllib_loop"], 1)
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["rware-tiny-2ag-v2", "Foraging-8x8-2p-2f-v3"])
    parser.add_argument("--seconds", type=float, default=30, help="Measured time per algorithm.")
    parser.add_argument(
        "--no-rllib-loop",
        action="store_true",
        help="Skip SEQL/IQL on RLlib's DQN loop (loop='rllib').",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    results = [measure(env, args.seconds, not args.no_rllib_loop) for env in args.envs]
    ray.shutdown()
    for r in results:
        print(json.dumps(r) if args.json else r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
