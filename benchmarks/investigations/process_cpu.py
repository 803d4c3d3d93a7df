"""CPU time per update of each process in the fastest mode, against rware's own step.

    python benchmarks/investigations/process_cpu.py [--env rware-tiny-2ag-v2] [--iterations 5]
        [--seac-lambda 1.0] [--json]

The fastest mode (one env worker process + `overlap_sampling`) runs two processes
side by side: the driver (learner, RLlib's iteration, weight hand-off) and the env
worker (env steps, inference). On a machine where each has a core of its own, an
update takes as long as the busier of the two, so env steps/s can be read off their
CPU times: 20 env steps / max(driver, worker) CPU time per update. On a shared,
loaded machine the wall-clock figures of throughput.py move with the other jobs;
CPU times move much less, which is what this script is for. The yardstick is timed
the same way: the CPU time of rware's own `Warehouse.step` (random actions, one
process). The driver's figure is its main thread's CPU time (`time.thread_time`:
Ray's background threads left out), the worker's its process's user + system time
(/proc/PID/stat). The hand-off's latency is not in either: the wall figures of
throughput.py include it. Linux only. The tree measured is chosen by PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_rware_cpu_steps_per_s(env_name: str, seconds: float) -> float:
    """rware's own step with random actions, per CPU second of this thread."""
    from rllib_seac import make_env

    env = make_env(env_name, {"fast_step": False})
    rng = np.random.default_rng(0)
    n_actions = env.get_action_space(env.possible_agents[0]).n
    env.reset(seed=0)
    steps, start = 0, time.thread_time()
    while time.thread_time() - start < seconds:
        actions = {aid: int(rng.integers(n_actions)) for aid in env.possible_agents}
        _, _, term, trunc, _ = env.step(actions)
        steps += 1
        if term["__all__"] or trunc["__all__"]:
            env.reset()
    return steps / (time.thread_time() - start)


def fastest_mode_cpu(env_name: str, iterations: int, seac_lambda: float) -> dict:
    from rllib_seac import SEACConfig

    algo = (
        SEACConfig()
        .environment(env_name)
        .training(seac_lambda=seac_lambda, overlap_sampling=True)
        .env_runners(num_envs_per_env_runner=4, num_env_processes_per_env_runner=1)
        .debugging(seed=0, log_level="ERROR")
        .build_algo()
    )
    workers = [proc.pid for proc in algo.env_runner._rollouts._procs]
    updates = algo.config.updates_per_iteration * iterations
    algo.train()  # warm-up
    driver, worker = time.thread_time(), sum(map(process_cpu_seconds, workers))
    wall = time.perf_counter()
    for _ in range(iterations):
        algo.train()
    wall = time.perf_counter() - wall
    driver = (time.thread_time() - driver) / updates
    worker = (sum(map(process_cpu_seconds, workers)) - worker) / updates
    algo.stop()
    env_steps = 4 * algo.config.n_steps
    return {
        "driver_cpu_ms_per_update": round(driver * 1e3, 3),
        "worker_cpu_ms_per_update": round(worker * 1e3, 3),
        "env_steps_per_cpu_s_of_the_busier": round(env_steps / max(driver, worker), 1),
        "wall_env_steps_per_s": round(env_steps * updates / wall, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="rware-tiny-2ag-v2")
    parser.add_argument("--iterations", type=int, default=5, help="train() calls timed")
    parser.add_argument("--seac-lambda", type=float, default=1.0, help="0: IAC")
    parser.add_argument("--raw-seconds", type=float, default=10.0, help="CPU seconds of raw rware")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    figures = {"env": args.env, "seac_lambda": args.seac_lambda}
    figures.update(fastest_mode_cpu(args.env, args.iterations, args.seac_lambda))
    ray.shutdown()
    raw = raw_rware_cpu_steps_per_s(args.env, args.raw_seconds)
    figures["raw_rware_own_step_steps_per_cpu_s"] = round(raw, 1)
    figures["busier_over_raw_rware"] = round(figures["env_steps_per_cpu_s_of_the_busier"] / raw, 3)
    figures["command"] = "python " + " ".join(sys.argv)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:36s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
