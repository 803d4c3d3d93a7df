"""Learning benchmark: SEQL vs IQL (App. D) on one task, N seeds each, through Tune.

    python benchmarks/seql_learning.py [--env Foraging-8x8-2p-2f-v3] [--env-steps 10000]
        [--max-minutes 7] [--seeds 3] [--out results/seql-learning]
        [--record docs/results/seql-lbf-8x8-2p-2f/record.json]
    python benchmarks/seql_learning.py --from-record docs/results/seql-lbf-8x8-2p-2f/record.json

Runs the 2 x N trials two at a time (one CPU each); each stops at --env-steps or
after --max-minutes of training, whichever comes first. Epsilon decays as in the
authors' code (exponential, 1.0 -> 0.01) but over 80% of --env-steps (theirs: 2.4M
of 3M steps), so that a short run ends greedy. Writes the record (settings, command,
commit, wall time, each trial's return per iteration) as JSON, and from it the figure
(returns.png next to the record) and summary.md: the mean return per tenth of the
steps reached. --from-record redraws both from a record without training.
Foraging-* envs get the paper's episode limit of 25 (App. A.2).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rllib_seac.analysis.plotting import RETURN, STEPS, Trial, load_trials, plot_trials
from rllib_seac.seql.config import exponential_epsilon

CONCURRENT_TRIALS = 2
LBF_EPISODE_LIMIT = 25
EPSILON_DECAY_FRACTION = 0.8
WINDOWS = 10
AUTHORS_STEPS = 3_000_000  # 120,000 episodes of 25 steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Foraging-8x8-2p-2f-v3")
    parser.add_argument("--env-steps", type=int, default=10_000, help="Budget per trial.")
    parser.add_argument("--max-minutes", type=float, default=7.0, help="Time cap per trial.")
    parser.add_argument("--seeds", type=int, default=3, help="Seeds per algorithm.")
    parser.add_argument("--out", default="results/seql-learning")
    parser.add_argument("--record", default="docs/results/seql-lbf-8x8-2p-2f/record.json")
    parser.add_argument("--from-record", help="Redraw figure and summary from this record.")
    args = parser.parse_args()
    if args.from_record:
        record = json.loads(Path(args.from_record).read_text())
        write_outputs(record, Path(args.from_record).parent)
        return
    record = train(args)
    Path(args.record).parent.mkdir(parents=True, exist_ok=True)
    Path(args.record).write_text(json.dumps(record, indent=1) + "\n")
    write_outputs(record, Path(args.record).parent)


def train(args) -> dict:
    from ray import tune

    import rllib_seac

    start = time.perf_counter()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    rllib_seac.register([args.env])
    env_config = {"max_episode_steps": LBF_EPISODE_LIMIT} if args.env.startswith("Foraging") else {}
    settings = {
        "env": args.env,
        "env_config": env_config,
        "epsilon": exponential_epsilon(round(args.env_steps * EPSILON_DECAY_FRACTION)),
        # Results every 500 env steps; the rest are SEQLConfig's defaults (the authors').
        "min_sample_timesteps_per_iteration": 500,
    }
    tuner = tune.Tuner(
        "SEQL",
        param_space={
            **settings,
            "share_experience": tune.grid_search([True, False]),
            "seed": tune.grid_search(list(range(args.seeds))),
        },
        tune_config=tune.TuneConfig(max_concurrent_trials=CONCURRENT_TRIALS),
        run_config=tune.RunConfig(
            name=f"{args.env}_{time.strftime('%Y-%m-%d_%H-%M-%S')}",
            storage_path=str(Path(args.out).resolve()),
            stop={STEPS: args.env_steps, "time_total_s": args.max_minutes * 60},
            verbose=1,
        ),
    )
    results = tuner.fit()
    trials = load_trials([results.experiment_path])
    return {
        "command": shlex.join(["python", *sys.argv]),
        "commit": commit,
        "settings": settings,
        "steps_per_iteration": settings["min_sample_timesteps_per_iteration"],
        "budget_env_steps": args.env_steps,
        "max_minutes_per_trial": args.max_minutes,
        "concurrent_trials": CONCURRENT_TRIALS,
        "errored_trials": results.num_errors,
        "wall_minutes": round((time.perf_counter() - start) / 60, 1),
        "trials": [
            {
                "share_experience": t.settings["share_experience"],
                "seed": t.settings["seed"],
                "env_steps": t.series(RETURN)[0].tolist(),
                "return": t.series(RETURN)[1].tolist(),
                "time_total_s": t.rows[-1].get("time_total_s"),
            }
            for t in trials
        ],
    }


def record_trials(record: dict) -> list[Trial]:
    return [
        Trial(
            Path(f"{'SEQL' if t['share_experience'] else 'IQL'}-seed{t['seed']}"),
            {**record["settings"], "share_experience": t["share_experience"], "seed": t["seed"]},
            [{STEPS: s, RETURN: r} for s, r in zip(t["env_steps"], t["return"])],
        )
        for t in record["trials"]
    ]


def write_outputs(record: dict, out_dir: Path) -> None:
    trials = record_trials(record)
    figure = plot_trials(trials, out_dir / "returns.png", "returns")
    reached = min(t["env_steps"][-1] for t in record["trials"] if t["env_steps"])
    summary = [
        f"# SEQL vs IQL on {record['settings']['env']} {record['settings']['env_config']}",
        "",
        f"Budget {record['budget_env_steps']:,} env steps or {record['max_minutes_per_trial']:g} "
        f"min per trial; every trial reached at least {reached:,.0f} env steps "
        f"({reached / AUTHORS_STEPS:.2%} of the authors' {AUTHORS_STEPS:,}). "
        f"{len(record['trials'])} trials, {record['concurrent_trials']} at a time, errored: "
        f"{record['errored_trials']}; wall time {record['wall_minutes']} min; commit "
        f"{record['commit']}.",
        *([record["note"]] if "note" in record else []),
        "Return: the episode return summed over agents, each iteration's mean over the "
        "training (epsilon-greedy) episodes that ended in it.",
        "",
        *window_table(record, reached),
        "",
        "Per trial: env steps reached and the return of its last iteration.",
        "",
        *trial_lines(record),
        "",
        f"command: `{record['command']}`",
        f"figure: `python benchmarks/seql_learning.py --from-record {out_dir}/record.json` "
        f"-> {figure}",
    ]
    (out_dir / "summary.md").write_text("\n".join(summary) + "\n")
    print("\n".join(summary))


def window_table(record: dict, steps: float) -> list[str]:
    """Mean return per window of env steps up to `steps` (windows of one reporting
    iteration, at most WINDOWS of them): per seed, then mean ± std over seeds."""
    width = record["steps_per_iteration"] * max(
        1, round(steps / record["steps_per_iteration"] / WINDOWS)
    )
    edges = np.arange(0, steps + 1, width)
    names = [f"{a / 1000:.3g}–{b / 1000:.3g}k" for a, b in zip(edges[:-1], edges[1:])]
    lines = [f"| algorithm | {' | '.join(names)} |", f"|---|{'---|' * len(names)}"]
    for shared, label in ((True, "SEQL"), (False, "IQL")):
        group = [t for t in record["trials"] if t["share_experience"] == shared]
        cells = []
        for a, b in zip(edges[:-1], edges[1:]):
            means = []
            for t in group:
                s, r = np.array(t["env_steps"]), np.array(t["return"])
                inside = r[(s > a) & (s <= b)]
                if len(inside):
                    means.append(inside.mean())
            cells.append(f"{np.mean(means):.3f} ± {np.std(means):.3f}" if means else "—")
        lines.append(f"| {label} ({len(group)} seeds) | {' | '.join(cells)} |")
    return lines


def trial_lines(record: dict) -> list[str]:
    lines = [
        "| algorithm | seed | env steps | last return | training time (s) |",
        "|---|---|---|---|---|",
    ]
    for t in sorted(record["trials"], key=lambda t: (not t["share_experience"], t["seed"])):
        name = "SEQL" if t["share_experience"] else "IQL"
        lines.append(
            f"| {name} | {t['seed']} | {t['env_steps'][-1]:,.0f} | {t['return'][-1]:.3f} "
            f"| {t['time_total_s']:.0f} |"
        )
    return lines


if __name__ == "__main__":
    main()
