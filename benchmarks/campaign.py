"""What Tune does not do for long runs: a compact record in git, a run rebuilt from
it in a later session, and the report.

Long runs are Tune experiments (`tuned_configs/paper/`), run and resumed by
`rllib train file`. A leg, on a 2-core machine:

    rllib train file tuned_configs/paper/lbf-15x15-3p-4f.yaml --storage-path results \\
        --config '{"seed": {"grid_search": [0, 1, 2]}}' \\
        --stop '{"num_env_steps_sampled_lifetime": 10000000}'
    python benchmarks/campaign.py record results/paper-lbf-15x15-3p-4f
    git add docs/results/paper-lbf-15x15-3p-4f && git commit

and the next leg, in a fresh checkout:

    python benchmarks/campaign.py restore docs/results/paper-lbf-15x15-3p-4f
    rllib train file tuned_configs/paper/lbf-15x15-3p-4f.yaml --storage-path results \\
        --config '{"seed": {"grid_search": [0, 1, 2]}}' --resume \\
        --stop '{"num_env_steps_sampled_lifetime": 20000000}'
    python benchmarks/campaign.py record results/paper-lbf-15x15-3p-4f

`record RUN_DIR` (after the leg has ended: its last checkpoints are those Tune
registered) evaluates every snapshot (`checkpoint_*`) not evaluated before with the
paper's protocol (App. B: 100 episodes, stochastic policies, action seed 0), and
writes <out>/<experiment>/:

- run/: Tune's saved state of the experiment (what `restore` needs);
- per trial, <algorithm>-seed<k>/:
  - params.json: the trial's settings (what `rllib plot` labels curves by);
  - progress.csv: per window of 250k env steps, its last env step, the mean return
    (each iteration's mean over the episodes that ended in it, averaged), the same
    per agent, the trial's wall time so far, and from each module's learner its
    policy entropy, policy losses and importance weights (`LEARNER_STATS`: means
    over the window, the weights' maximum its largest);
  - snapshots.json: each snapshot's evaluation (what `rllib evaluate RECORD
    --best-of-snapshots` and `report` read);
  - legs.json: per leg (one Tune run), the env steps it began and ended at, its wall
    time and the commit that ran it;
  - checkpoint/: the last checkpoint (weights, Adam, counters, and the in-process
    sampler's envs and random streams: a leg resumes exactly); best/: the best
    evaluated snapshot; trial.json: their Tune names.

`restore RECORD` rebuilds the Tune run directory (each trial at its last checkpoint)
for `rllib train file ... --resume`. `report TASK_DIR` prints, per trial, the first
window at or over each return threshold (`--thresholds`: RWARE's 5 and 20 deliveries
by default, none given for other tasks) and the return at each milestone, the
protocol's table, and draws returns.png with `rllib plot`.

Records from earlier legs run outside Tune (docs/results/rware-*, Foraging-*) have
the same per-trial files and are reported the same way.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WINDOW = 250_000
STEPS = "num_env_steps_sampled_lifetime"
RETURN = "env_runners/episode_return_mean"
AGENT_RETURN = "env_runners/agent_episode_returns_mean/"
LEARNERS = "learners"
# What each module's learner reports that shows how its policy trains, and how a
# window sums it up: the entropy shows a policy collapsing; the importance weights
# (SEAC, SE-PPO) and the policy loss on the other agents' data (SE-PPO's
# `others_policy_loss`) beside the own show how hard shared experience drives it.
LEARNER_STATS = {
    "entropy": np.mean,
    "policy_loss": np.mean,
    "others_policy_loss": np.mean,
    "is_weight_mean": np.mean,
    "is_weight_max": np.max,
}
WALL = "wall_s"
RUN_STATE = "run"  # the record's copy of Tune's experiment state
STATE_GLOBS = ("experiment_state-*.json", "basic-variant-state-*.json", "tuner.pkl")
# Returns whose first crossing `report` tables by default (RWARE's deliveries per
# episode, all agents).
THRESHOLDS = (5.0, 20.0)
MILESTONES = (10_000_000, 20_000_000, 40_000_000)
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("record", help="A Tune run's compact record, for git.")
    record.add_argument("run_dir", help="the experiment's Tune directory (STORAGE/NAME)")
    record.add_argument("--out", default="docs/results")
    record.add_argument("--episodes", type=int, default=100, help="per snapshot evaluation")
    record.add_argument("--window", type=int, default=WINDOW, help="env steps per record row")
    restore = commands.add_parser("restore", help="A resumable Tune run from a record.")
    restore.add_argument("record_dir")
    restore.add_argument("--storage-path", default="results")
    report = commands.add_parser("report", help="Table and figure from a task's records.")
    report.add_argument("task_dir")
    report.add_argument(
        "--thresholds",
        type=float,
        nargs="*",
        default=list(THRESHOLDS),
        help="returns whose first crossing the table gives (default: 5 20, RWARE's "
        "deliveries); none for a task without such marks",
    )
    args = parser.parse_args()
    if args.command == "record":
        record_run(Path(args.run_dir), Path(args.out), args.episodes, args.window)
    elif args.command == "restore":
        print(restore_run(Path(args.record_dir), Path(args.storage_path)))
    else:
        print(report_task(Path(args.task_dir), args.thresholds))


# --- record ---


def record_run(run_dir: Path, out: Path, episodes: int, window: int) -> Path:
    """Writes (or brings up to date) the record of the Tune run in `run_dir`."""
    states = sorted(run_dir.glob("experiment_state-*.json"))
    if not states:
        sys.exit(f"campaign: {run_dir} is not a Tune run (no experiment_state-*.json)")
    record = out / run_dir.name
    _save_run_state(run_dir, record / RUN_STATE)
    leg_id = states[-1].stem.removeprefix("experiment_state-")
    for trial_dir in sorted(p for p in run_dir.iterdir() if (p / "params.json").is_file()):
        if any(trial_dir.glob("checkpoint_*")):
            name = record_trial(trial_dir, record, leg_id, episodes, window)
            print(f"campaign: {trial_dir.name} -> {record / name}", flush=True)
    return record


def _save_run_state(run_dir: Path, dest: Path) -> None:
    """The newest of each of Tune's state files (the experiment's state compressed)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for pattern in STATE_GLOBS:
        newest = sorted(run_dir.glob(pattern))[-1:]
        for file in newest:
            if file.suffix == ".json":
                (dest / (file.name + ".gz")).write_bytes(gzip.compress(file.read_bytes(), mtime=0))
            else:
                shutil.copy2(file, dest / file.name)


