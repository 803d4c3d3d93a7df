"""Learning benchmark: one algorithm's variants on one task, N seeds each, through Tune.

    python benchmarks/learning.py [--env Foraging-8x8-2p-2f-v3] [--env-steps 1000000]
        [--seeds 3] [--threshold 0.5] [--out results/learning]
        [--algo SEAC] [--variants SEAC IAC SNAC] [--max-minutes M] [--record PATH]
        [--env-processes P] [--overlap-sampling] [--config JSON] [--label-by KEY]
    python benchmarks/learning.py --algo SEQL [--variants SEQL IQL] --env-steps 10000 \
        --max-minutes 7 [--record docs/results/seql-lbf-8x8-2p-2f/record.json]
    python benchmarks/learning.py --from-record docs/results/seql-lbf-8x8-2p-2f/record.json

--algo SEAC (variants SEAC, IAC, SNAC) or SEQL (variants SEQL, IQL: App. D). Runs
the (up to) 3 x N trials two at a time (one CPU each); each stops at --env-steps or,
with --max-minutes, after that much training time, whichever comes first. SEQL's
epsilon decays as in the authors' code (exponential, 1.0 -> 0.01) but over 80% of
--env-steps (theirs: 2.4M of 3M steps), so that a short run ends greedy; its results
come every 500 env steps. Foraging-* envs get the paper's episode limit of 25 (App. A.2).

Writes under --out/<env>_<date>/ Tune's result files and end checkpoints (for `rllib
evaluate`), the figures (returns.png, agents.png, and SEAC's is-weights.png), a
record (record.json: settings, command, commit, wall time, each trial's return per
iteration; --record writes it, with returns.png and summary.md, to another place too)
and summary.md: per variant, the env steps to reach --threshold and the final return,
mean ± std over seeds, the mean return in each tenth of the env steps every trial
reached (with a 1M budget, 100k-step windows), and each trial's last return.
--from-record redraws the returns figure and summary.md next to a record without
training. --config merges settings into every trial (a {"grid_search": [...]} value
makes one trial per value and seed); --label-by names the setting that labels the rows
and curves instead of the variant, e.g. the 3 + 3 seeds of LBF's seac_target question:

    python benchmarks/learning.py --variants SEAC --seeds 3 --env-steps 1000000 \
        --config '{"seac_target": {"grid_search": ["paper", "authors"]}}' \
        --label-by seac_target --out results/lbf-seac-target
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

from rllib_seac.analysis.labels import variant_name
from rllib_seac.analysis.plotting import (
    RETURN,
    STEPS,
    Trial,
    final_return,
    group_trials,
    load_trials,
    plot_trials,
)

# One trial per variant and seed: Tune's grid cannot leave out SNAC with lambda 0,
# so the variants are preset points and only the seed is a grid.
VARIANTS = {
    "SEAC": [
        {"seac_lambda": 1.0, "shared_policy": False},  # SEAC
        {"seac_lambda": 0.0, "shared_policy": False},  # IAC
        {"seac_lambda": 1.0, "shared_policy": True},  # SNAC
    ],
    "SEQL": [{"share_experience": True}, {"share_experience": False}],  # SEQL, IQL
}
FIGURES = {"SEAC": ("returns", "agents", "is-weights"), "SEQL": ("returns", "agents")}
CONCURRENT_TRIALS = 2
LBF_EPISODE_LIMIT = 25
WINDOWS = 10
SEQL_EPSILON_DECAY_FRACTION = 0.8
SEQL_STEPS_PER_ITERATION = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Foraging-8x8-2p-2f-v3")
    parser.add_argument("--env-steps", type=int, default=1_000_000, help="Budget per trial.")
    parser.add_argument("--seeds", type=int, default=3, help="Seeds per variant.")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="Return whose first crossing is timed (0.5: half of LBF's food; set it per task).",
    )
    parser.add_argument("--out", default="results/learning")
    parser.add_argument("--algo", choices=sorted(VARIANTS), default="SEAC")
    names = {variant_name(v): algo for algo, vs in VARIANTS.items() for v in vs}
    parser.add_argument(
        "--variants", nargs="+", choices=list(names), help="(default: all of --algo's)"
    )
    parser.add_argument("--max-minutes", type=float, help="Training time cap per trial.")
    parser.add_argument("--record", help="Also write record.json, figure and summary here.")
    parser.add_argument("--from-record", help="Redraw figure and summary from this record.")
    parser.add_argument("--env-processes", type=int, default=0, help="env worker processes")
    parser.add_argument("--overlap-sampling", action="store_true")
    parser.add_argument(
        "--config", type=json.loads, default={}, help="JSON merged into every trial's config"
    )
    parser.add_argument("--label-by", help="the setting that labels rows and curves")
    args = parser.parse_args()
    if args.from_record:
        record = json.loads(Path(args.from_record).read_text())
        write_outputs(record, record_trials(record), Path(args.from_record).parent, ("returns",))
        return
    wrong = [v for v in args.variants or () if names[v] != args.algo]
    if wrong:
        parser.error(f"--variants {' '.join(wrong)} are not variants of --algo {args.algo}")
    run_dir, record = train(args)
    trials = load_trials([run_dir])
    write_outputs(record, trials, run_dir, FIGURES[args.algo], args.label_by)
    if args.record:
        trials = record_trials(record, args.label_by)
        write_outputs(record, trials, Path(args.record).parent, ("returns",), args.label_by)


def algo_settings(args, env_config: dict) -> dict:
    """Every trial's settings besides its variant and seed."""
    settings = {"env": args.env, "env_config": env_config}
    if args.algo == "SEAC":
        settings["num_env_processes_per_env_runner"] = args.env_processes
        settings["overlap_sampling"] = args.overlap_sampling
    else:
        from rllib_seac.seql.config import exponential_epsilon

        decay_steps = round(args.env_steps * SEQL_EPSILON_DECAY_FRACTION)
        settings["epsilon"] = exponential_epsilon(decay_steps)
        # Results every 500 env steps; the rest are SEQLConfig's defaults (the authors').
        settings["min_sample_timesteps_per_iteration"] = SEQL_STEPS_PER_ITERATION
    return {**settings, **args.config}


