"""Env steps per second of a tuned-config file's algorithm, built as `rllib train` builds it.

    python benchmarks/tuned_throughput.py tuned_configs/FILE.yaml [--seconds 60] [--json]

Builds the file's first experiment through the CLI's own path (old keys translated,
a module per agent for RLlib's algorithms), in this process without Tune, runs one
warm-up iteration, then trains whole iterations for at least --seconds and reports
the env steps sampled over the wall time of those iterations. SEAC's files and
RLlib's (PPO: IPPO) are measured the same way, so the figures compare.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

STEPS = "num_env_steps_sampled_lifetime"


def build(path: Path):
    from rllib_seac import register
    from rllib_seac.cli.experiments import Overrides, load_file
    from rllib_seac.experiment_config import algorithm_config, trial_settings

    exp = load_file(path, Overrides())[0]
    register({exp.env})
    config = algorithm_config(exp.run).environment(exp.env)
    settings = trial_settings(exp.run, exp.env, exp.config)
    return exp, config.update_from_dict(settings).build_algo()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="A tuned_configs/*.yaml file.")
    parser.add_argument("--seconds", type=float, default=60, help="Timed training (60).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args(argv)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    exp, algo = build(args.file)
    try:
        start_steps = algo.train()[STEPS]  # warm-up: module build, first rollout
        start, iterations = time.perf_counter(), 0
        while time.perf_counter() - start < args.seconds:
            steps = algo.train()[STEPS]
            iterations += 1
        elapsed = time.perf_counter() - start
    finally:
        algo.stop()
        ray.shutdown()
    figures = {
        "file": str(args.file),
        "run": exp.run,
        "env": exp.env,
        "iterations": iterations,
        "env_steps": int(steps - start_steps),
        "seconds": round(elapsed, 1),
        "env_steps_per_s": round((steps - start_steps) / elapsed, 1),
        "command": "python benchmarks/tuned_throughput.py " + " ".join(sys.argv[1:]),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(
            f"{exp.run} on {exp.env}: {figures['env_steps_per_s']:,.0f} env steps/s "
            f"({figures['env_steps']:,} steps in {iterations} iterations, {elapsed:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