def record_trial(trial_dir: Path, record: Path, leg_id: str, episodes: int, window: int) -> str:
    from rllib_seac.analysis.labels import trial_algorithm
    from rllib_seac.analysis.plotting import flatten

    params = json.loads((trial_dir / "params.json").read_text())
    name = f"{trial_algorithm(flatten(params), trial_dir.name)}-seed{params.get('seed', 0)}"
    dest = record / name
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "params.json").write_text(json.dumps(params, indent=1) + "\n")
    results = read_results(trial_dir / "result.json")

    legs = _read_json(dest / "legs.json", [])
    if not legs or legs[-1]["run"] != leg_id:
        start = legs[-1]["end_steps"] if legs else 0
        if legs and not any(steps_of(r) > start for r in results):
            return name  # it did not run in this Tune run (finished before, or pending)
        legs.append({"leg": len(legs) + 1, "run": leg_id, "start_steps": start})
    leg = legs[-1]
    rows = [r for r in read_rows(dest / "progress.csv") if r[STEPS] <= leg["start_steps"]]
    rows += window_rows([r for r in results if steps_of(r) > leg["start_steps"]], window)
    write_rows(dest / "progress.csv", rows)
    start_wall = next((r[WALL] for r in reversed(rows) if r[STEPS] <= leg["start_steps"]), 0.0)
    leg.update(
        end_steps=int(rows[-1][STEPS]) if rows else leg["start_steps"],
        wall_s=round(rows[-1][WALL] - start_wall, 1) if rows else 0.0,
        commit=git_commit(),
        recorded=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    )
    (dest / "legs.json").write_text(json.dumps(legs, indent=1) + "\n")

    snapshots = sorted(trial_dir.glob("checkpoint_*"))
    evaluations = evaluate_new_snapshots(snapshots, dest, name, episodes)
    best = max(evaluations, key=lambda e: e["total_return"]["mean"])
    trial = _read_json(dest / "trial.json", {})
    if trial.get("best") != best["snapshot"] and (trial_dir / best["snapshot"]).is_dir():
        _replace(trial_dir / best["snapshot"], dest / "best")
        trial["best"] = best["snapshot"]
    _replace(snapshots[-1], dest / "checkpoint")
    trial.update(tune_trial=trial_dir.name, checkpoint=snapshots[-1].name)
    (dest / "trial.json").write_text(json.dumps(trial, indent=1) + "\n")
    return name


