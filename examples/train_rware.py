"""A short SEAC run on RWARE: progress per iteration, then a learning curve.

    python examples/train_rware.py [--env rware-tiny-2ag-v2] [--env-steps 200000]

Expect a flat curve near 0 at this budget: RWARE's reward is sparse and SEAC needs
millions of env steps there (the paper trains 80M). examples/train_lbf.py is the
run that shows learning within minutes.

Writes progress.csv, learning_curve.png and a checkpoint under --out.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rllib_seac import SEACConfig, SEACConfigError  # noqa: E402


def rolling_mean(values: list[float], window: int) -> list[float]:
    return [
        sum(values[max(0, i - window + 1) : i + 1]) / min(i + 1, window) for i in range(len(values))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="rware-tiny-2ag-v2")
    parser.add_argument("--env-steps", type=int, default=200_000)
    parser.add_argument("--seac-lambda", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/train_rware")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    config = (
        SEACConfig()
        .environment(args.env)
        .training(seac_lambda=args.seac_lambda)
        .debugging(seed=args.seed, log_level="ERROR")
    )
    try:  # every setting checked before Ray starts
        config.validate()
    except SEACConfigError as e:
        parser.error(str(e))

    from rllib_seac._rllib_internals import set_algorithm_log_dir_parent
    from rllib_seac.local_ray import init_local_ray

    init_local_ray(num_cpus=2)
    # RLlib would leave an empty dated directory in ~/ray_results.
    log_dir = tempfile.mkdtemp(prefix="rllib_seac_")
    set_algorithm_log_dir_parent(log_dir)
    algo = config.build_algo()
    rows, start = [], time.perf_counter()
    print(f"SEAC (lambda={args.seac_lambda}) on {args.env} for {args.env_steps:,} env steps")
    while not rows or rows[-1]["env_steps"] < args.env_steps:
        result = algo.train()
        runners = result["env_runners"]
        elapsed = time.perf_counter() - start
        rows.append(
            {
                "iteration": result["training_iteration"],
                "env_steps": int(runners["num_env_steps_sampled_lifetime"]),
                # Mean over the episodes that ended this iteration (4 of 500 steps).
                "episode_return_mean": runners.get("episode_return_mean", float("nan")),
                "seconds": round(elapsed, 1),
            }
        )
        row = rows[-1]
        print(
            f"iter {row['iteration']:4d}  env steps {row['env_steps']:>9,}  "
            f"return {row['episode_return_mean']:6.2f}  "
            f"{row['env_steps'] / elapsed:6.0f} steps/s  {elapsed:6.0f} s",
            flush=True,
        )
    checkpoint = algo.save_to_path(str(out / "checkpoint"))
    algo.stop()
    shutil.rmtree(log_dir, ignore_errors=True)

    with open(out / "progress.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    steps = [r["env_steps"] for r in rows]
    returns = [r["episode_return_mean"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, returns, alpha=0.35, label="per iteration")
    ax.plot(steps, rolling_mean(returns, 10), label="mean of the last 10 iterations")
    ax.legend(loc="upper left")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return (sum over agents)")
    ax.set_title(f"SEAC on {args.env}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=100)
    print(f"results: {out}/progress.csv, {out}/learning_curve.png, checkpoint {checkpoint}")


if __name__ == "__main__":
    main()