def train(args) -> tuple[Path, dict]:
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    import rllib_seac

    variants = [
        v for v in VARIANTS[args.algo] if args.variants is None or variant_name(v) in args.variants
    ]
    start = time.perf_counter()
    rllib_seac.register([args.env])
    env_config = {"max_episode_steps": LBF_EPISODE_LIMIT} if args.env.startswith("Foraging") else {}
    settings = algo_settings(args, env_config)
    # Overridden by the preset variants; Tune wants each preset key in the space.
    presets = {
        key: tune.choice(sorted({v[key] for v in VARIANTS[args.algo]})) for key in variants[0]
    }
    stop = {STEPS: args.env_steps}
    if args.max_minutes is not None:
        stop["time_total_s"] = args.max_minutes * 60
    tuner = tune.Tuner(
        args.algo,
        param_space={**presets, "seed": tune.grid_search(list(range(args.seeds))), **settings},
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(points_to_evaluate=[dict(v) for v in variants]),
            num_samples=len(variants),
            max_concurrent_trials=CONCURRENT_TRIALS,
        ),
        run_config=tune.RunConfig(
            name=f"{args.env}_{time.strftime('%Y-%m-%d_%H-%M-%S')}",
            storage_path=str(Path(args.out).resolve()),
            stop=stop,
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
            verbose=1,
        ),
    )
    results = tuner.fit()
    run_dir = Path(results.experiment_path)
    record = {
        "command": shlex.join(["python", *sys.argv]),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip(),
        "algo": args.algo,
        "settings": settings,
        "budget_env_steps": args.env_steps,
        "max_minutes_per_trial": args.max_minutes,
        "threshold": args.threshold,
        # Tables of SEQL's runs window by whole iterations (SEAC's iterations vary).
        "steps_per_iteration": settings.get("min_sample_timesteps_per_iteration"),
        "concurrent_trials": CONCURRENT_TRIALS,
        "errored_trials": results.num_errors,
        "wall_minutes": round((time.perf_counter() - start) / 60, 1),
        "results": str(run_dir),
        "trials": [
            {
                "variant": {key: t.settings[key] for key in variants[0]},
                "seed": t.settings["seed"],
                "env_steps": t.series(RETURN)[0].tolist(),
                "return": t.series(RETURN)[1].tolist(),
                "time_total_s": t.rows[-1].get("time_total_s") if t.rows else None,
                **({args.label_by: t.settings.get(args.label_by)} if args.label_by else {}),
            }
            for t in load_trials([run_dir])
        ],
    }
    for path in (run_dir / "record.json", *([Path(args.record)] if args.record else [])):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")
    return run_dir, record


def record_trials(record: dict, label_by: str | None = None) -> list[Trial]:
    """The record's trials as `plotting.Trial`s (records of seql_learning.py, before
    this script ran SEQL, hold `share_experience` in place of `variant`)."""
    trials = []
    for t in record["trials"]:
        variant = t.get("variant") or {"share_experience": t["share_experience"]}
        given = {**variant, "seed": t["seed"], **({label_by: t[label_by]} if label_by else {})}
        rows = [{STEPS: s, RETURN: r} for s, r in zip(t["env_steps"], t["return"])]
        if rows:
            rows[-1]["time_total_s"] = t.get("time_total_s")
        path = Path(f"{variant_name(variant)}-seed{t['seed']}-{len(trials)}")
        trials.append(Trial(path, {**record["settings"], **given}, rows, tuple(given)))
    return trials