def evaluate_new_snapshots(snapshots: list[Path], dest: Path, name: str, episodes: int):
    """snapshots.json, with every snapshot not in it evaluated; its entries."""
    from rllib_seac._rllib_internals import checkpoint_env_steps
    from rllib_seac.analysis.evaluation import evaluate

    file = dest / "snapshots.json"
    evaluations = _read_json(file, [])
    known = {e["env_steps"] for e in evaluations}
    algorithm = name.rsplit("-seed", 1)[0]
    for snapshot in snapshots:
        steps = checkpoint_env_steps(snapshot)
        if steps is None:
            sys.exit(f"campaign: {snapshot} holds no env-step counter")
        if steps in known:
            continue
        result = evaluate(snapshot, episodes=episodes, seed=0).to_dict()
        del result["episode_total_returns"], result["checkpoint"]
        evaluations.append(
            {"snapshot": snapshot.name, "env_steps": steps, "algorithm": algorithm, **result}
        )
        evaluations.sort(key=lambda e: e["env_steps"])
        file.write_text(json.dumps(evaluations, indent=1) + "\n")
        print(f"campaign: {name} at {steps:,} env steps: {result['total_return']}", flush=True)
    return evaluations


def read_results(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def steps_of(result: dict) -> int:
    return int(result["env_runners"][STEPS])


def window_rows(results: list[dict], window: int) -> list[dict]:
    """One row per window of `window` env steps (the last one may be partial): the mean
    return over the window's iterations that had an episode end, and per agent."""
    groups: dict[int, list[dict]] = {}
    for result in results:
        groups.setdefault(math.ceil(steps_of(result) / window), []).append(result)
    return [_window_row(group) for _, group in sorted(groups.items())]


def _window_row(results: list[dict]) -> dict:
    runners = [r["env_runners"] for r in results]
    returns = _finite([r.get("episode_return_mean") for r in runners])
    row = {STEPS: steps_of(results[-1]), RETURN: _mean(returns)}
    agents = sorted({a for r in runners for a in r.get("agent_episode_returns_mean", {})})
    for agent in agents:
        values = [r.get("agent_episode_returns_mean", {}).get(agent) for r in runners]
        row[AGENT_RETURN + agent] = _mean(_finite(values))
    row[WALL] = round(float(results[-1]["time_total_s"]), 1)
    learners = [r.get(LEARNERS, {}) for r in results]
    modules = sorted({m for stats in learners for m, v in stats.items() if "entropy" in v})
    for module in modules:
        for stat, summary in LEARNER_STATS.items():
            values = _finite([stats.get(module, {}).get(stat) for stats in learners])
            if values:
                row[f"{LEARNERS}/{module}/{stat}"] = round(float(summary(values)), 4)
    return row


def _finite(values) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _mean(values: list[float]):
    return round(float(np.mean(values)), 4) if values else ""


# --- restore ---


def restore_run(record: Path, storage: Path) -> Path:
    """The Tune run directory of `record`, each trial at its last checkpoint."""
    run_dir = storage / record.name
    if run_dir.exists():
        sys.exit(f"campaign: {run_dir} exists; resume it, or move it away first")
    if not (record / RUN_STATE).is_dir():
        sys.exit(f"campaign: {record} is not a record of a Tune run (no {RUN_STATE}/)")
    run_dir.mkdir(parents=True)
    for file in (record / RUN_STATE).iterdir():
        if file.suffix == ".gz":
            (run_dir / file.stem).write_bytes(gzip.decompress(file.read_bytes()))
        else:
            shutil.copy2(file, run_dir / file.name)
    for trial in sorted(record.glob("*/trial.json")):
        names = json.loads(trial.read_text())
        trial_dir = run_dir / names["tune_trial"]
        trial_dir.mkdir()
        shutil.copy2(trial.parent / "params.json", trial_dir / "params.json")
        shutil.copytree(trial.parent / "checkpoint", trial_dir / names["checkpoint"])
        # A resumed trial appends to these (Tune warns when they are missing); the
        # record keeps the earlier legs' progress itself, in windows.
        for log in ("result.json", "progress.csv"):
            (trial_dir / log).touch()
    return run_dir


# --- files ---


def _read_json(path: Path, default):
    return json.loads(path.read_text()) if path.is_file() else default


def _replace(source: Path, dest: Path) -> None:
    """Copies a checkpoint over `dest`, which changes only once the copy is complete."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def write_rows(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def git_commit() -> str:
    """The commit of the rllib_seac that runs (and so ran the leg: record it from the
    same tree), "+dirty" if its package files differ from it."""
    import rllib_seac

    tree = Path(rllib_seac.__file__).resolve().parents[1]
    git = ["git", "-C", str(tree)]
    out = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "rllib_seac"], capture_output=True)
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


# --- report ---


def report_task(task_dir: Path, thresholds=THRESHOLDS) -> str:
    """Markdown: per trial, env steps to each threshold and the return at each milestone;
    then `rllib plot` draws returns.png in the task directory."""
    lines = [
        "| trial | env steps | wall time | "
        + "".join(f"first window ≥ {t:g} | " for t in thresholds)
        + " | ".join(f"return at {m / 1e6:g}M" for m in MILESTONES)
        + " |",
        "|---|---|---|" + "---|" * (len(thresholds) + len(MILESTONES)),
    ]
    per_variant: dict[str, list[list[float | None]]] = {}
    for trial_dir in sorted(p for p in task_dir.iterdir() if (p / "progress.csv").is_file()):
        rows = [r for r in read_rows(trial_dir / "progress.csv") if r[RETURN] != ""]
        steps = np.array([r[STEPS] for r in rows])
        returns = np.array([r[RETURN] for r in rows])
        figures = []
        for threshold in thresholds:
            reached = np.flatnonzero(returns >= threshold)
            figures.append(float(steps[reached[0]]) if len(reached) else None)
        for milestone in MILESTONES:
            at = np.flatnonzero(steps == milestone)
            figures.append(float(returns[at[0]]) if len(at) else None)
        per_variant.setdefault(trial_dir.name.split("-seed")[0], []).append(figures)
        head = [trial_dir.name, f"{int(steps[-1]):,}", f"{rows[-1][WALL] / 3600:.1f} h"]
        cells = _cells(figures, len(thresholds), missing="not yet")
        lines.append("| " + " | ".join(head + cells) + " |")
    for variant, trials in per_variant.items():
        if len(trials) > 1:
            means = [
                _mean_std([t[i] for t in trials], crossing=i < len(thresholds))
                for i in range(len(trials[0]))
            ]
            head = [f"{variant}, mean ± std", "", ""]
            lines.append("| " + " | ".join(head + means) + " |")
    snapshots = [t for t in sorted(task_dir.iterdir()) if (t / "snapshots.json").is_file()]
    if snapshots:  # the paper's protocol over the snapshots evaluated during the legs
        from rllib_seac.analysis import protocol

        lines += ["", protocol.table([protocol.evaluate_trial(t) for t in snapshots])]
    figure = task_dir / "returns.png"
    plot = [sys.executable, "-m", "rllib_seac.cli", "plot", str(task_dir), "--out", str(figure)]
    subprocess.run(plot, check=True)
    return "\n".join([*lines, "", f"figure: {figure}"])


def _cells(figures: list[float | None], crossings: int, missing: str) -> list[str]:
    """The first `crossings` figures (env steps to a threshold) then milestone returns,
    as table cells."""
    cells = []
    for i, value in enumerate(figures):
        crossing = i < crossings
        if value is None:
            cells.append(missing if crossing else "—")
        else:
            cells.append(f"{int(value):,}" if crossing else f"{value:.2f}")
    return cells


def _mean_std(values: list[float | None], crossing: bool) -> str:
    """Over the seeds that reached it, saying how many did."""
    known = [v for v in values if v is not None]
    if not known:
        return "—"
    fmt = ",.0f" if crossing else ".2f"
    text = f"{np.mean(known):{fmt}} ± {np.std(known):{fmt}}"
    return text + (f" ({len(known)}/{len(values)} seeds)" if len(known) < len(values) else "")


if __name__ == "__main__":
    main()
