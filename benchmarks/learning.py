"""Learning benchmark: SEAC vs IAC vs SNAC on one task, N seeds each, through Tune.

    python benchmarks/learning.py [--env Foraging-8x8-2p-2f-v3] [--env-steps 1000000]
        [--seeds 3] [--threshold 0.5] [--out results/learning]
        [--variants SEAC IAC SNAC] [--env-processes P] [--overlap-sampling]
        [--config JSON] [--label-by KEY]

Runs the (up to) 3 x N trials two at a time (one CPU each) and writes, under
--out/<env>_<date>/, Tune's result files and end checkpoints (for `rllib evaluate`),
the figures returns.png, agents.png and is-weights.png, and summary.md: per
algorithm, the env steps to reach --threshold and the return at the budget, mean ±
std over seeds, and the mean return in each tenth of the budget (with a 1M budget,
100k-step windows). Foraging-* envs get the paper's episode limit of 25 (App. A.2).
--config merges settings into every trial (a {"grid_search": [...]} value makes one
trial per value and seed); --label-by names the setting that labels the rows and curves
instead of the algorithm, e.g. the 3 + 3 seeds of LBF's seac_target question:

    python benchmarks/learning.py --variants SEAC --seeds 3 --env-steps 1000000 \
        --config '{"seac_target": {"grid_search": ["paper", "authors"]}}' \
        --label-by seac_target --out results/lbf-seac-target
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from ray import tune
from ray.tune.search.basic_variant import BasicVariantGenerator

import rllib_seac
from rllib_seac.analysis.labels import variant_name
from rllib_seac.analysis.plotting import (
    RETURN,
    STEPS,
    final_return,
    group_trials,
    load_trials,
    plot_trials,
)

# One trial per variant and seed: Tune's grid cannot leave out SNAC with lambda 0,
# so the variants are preset points and only the seed is a grid.
VARIANTS = [
    {"seac_lambda": 1.0, "shared_policy": False},  # SEAC
    {"seac_lambda": 0.0, "shared_policy": False},  # IAC
    {"seac_lambda": 1.0, "shared_policy": True},  # SNAC
]
CONCURRENT_TRIALS = 2
LBF_EPISODE_LIMIT = 25
WINDOWS = 10
FIGURES = ("returns", "agents", "is-weights")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Foraging-8x8-2p-2f-v3")
    parser.add_argument("--env-steps", type=int, default=1_000_000, help="Budget per trial.")
    parser.add_argument("--seeds", type=int, default=3, help="Seeds per algorithm.")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="Return whose first crossing is timed (0.5: half of LBF's food; set it per task).",
    )
    parser.add_argument("--out", default="results/learning")
    parser.add_argument(
        "--variants", nargs="+", choices=["SEAC", "IAC", "SNAC"], default=["SEAC", "IAC", "SNAC"]
    )
    parser.add_argument("--env-processes", type=int, default=0, help="env worker processes")
    parser.add_argument("--overlap-sampling", action="store_true")
    parser.add_argument(
        "--config", type=json.loads, default={}, help="JSON merged into every trial's config"
    )
    parser.add_argument("--label-by", help="the setting that labels rows and curves")
    args = parser.parse_args()
    variants = [v for v in VARIANTS if variant_name(v) in args.variants]
    sampling = {
        "num_env_processes_per_env_runner": args.env_processes,
        "overlap_sampling": args.overlap_sampling,
    }
    command = shlex.join(["python", *sys.argv])
    start = time.perf_counter()

    rllib_seac.register([args.env])
    env_config = {"max_episode_steps": LBF_EPISODE_LIMIT} if args.env.startswith("Foraging") else {}
    param_space = {
        "env": args.env,
        "env_config": env_config,
        # Overridden by the preset VARIANTS; Tune wants each preset key in the space.
        "seac_lambda": tune.choice([0.0, 1.0]),
        "shared_policy": tune.choice([False, True]),
        "seed": tune.grid_search(list(range(args.seeds))),
        **sampling,
        **args.config,
    }
    tuner = tune.Tuner(
        "SEAC",
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(points_to_evaluate=[dict(v) for v in variants]),
            num_samples=len(variants),
            max_concurrent_trials=CONCURRENT_TRIALS,
        ),
        run_config=tune.RunConfig(
            name=f"{args.env}_{time.strftime('%Y-%m-%d_%H-%M-%S')}",
            storage_path=str(Path(args.out).resolve()),
            stop={STEPS: args.env_steps},
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
            verbose=1,
        ),
    )
    results = tuner.fit()
    run_dir = Path(results.experiment_path)
    trials = load_trials([run_dir])
    figures = [
        plot_trials(trials, run_dir / f"{kind}.png", kind, label_by=args.label_by)
        for kind in FIGURES
    ]
    wall = time.perf_counter() - start

    summary = "\n".join(
        [
            f"# Learning benchmark: {args.env} {env_config or ''}",
            "",
            f"{args.env_steps:,} env steps per trial, {args.seeds} seed(s) per algorithm, "
            f"{CONCURRENT_TRIALS} trials at a time; errored trials: {results.num_errors}; "
            f"sampling: {sampling}.",
            "Return: the episode return summed over agents, each iteration's mean over the "
            "training episodes that ended in it.",
            "",
            *threshold_table(trials, args.threshold, args.env_steps, args.label_by),
            "",
            *window_table(trials, args.env_steps, args.label_by),
            "",
            f"command: `{command}`",
            f"wall time: {wall / 60:.1f} min",
            f"results: {run_dir}",
            f"figures: {', '.join(str(f) for f in figures)}",
        ]
    )
    (run_dir / "summary.md").write_text(summary + "\n")
    print(f"\n{summary}")


def mean_std(values, fmt: str) -> str:
    return f"{np.mean(values):{fmt}} ± {np.std(values):{fmt}}" if values else "—"


def threshold_table(trials, threshold: float, budget: int, label_by=None) -> list[str]:
    lines = [
        f"| algorithm | seeds | env steps to return ≥ {threshold:g} (seeds reaching it) "
        f"| return at {budget:,} steps (last 10% of steps) |",
        "|---|---|---|---|",
    ]
    for label, group in group_trials(trials, label_by).items():
        crossings = []
        for t in group:
            steps, values = t.series(RETURN)
            reached = np.flatnonzero(values >= threshold)
            if len(reached):
                crossings.append(steps[reached[0]])
        finals = [f for f in map(final_return, group) if f is not None]
        lines.append(
            f"| {label} | {len(group)} | {mean_std(crossings, ',.0f')} "
            f"({len(crossings)}/{len(group)}) | {mean_std(finals, '.2f')} |"
        )
    return lines


def window_table(trials, budget: int, label_by=None) -> list[str]:
    """Mean return of each tenth of the budget: per seed, then mean over seeds."""
    edges = np.linspace(0, budget, WINDOWS + 1)
    names = [f"{a / 1000:g}–{b / 1000:g}k" for a, b in zip(edges[:-1], edges[1:])]
    lines = [
        "Mean return per window of env steps (per seed, then the mean over seeds):",
        "",
        f"| algorithm | {' | '.join(names)} |",
        f"|---|{'---|' * WINDOWS}",
    ]
    for label, group in group_trials(trials, label_by).items():
        cells = []
        for a, b in zip(edges[:-1], edges[1:]):
            seed_means = []
            for t in group:
                steps, values = t.series(RETURN)
                inside = values[(steps > a) & (steps <= b)]
                if len(inside):
                    seed_means.append(inside.mean())
            cells.append(f"{np.mean(seed_means):.2f}" if seed_means else "—")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


if __name__ == "__main__":
    main()
