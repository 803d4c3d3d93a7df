"""Env steps per second of SE-PPO and its IPPO twin, measured side by side.

    python benchmarks/seppo_throughput.py [--seconds 120] [--json] [--num-envs N ...]
        [--files tuned_configs/rware-tiny-4ag-seppo.yaml tuned_configs/rware-tiny-4ag-ippo.yaml]

Builds each file's algorithm in this process (SEPPO: SEPPOConfig; PPO: RLlib's
PPOConfig; a module per agent, the file's settings, no Tune), trains one warm-up
iteration of each, then alternates whole iterations, one of each in turn, for at
least --seconds, so that whatever else the machine runs weighs on both alike.
Reports per file the env steps over the wall time of its iterations, the process
CPU time per 1,000 env steps (sampling and learning both run in this process: less
sensitive to a busy machine than wall time), and the share of wall time RLlib's
timers give the learner update. `--num-envs 4 16` runs each file twice, with 4 and
with 16 envs per env runner (the same env steps per iteration).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

FILES = ("tuned_configs/rware-tiny-4ag-seppo.yaml", "tuned_configs/rware-tiny-4ag-ippo.yaml")
STEPS = "num_env_steps_sampled_lifetime"


def build(path: Path, num_envs: int | None = None):
    from ray.rllib.algorithms.ppo import PPOConfig

    from rllib_seac import SEPPOConfig, make_env, register_envs
    from rllib_seac.agent_modules import default_grouping

    ((name, exp),) = yaml.safe_load(path.read_text()).items()
    settings = dict(exp["config"])
    settings.pop("shared_policy", None)
    if num_envs is not None:
        settings["num_envs_per_env_runner"] = num_envs
        name = f"{name} ({num_envs} envs)"
    model = settings.pop("model_config", {})
    register_envs([exp["env"]])
    env = make_env(exp["env"], settings.get("env_config"))
    agents = list(env.possible_agents)
    env.close()
    config = {"SEPPO": SEPPOConfig, "PPO": PPOConfig}[exp["run"]]()
    config.environment(exp["env"]).update_from_dict(settings).rl_module(model_config=model)
    config.multi_agent(**default_grouping(agents, False))
    return name, exp["run"], config.build_algo()


def learner_seconds(result: dict) -> float:
    return float(result.get("timers", {}).get("learner_update_timer", 0.0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="+", type=Path, default=[Path(f) for f in FILES])
    parser.add_argument("--seconds", type=float, default=120, help="Timed training (120).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument(
        "--num-envs", type=int, nargs="+", help="Envs per env runner: each file at each."
    )
    args = parser.parse_args(argv)
    import ray

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    # Both on one torch thread, as in a Tune trial (Ray's workers get one) and as
    # SEPPOConfig's torch_num_threads sets it; RLlib's PPO would keep torch's count
    # in this process, and two threads spinning on one busy core run ~10x slower.
    torch.set_num_threads(1)
    runs = [build(path, n) for path in args.files for n in args.num_envs or [None]]
    figures = {
        name: {"run": run, "env_steps": 0, "wall_s": 0.0, "cpu_s": 0.0, "learner_s": 0.0}
        for name, run, _ in runs
    }
    try:
        last = {name: algo.train()[STEPS] for name, _, algo in runs}  # warm-up
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            for name, _, algo in runs:
                wall, cpu = time.perf_counter(), time.process_time()
                result = algo.train()
                fig = figures[name]
                fig["wall_s"] += time.perf_counter() - wall
                fig["cpu_s"] += time.process_time() - cpu
                fig["env_steps"] += int(result[STEPS] - last[name])
                # RLlib's timers are smoothed over iterations: a mean per iteration.
                fig["learner_s"] += learner_seconds(result)
                fig["iterations"] = fig.get("iterations", 0) + 1
                last[name] = result[STEPS]
    finally:
        for _, _, algo in runs:
            algo.stop()
        ray.shutdown()
    for fig in figures.values():
        fig["env_steps_per_s"] = round(fig["env_steps"] / fig["wall_s"], 1)
        fig["cpu_s_per_1000_steps"] = round(1000 * fig["cpu_s"] / fig["env_steps"], 3)
        fig["learner_share"] = round(fig["learner_s"] / fig["wall_s"], 3)
        for key in ("wall_s", "cpu_s", "learner_s"):
            fig[key] = round(fig[key], 1)
    out = {
        "figures": figures,
        "commit": commit.stdout.strip(),
        "command": "python benchmarks/seppo_throughput.py " + " ".join(sys.argv[1:]),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for name, fig in figures.items():
            print(
                f"{name} ({fig['run']}): {fig['env_steps_per_s']:,.0f} env steps/s, "
                f"{fig['cpu_s_per_1000_steps']:.2f} CPU s per 1,000 env steps, learner "
                f"{100 * fig['learner_share']:.0f}% of the wall time "
                f"({fig['env_steps']:,} steps in {fig['iterations']} iterations)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
