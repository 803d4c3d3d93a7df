"""End-to-end env steps/s of SEAC and IAC (sampling + learning), measured in one run.

    python benchmarks/throughput.py [--env rware-tiny-2ag-v2] [--seconds 30] [--json]

Table 2 settings (4 envs, 5-step rollouts, 64x64 networks, Adam). SEAC and IAC
alternate iteration by iteration so machine noise hits both alike; the raw env
(random actions, one process) is timed in the same run for scale. An env step
is one step of one env with all agents acting.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def raw_env_steps_per_s(env_name: str, seconds: float) -> float:
    from rllib_seac import make_env

    env = make_env(env_name)
    rng = np.random.default_rng(0)
    n_actions = env.get_action_space(env.possible_agents[0]).n
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        actions = {aid: int(rng.integers(n_actions)) for aid in env.possible_agents}
        _, _, term, trunc, _ = env.step(actions)
        steps += 1
        if term["__all__"] or trunc["__all__"]:
            env.reset()
    return steps / (time.perf_counter() - start)


def build(env_name: str, seac_lambda: float, num_env_runners: int):
    from rllib_seac import SEACConfig

    config = (
        SEACConfig()
        .environment(env_name)
        .training(seac_lambda=seac_lambda)
        .env_runners(num_env_runners=num_env_runners)
        .debugging(seed=0, log_level="ERROR")
    )
    return config.build_algo()


def env_steps(result) -> int:
    return int(result["env_runners"]["num_env_steps_sampled_lifetime"])


def measure(env_name: str, seconds: float, num_env_runners: int) -> dict:
    import ray

    ray.init(num_cpus=max(2, num_env_runners + 1), include_dashboard=False, log_to_driver=False)
    algos = {
        name: build(env_name, lam, num_env_runners) for name, lam in (("seac", 1.0), ("iac", 0.0))
    }
    elapsed = dict.fromkeys(algos, 0.0)
    steps = {}
    for name, algo in algos.items():  # warm-up iteration, not timed
        steps[name] = env_steps(algo.train())
    start_steps = dict(steps)
    while min(elapsed.values()) < seconds:
        for name, algo in algos.items():
            t = time.perf_counter()
            steps[name] = env_steps(algo.train())
            elapsed[name] += time.perf_counter() - t
    for algo in algos.values():
        algo.stop()
    ray.shutdown()
    rate = {n: (steps[n] - start_steps[n]) / elapsed[n] for n in algos}
    return {
        "env": env_name,
        "seac_env_steps_per_s": round(rate["seac"], 1),
        "iac_env_steps_per_s": round(rate["iac"], 1),
        "seac_over_iac_time": round(rate["iac"] / rate["seac"], 3),
        "raw_env_steps_per_s_one_process": round(raw_env_steps_per_s(env_name, 10), 1),
        "num_env_runners": num_env_runners,
        "seconds_per_algorithm": round(min(elapsed.values()), 1),
        "settings": "Table 2: 4 envs, n_steps 5, 64x64 actor and critic, lr 3e-4",
        "command": "python " + " ".join(sys.argv),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="rware-tiny-2ag-v2")
    parser.add_argument("--seconds", type=float, default=30.0, help="timed seconds per algorithm")
    parser.add_argument("--num-env-runners", type=int, default=0, help="0: sample in the driver")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    figures = measure(args.env, args.seconds, args.num_env_runners)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:34s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
