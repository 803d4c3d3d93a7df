"""Cost of one learner update, this tree against another commit's: wall time and instructions.

    git archive 545c65a | tar -x -C /tmp/base    # the commit to compare with
    python benchmarks/learner_callgrind.py --base /tmp/base [--agents 2 4]
        [--updates 50] [--repeats 300] [--json]

For each tree (--base, then this one) and agent count, a fresh Python process
builds a SEAC learner on learner_scaling.py's synthetic batch (Table 2's size:
4 envs x 5 steps per agent, rware's 71 observation features), warms it up, and
then runs the updates:
- wall: median ms of `--repeats` updates (noisy on a busy machine; run both trees
  in the same call);
- instructions: `valgrind --tool=callgrind` counts the instructions of `--updates`
  updates only (instrumentation is switched on around them through callgrind's
  client requests, from a tiny C helper built with gcc), divided by `--updates`.
  The count does not depend on machine load: it is what noise cannot fake.
The tree is chosen by PYTHONPATH, so the same script measures any commit whose
SEACConfig has today's API.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = str(Path(__file__).resolve())
HELPER_C = """
#include <valgrind/callgrind.h>
void start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void stop(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("measured"); }
"""


def callgrind_helper(workdir: Path) -> Path:
    """A shared library with start() and stop() of callgrind's instrumentation."""
    source, lib = workdir / "cg.c", workdir / "libcg.so"
    source.write_text(HELPER_C)
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(lib), str(source)], check=True)
    return lib


def _child(n_agents: int, updates: int, repeats: int, helper: str | None) -> None:
    """Runs in the measured tree: prints the median wall ms per update."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from learner_scaling import build_learner, synthetic_batch

    learner, agents = build_learner(n_agents, 1.0)
    batch = synthetic_batch(agents, np.random.default_rng(0))
    for _ in range(20):  # warm-up (and any compilation)
        learner.update(batch=batch, timesteps={}, _no_metrics_reduce=True)
    if helper:
        lib = ctypes.CDLL(helper)
        lib.start()
        for _ in range(updates):
            learner.update(batch=batch, timesteps={}, _no_metrics_reduce=True)
        lib.stop()
        return
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        learner.update(batch=batch, timesteps={}, _no_metrics_reduce=True)
        times.append(time.perf_counter() - start)
    print(json.dumps({"wall_ms": statistics.median(times) * 1e3}))


def run_child(script: str, tree: Path, args: list[str], valgrind: list[str] = ()) -> str:
    """`script --child args` in a fresh Python process that imports `tree`'s package;
    its stdout."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [*valgrind, sys.executable, script, "--child", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def count_instructions(script: str, tree: Path, args: list[str], workdir: Path, lib: Path) -> int:
    """Instructions the child `script --child args --helper lib` runs between its
    calls of the helper's start() and stop(), counted by callgrind."""
    out = workdir / f"callgrind.{tree.name}"
    valgrind = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}.%p",
    ]
    run_child(script, tree, [*args, "--helper", str(lib)], valgrind)
    total = 0
    for dump in workdir.glob(f"{out.name}.*"):
        text = dump.read_text(errors="replace")
        if "measured" in text.split("\nevents:", 1)[0]:  # the dump made by stop()
            total += int(re.search(r"^totals: (\d+)", text, re.M).group(1))
        dump.unlink()
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="source tree of the commit to compare with")
    parser.add_argument("--agents", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--no-callgrind", action="store_true", help="wall time only")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--helper", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.agents[0], args.updates, args.repeats, args.helper)
        return 0
    here = Path(__file__).resolve().parent.parent
    trees = {"base": args.base.resolve(), "this": here} if args.base else {"this": here}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        lib = None if args.no_callgrind else callgrind_helper(workdir)
        for n in args.agents:
            for name, tree in trees.items():
                child = ["--agents", str(n), "--repeats", str(args.repeats)]
                wall = json.loads(run_child(SCRIPT, tree, child).strip().splitlines()[-1])
                row = {"tree": name, "agents": n, "wall_ms": round(wall["wall_ms"], 3)}
                if lib is not None:
                    counted = ["--agents", str(n), "--updates", str(args.updates)]
                    total = count_instructions(SCRIPT, tree, counted, workdir, lib)
                    row["instructions"] = int(total / args.updates)
                rows.append(row)
    figures = {"rows": rows, "command": "python " + " ".join(sys.argv)}
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{'tree':>5} {'agents':>6} {'wall ms/update':>15} {'instructions/update':>20}")
        for r in rows:
            instr = f"{r['instructions']:,}" if "instructions" in r else "-"
            print(f"{r['tree']:>5} {r['agents']:>6} {r['wall_ms']:>15.3f} {instr:>20}")
        print(figures["command"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
