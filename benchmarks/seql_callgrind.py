"""Cost of one env step of SEQL's in-process loop, this tree against another commit's:
CPU time and instructions.

    git archive 8d11d08 | tar -x -C /tmp/base    # the commit to compare with
    python benchmarks/seql_callgrind.py --base /tmp/base [--algos SEQL IQL]
        [--cpu-steps 2000] [--steps 200] [--no-callgrind] [--json]

For each tree (--base, then this one) and algorithm, a fresh Python process builds
what `SEQL.training_step` runs with `loop="in_process"`, without Ray: SEQL's
`InProcessLoop` on Foraging-8x8-2p-2f-v3 (the paper's 25-step limit) and SEQLConfig's
learner, with SEQLConfig's defaults (batch M = 128, 2 x 128 ReLU MLPs, Adam, clip 0.5,
tau 0.05, one update per agent per env step) except epsilon, fixed at 0.05 (late
training: most actions greedy, each a forward pass), seed 0. It runs 300 env steps
first (the buffers pass the first batch at 128, Adam's state is made, every later
step updates every agent), then:
- CPU: `--cpu-steps` env steps, timed by process time (the driver's CPU seconds,
  less bent by other jobs than wall time) and wall time: env steps per CPU-second;
- instructions: `valgrind --tool=callgrind` counts the instructions of `--steps`
  env steps only (learner_callgrind.py's helper switches it on around them),
  divided by `--steps`: a figure machine load cannot change.
An env step is one step of the env with all agents acting, the transitions stored,
one gradient step and soft target update per agent. The tree is chosen by
PYTHONPATH, so the same script measures any commit whose `InProcessLoop` has today's
`run(n_steps, t, learner)`.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import tempfile
import time
from pathlib import Path

from learner_callgrind import callgrind_helper, count_instructions, run_child

SCRIPT = str(Path(__file__).resolve())
ENV, EPISODE_LIMIT, EPSILON, WARM_UP_STEPS = "Foraging-8x8-2p-2f-v3", 25, 0.05, 300


def _child(algo: str, steps: int, cpu_steps: int, helper: str | None) -> None:
    """Runs in the measured tree: prints env steps per CPU-second and wall second."""
    from rllib_seac import SEQLConfig
    from rllib_seac.seql.in_process.loop import InProcessLoop

    config = (
        SEQLConfig()
        .environment(ENV, env_config={"max_episode_steps": EPISODE_LIMIT})
        .training(share_experience=algo == "SEQL", epsilon=EPSILON)
        .debugging(seed=0)
    )
    config.validate()  # one module per agent, from the env
    loop = InProcessLoop(config)
    spaces = (loop.envs.obs_space, loop.envs.action_space)
    learner = config.build_learner(spaces=dict.fromkeys(config.agent_ids, spaces))
    loop.run(WARM_UP_STEPS, 0, learner)
    t = WARM_UP_STEPS
    if helper:
        lib = ctypes.CDLL(helper)
        lib.start()
        loop.run(steps, t, learner)
        lib.stop()
        return
    wall, cpu = time.perf_counter(), time.process_time()
    loop.run(cpu_steps, t, learner)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(json.dumps({"per_cpu_s": cpu_steps / cpu, "per_wall_s": cpu_steps / wall}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="source tree of the commit to compare with")
    parser.add_argument("--algos", nargs="+", choices=["SEQL", "IQL"], default=["SEQL", "IQL"])
    parser.add_argument("--cpu-steps", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=200, help="env steps counted by callgrind")
    parser.add_argument("--no-callgrind", action="store_true", help="CPU and wall time only")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--helper", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.algos[0], args.steps, args.cpu_steps, args.helper)
        return 0
    here = Path(__file__).resolve().parent.parent
    trees = {"base": args.base.resolve(), "this": here} if args.base else {"this": here}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        lib = None if args.no_callgrind else callgrind_helper(workdir)
        for algo in args.algos:
            for name, tree in trees.items():
                child = ["--algos", algo, "--cpu-steps", str(args.cpu_steps)]
                rates = json.loads(run_child(SCRIPT, tree, child).strip().splitlines()[-1])
                row = {
                    "tree": name,
                    "algo": algo,
                    "env_steps_per_cpu_s": round(rates["per_cpu_s"], 1),
                    "env_steps_per_wall_s": round(rates["per_wall_s"], 1),
                }
                if lib is not None:
                    counted = ["--algos", algo, "--steps", str(args.steps)]
                    total = count_instructions(SCRIPT, tree, counted, workdir, lib)
                    row["instructions_per_env_step"] = int(total / args.steps)
                rows.append(row)
    figures = {"rows": rows, "command": "python " + " ".join(sys.argv)}
    if args.json:
        print(json.dumps(figures))
    else:
        print(
            f"{'tree':>5} {'algo':>5} {'env steps/CPU-s':>16} {'env steps/wall-s':>17} "
            f"{'instructions/env step':>22}"
        )
        for r in rows:
            instr = f"{r['instructions_per_env_step']:,}" if lib is not None else "-"
            print(
                f"{r['tree']:>5} {r['algo']:>5} {r['env_steps_per_cpu_s']:>16.1f} "
                f"{r['env_steps_per_wall_s']:>17.1f} {instr:>22}"
            )
        print(figures["command"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
