"""Instructions of SEAC's rollouts, this tree against another commit's (callgrind).

    git archive 87e90d3 | tar -x -C /tmp/base    # the commit to compare with
    python benchmarks/investigations/rollout_callgrind.py --base /tmp/base \
        [--envs rware-tiny-2ag-v2 rware-tiny-4ag-v2] [--rollouts 100] [--json]

In a fresh process per tree and env: SEAC's env runner with Table 2's 4 envs, 20
warm-up rollouts, then `--rollouts` calls of the collector's `collect()` (5 steps of
every env, the actions sampled in numpy), each after `weights_changed()` (the actors
restacked, as after every update), counted by callgrind between the start and stop
of its instrumentation (`learner_callgrind.py`'s helper). Load does not change the
count.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from learner_callgrind import callgrind_helper, count_instructions  # noqa: E402

SCRIPT = str(Path(__file__).resolve())


def _child(env: str, rollouts: int, helper: str) -> None:
    from rllib_seac import SEACConfig

    try:
        from rllib_seac.seac.env_runner import SEACEnvRunner
        from rllib_seac.seac.rollouts import RolloutCollector
    except ImportError:  # the layout before the env runner moved into seac/
        from rllib_seac.sampling.env_runner import SEACEnvRunner
        from rllib_seac.sampling.rollouts import RolloutCollector

    config = SEACConfig().environment(env).debugging(seed=0)
    config.validate()
    runner = SEACEnvRunner(config=config)
    collector = next(v for v in vars(runner).values() if isinstance(v, RolloutCollector))
    for _ in range(20):
        collector.weights_changed()
        collector.collect()
    lib = ctypes.CDLL(helper)
    lib.start()
    for _ in range(rollouts):
        collector.weights_changed()
        collector.collect()
    lib.stop()
    runner.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="source tree to compare with (required)")
    parser.add_argument("--envs", nargs="+", default=["rware-tiny-2ag-v2", "rware-tiny-4ag-v2"])
    parser.add_argument("--rollouts", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--helper", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.rollouts, args.helper)
        return 0
    if args.base is None:
        parser.error("--base is required")
    trees = {"base": args.base.resolve(), "this": Path(__file__).resolve().parents[2]}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        lib = callgrind_helper(workdir)
        for env in args.envs:
            for name, tree in trees.items():
                # (run as `SCRIPT --child ENV --rollouts N --helper LIB`)
                child = [env, "--rollouts", str(args.rollouts)]
                total = count_instructions(SCRIPT, tree, child, workdir, lib)
                rows.append(
                    {"tree": name, "env": env, "instructions_per_rollout": total // args.rollouts}
                )
    figures = {"rows": rows, "command": "python " + " ".join(sys.argv)}
    print(json.dumps(figures) if args.json else "\n".join(map(str, rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
