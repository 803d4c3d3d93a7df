"""How far one checkpoint's evaluation is from the policy around it: a checkpoint,
then the policy after each of the next few training iterations, each evaluated
frozen with Table 1's protocol (`rllib evaluate`: stochastic policies, full episodes).

    python benchmarks/investigations/snapshot_spread.py \
        docs/results/rware-tiny-4ag-v2/SEAC-seed1/best
        [--iterations 10] [--episodes 20] [--seed 0] [--json]

Training return is a mean over a window in which the policy moves on every update;
an evaluation sees one frozen policy. Where the frozen policies of neighbouring
moments score far apart, a single checkpoint's evaluation says little about the run.
Row 0 is the checkpoint itself; row k the policy after k more `train()` calls (each
of them continues the trial exactly: weights, Adam state, envs and random streams).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a SEAC checkpoint (e.g. a campaign's best/)")
    parser.add_argument("--iterations", type=int, default=10, help="train() calls after it")
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes each")
    parser.add_argument("--seed", type=int, default=0, help="of every evaluation")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import ray

    from rllib_seac import SEAC
    from rllib_seac.analysis.evaluation import evaluate

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    algo = SEAC.from_checkpoint(str(Path(args.checkpoint).absolute()))
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for k in range(args.iterations + 1):
                # The training return of the iteration that led here (its episodes
                # saw the policy move on every update).
                training_return = None
                if k:
                    training_return = algo.train()["env_runners"].get("episode_return_mean")
                snapshot = Path(tmp) / f"iteration{k}"
                algo.save_to_path(str(snapshot))
                returns = evaluate(snapshot, episodes=args.episodes, seed=args.seed).total_returns
                rows.append(
                    {
                        "iterations_after_checkpoint": k,
                        "env_steps": int(algo.env_runner.num_env_steps_sampled_lifetime),
                        "evaluation_mean": float(np.mean(returns)),
                        "evaluation_std": float(np.std(returns)),
                        "training_return": training_return,
                    }
                )
                if not args.json:
                    print(_row(rows[-1], args.episodes), flush=True)
    finally:
        algo.stop()
        ray.shutdown()
    if args.json:
        report = {"checkpoint": args.checkpoint, "episodes": args.episodes, "seed": args.seed}
        print(json.dumps({**report, "rows": rows}))


def _row(row: dict, episodes: int) -> str:
    line = (
        f"+{row['iterations_after_checkpoint']} iterations ({row['env_steps']:,} env steps): "
        f"evaluation {row['evaluation_mean']:.2f} ± {row['evaluation_std']:.2f} "
        f"({episodes} episodes)"
    )
    if row["training_return"] is not None:
        line += f"; training return of the iteration {row['training_return']:.2f}"
    return line


if __name__ == "__main__":
    main()