def write_outputs(
    record: dict, trials: list[Trial], out_dir: Path, figures, label_by: str | None = None
) -> None:
    """The figures and summary.md of `record`'s run, its `trials` (Tune's results, or
    `record_trials`), in `out_dir` (printed too)."""
    trials = [t for t in trials if len(t.series(RETURN)[0])]
    paths = [plot_trials(trials, out_dir / f"{kind}.png", kind, label_by) for kind in figures]
    reached = min(t.series(RETURN)[0][-1] for t in trials)
    settings = record["settings"]
    cap = record.get("max_minutes_per_trial")
    summary = [
        f"# Learning benchmark: {settings['env']} {settings.get('env_config') or ''}",
        "",
        f"Budget {record['budget_env_steps']:,} env steps"
        + (f" or {cap:g} min of training" if cap else "")
        + f" per trial; every trial reached at least {reached:,.0f} env steps. "
        f"{len(record['trials'])} trials, {record['concurrent_trials']} at a time, errored: "
        f"{record['errored_trials']}; wall time {record['wall_minutes']} min; commit "
        f"{record['commit']}.",
        *([record["note"]] if "note" in record else []),
        "Return: the episode return summed over agents, each iteration's mean over the "
        "training episodes that ended in it (SEQL's and IQL's: epsilon-greedy).",
        "",
        *threshold_table(trials, record.get("threshold", 0.5), label_by),
        "",
        *window_table(trials, reached, record.get("steps_per_iteration"), label_by),
        "",
        "Per trial: env steps reached and the return of its last iteration.",
        "",
        *trial_lines(trials, label_by),
        "",
        f"command: `{record['command']}`",
        *([f"results: {record['results']}"] if "results" in record else []),
        f"figures: `python benchmarks/learning.py --from-record {out_dir}/record.json` -> "
        + ", ".join(str(p) for p in paths),
    ]
    (out_dir / "summary.md").write_text("\n".join(summary) + "\n")
    print("\n".join(summary))


def mean_std(values, fmt: str) -> str:
    return f"{np.mean(values):{fmt}} ± {np.std(values):{fmt}}" if values else "—"


def threshold_table(trials, threshold: float, label_by=None) -> list[str]:
    lines = [
        f"| variant | seeds | env steps to return ≥ {threshold:g} (seeds reaching it) "
        "| final return (last 10% of steps) |",
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


def window_table(trials, steps: float, steps_per_iteration=None, label_by=None) -> list[str]:
    """Mean return per window of env steps up to `steps`: tenths, or with
    `steps_per_iteration` whole iterations, at most WINDOWS windows. Per seed, then
    mean ± std over seeds."""
    if steps_per_iteration:
        width = steps_per_iteration * max(1, round(steps / steps_per_iteration / WINDOWS))
        edges = np.arange(0, steps + 1, width)
    else:
        edges = np.linspace(0, steps, WINDOWS + 1)
    names = [f"{a / 1000:.3g}–{b / 1000:.3g}k" for a, b in zip(edges[:-1], edges[1:])]
    lines = [
        "Mean return per window of env steps (per seed, then mean ± std over seeds):",
        "",
        f"| variant | {' | '.join(names)} |",
        f"|---|{'---|' * len(names)}",
    ]
    for label, group in group_trials(trials, label_by).items():
        cells = []
        for a, b in zip(edges[:-1], edges[1:]):
            seed_means = []
            for t in group:
                s, r = t.series(RETURN)
                inside = r[(s > a) & (s <= b)]
                if len(inside):
                    seed_means.append(inside.mean())
            cells.append(mean_std(seed_means, ".3f"))
        lines.append(f"| {label} ({len(group)} seeds) | {' | '.join(cells)} |")
    return lines


def trial_lines(trials, label_by=None) -> list[str]:
    lines = [
        "| variant | seed | env steps | last return | training time (s) |",
        "|---|---|---|---|---|",
    ]
    for label, group in group_trials(trials, label_by).items():
        for t in sorted(group, key=lambda t: t.settings["seed"]):
            steps, values = t.series(RETURN)
            seconds = t.rows[-1].get("time_total_s")
            lines.append(
                f"| {label} | {t.settings['seed']} | {steps[-1]:,.0f} | {values[-1]:.3f} "
                f"| {'—' if seconds is None else f'{seconds:.0f}'} |"
            )
    return lines


if __name__ == "__main__":
    main()
