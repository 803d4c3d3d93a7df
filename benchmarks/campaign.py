"""Long learning runs in legs that resume exactly, with a compact record in git.

    python benchmarks/campaign.py run tuned_configs/rware-tiny-4ag.yaml --variant SEAC
        --seed 0 --until 20000000 [--minutes 150] [--env-config '{...}']
        [--out docs/results]
    python benchmarks/campaign.py report docs/results/rware-tiny-4ag-v2

`run` trains one trial (a variant and a seed of a tuned config) from where its
record stops up to --until env steps or for --minutes, whichever comes first, and
after every window of 250k env steps rewrites the trial's record under
<out>/<env>[-<tag>]/<variant>-seed<k>/:

- params.json: the trial's settings (what `rllib plot` labels curves by);
- progress.csv: per window, its last env step, the mean return over the window
  (each iteration's mean over the episodes that ended in it, averaged), the same per
  agent, and the trial's wall time so far;
- legs.json: per leg, the env steps it began and ended at, its wall time, the commit
  it ran on and its command;
- checkpoint/: the algorithm after the last window (weights, Adam, counters, and the
  envs and random streams of the in-process sampler, so a leg resumes exactly; about
  1 MB for 4 agents). best/ holds the checkpoint of the best window so far;
- with --snapshot-every K: snapshots.json, every K env steps the paper's evaluation of
  the weights then (App. B: 100 episodes, stochastic policies, `rllib evaluate`'s
  protocol, action seed 0), and best/ is instead the best evaluated snapshot (Table 1
  takes the best saved model per seed). The snapshot checkpoints themselves stay under
  --snapshot-dir, outside git.

SE-PPO's variants, SEPPO and IPPO (seppo_lambda 0: RLlib's IPPO), run SE-PPO's file
(tuned_configs/rware-tiny-4ag-seppo.yaml) with a --window that is a multiple of its
4,000-step iterations (e.g. 200000); their legs resume the weights, optimizer and
counters, not the envs' state (RLlib's env runner does not save it), and take no
--snapshot-every.

Commit the record after a leg (or any time: the files are consistent after every
window). `report` prints the table of docs/results/rware.md from the records and
draws the figure with `rllib plot`.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

WINDOW = 250_000
STEPS = "num_env_steps_sampled_lifetime"
RETURN = "env_runners/episode_return_mean"
AGENT_RETURN = "env_runners/agent_episode_returns_mean/"
WALL = "wall_s"
VARIANTS = {
    "SEAC": {"seac_lambda": 1.0},
    "IAC": {"seac_lambda": 0.0},
    "SNAC": {"shared_policy": True},
    # SE-PPO's files (docs/seppo.md); seppo_lambda 0 trains RLlib's IPPO weights.
    "SEPPO": {"seppo_lambda": 1.0},
    "IPPO": {"seppo_lambda": 0.0},
}
PPO_VARIANTS = ("SEPPO", "IPPO")
# Returns whose first crossing `report` tables (deliveries per episode, all agents).
THRESHOLDS = (5.0, 20.0)
MILESTONES = (10_000_000, 20_000_000, 40_000_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="Run or extend one trial's leg.")
    run.add_argument("tuned_config", help="a tuned_configs/*.yaml file (one experiment)")
    run.add_argument("--variant", choices=sorted(VARIANTS), default="SEAC")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--until", type=int, required=True, help="env steps the trial ends at")
    run.add_argument("--minutes", type=float, default=150.0, help="wall-time bound of this leg")
    run.add_argument(
        "--config",
        default="{}",
        help="JSON merged into the tuned config, env_config into its env_config "
        '(e.g. \'{"env_config": {"time_limit_terminal": true}}\')',
    )
    run.add_argument("--tag", default="", help="suffix of the task directory (a setting)")
    run.add_argument("--window", type=int, default=WINDOW, help="env steps per record row")
    run.add_argument("--out", default="docs/results")
    run.add_argument(
        "--snapshot-every", type=int, default=0, help="env steps between evaluated snapshots"
    )
    run.add_argument("--snapshot-dir", default="results/snapshots")
    run.add_argument("--episodes", type=int, default=100, help="per snapshot evaluation")
    report = commands.add_parser("report", help="Table and figure from a task's records.")
    report.add_argument("task_dir")
    args = parser.parse_args()
    if args.command == "run":
        run_leg(args)
    else:
        print(report_task(Path(args.task_dir)))


def trial_config(args) -> tuple[str, dict]:
    """(env, the SEAC or SE-PPO config dict) of the tuned file with the variant and
    seed set."""
    (experiment,) = yaml.safe_load(Path(args.tuned_config).read_text()).values()
    config = dict(experiment.get("config", {}))
    if args.variant in PPO_VARIANTS:
        config.pop("shared_policy", None)  # the CLI's key: SE-PPO has a module per agent
    overrides = json.loads(args.config)
    env_config = {**config.pop("env_config", {}), **overrides.pop("env_config", {})}
    config.update(overrides, **VARIANTS[args.variant], seed=args.seed, env_config=env_config)
    return experiment["env"], config


def run_leg(args) -> None:
    import ray

    from rllib_seac import SEAC, SEPPO, SEACConfig, SEPPOConfig

    if args.variant in PPO_VARIANTS and args.snapshot_every:
        sys.exit("campaign: --snapshot-every evaluates SEAC's checkpoints only")
    algo_class, config_class = (
        (SEPPO, SEPPOConfig) if args.variant in PPO_VARIANTS else (SEAC, SEACConfig)
    )
    env, config = trial_config(args)
    task = env + (f"-{args.tag}" if args.tag else "")
    trial_dir = Path(args.out) / task / f"{args.variant}-seed{args.seed}"
    checkpoint = trial_dir / "checkpoint"
    rows = read_rows(trial_dir / "progress.csv")
    legs = json.loads((trial_dir / "legs.json").read_text()) if checkpoint.is_dir() else []
    params = {"env": env, **config}
    if legs and json.loads((trial_dir / "params.json").read_text()) != params:
        sys.exit(f"campaign: {trial_dir} was run with other settings; give another --tag")

    # A Ray instance of its own, never one that another program on the machine runs.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    if legs:
        algo = algo_class.from_checkpoint(str(checkpoint.absolute()))
    else:
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "params.json").write_text(json.dumps(params, indent=1) + "\n")
        settings = dict(config)
        model = settings.pop("model_config", None)  # RLlib's: through rl_module()
        algo_config = config_class().environment(env).update_from_dict(settings)
        if model is not None:
            algo_config.rl_module(model_config=model)
        algo = algo_config.build_algo()
    start_steps = int(rows[-1][STEPS]) if rows else 0
    leg = {
        "leg": len(legs) + 1,
        "start_steps": start_steps,
        "end_steps": start_steps,
        "wall_s": 0.0,
        "commit": git_commit(),
        "command": shlex.join(["python", *sys.argv]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    legs.append(leg)
    deadline = time.monotonic() + args.minutes * 60
    trial_wall = float(rows[-1][WALL]) if rows else 0.0
    best = max((float(r[RETURN]) for r in rows if r[RETURN] != ""), default=-np.inf)
    snapshots_file = trial_dir / "snapshots.json"
    snapshots = json.loads(snapshots_file.read_text()) if snapshots_file.is_file() else []
    if args.snapshot_every:
        if rows and not snapshots:
            sys.exit(f"campaign: {trial_dir} was started without --snapshot-every")
        best = max((s["total_return"]["mean"] for s in snapshots), default=-np.inf)
    window, steps, leg_start = [], start_steps, time.monotonic()
    print(f"campaign: {trial_dir}, leg {leg['leg']} from {start_steps:,} env steps", flush=True)
    try:
        while steps < args.until and time.monotonic() < deadline:
            result = algo.train()
            steps = int(result["env_runners"][STEPS])
            window.append(result["env_runners"])
            if steps % args.window and steps < args.until:
                continue
            now = time.monotonic()
            row = window_row(window, steps, trial_wall + now - leg_start)
            rows.append(row)
            window = []
            write_rows(trial_dir / "progress.csv", rows)
            save(algo, checkpoint)
            if args.snapshot_every and steps % args.snapshot_every == 0:
                snapshot = Path(args.snapshot_dir) / task / trial_dir.name / f"{steps:011d}"
                save(algo, snapshot)
                score = evaluate_snapshot(snapshot, steps, args.episodes)
                snapshots.append(score)
                snapshots_file.write_text(json.dumps(snapshots, indent=1) + "\n")
                if score["total_return"]["mean"] > best:
                    best = score["total_return"]["mean"]
                    save(algo, trial_dir / "best")
            elif not args.snapshot_every and row[RETURN] != "" and row[RETURN] > best:
                best = row[RETURN]
                save(algo, trial_dir / "best")
            leg.update(end_steps=steps, wall_s=round(now - leg_start, 1))
            (trial_dir / "legs.json").write_text(json.dumps(legs, indent=1) + "\n")
            print(
                f"campaign: {steps:,} env steps, return {row[RETURN]!s:.6} "
                f"({steps - start_steps:,} this leg in {(now - leg_start) / 60:.1f} min)",
                flush=True,
            )
    finally:
        algo.stop()
        ray.shutdown()


def evaluate_snapshot(snapshot: Path, steps: int, episodes: int) -> dict:
    """The paper's evaluation of one snapshot (`rllib evaluate --seed 0`), without the
    per-episode returns."""
    from rllib_seac.analysis.evaluation import evaluate

    result = evaluate(snapshot, episodes=episodes, seed=0).to_dict()
    del result["episode_total_returns"], result["checkpoint"]
    return {"env_steps": steps, **result}


def window_row(results: list[dict], steps: int, wall: float) -> dict:
    """One record row: the window's mean return (over the iterations that had an
    episode end) and per agent, at its last env step."""
    returns = [r["episode_return_mean"] for r in results if "episode_return_mean" in r]
    row = {STEPS: steps, RETURN: round(float(np.mean(returns)), 4) if returns else "", WALL: 0}
    agents = sorted({a for r in results for a in r.get("agent_episode_returns_mean", {})})
    for agent in agents:
        per_agent = [r.get("agent_episode_returns_mean", {}) for r in results]
        values = [returns[agent] for returns in per_agent if agent in returns]
        row[AGENT_RETURN + agent] = round(float(np.mean(values)), 4)
    row[WALL] = round(wall, 1)
    return row


def save(algo, path: Path) -> None:
    """Replaces the checkpoint at `path` only once the new one is complete."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp.absolute()))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


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
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "rllib_seac"], capture_output=True)
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def report_task(task_dir: Path) -> str:
    """Markdown: per trial, env steps to each threshold and the return at each milestone;
    then `rllib plot` draws returns.png in the task directory."""
    lines = [
        "| trial | env steps | wall time | "
        + " | ".join(f"first window ≥ {t:g}" for t in THRESHOLDS)
        + " | "
        + " | ".join(f"return at {m / 1e6:g}M" for m in MILESTONES)
        + " |",
        "|---|---|---|" + "---|" * (len(THRESHOLDS) + len(MILESTONES)),
    ]
    per_variant: dict[str, list[list[float | None]]] = {}
    for trial_dir in sorted(p for p in task_dir.iterdir() if (p / "progress.csv").is_file()):
        rows = [r for r in read_rows(trial_dir / "progress.csv") if r[RETURN] != ""]
        steps = np.array([r[STEPS] for r in rows])
        returns = np.array([r[RETURN] for r in rows])
        figures = []
        for threshold in THRESHOLDS:
            reached = np.flatnonzero(returns >= threshold)
            figures.append(float(steps[reached[0]]) if len(reached) else None)
        for milestone in MILESTONES:
            at = np.flatnonzero(steps == milestone)
            figures.append(float(returns[at[0]]) if len(at) else None)
        per_variant.setdefault(trial_dir.name.split("-seed")[0], []).append(figures)
        head = [trial_dir.name, f"{int(steps[-1]):,}", f"{rows[-1][WALL] / 3600:.1f} h"]
        lines.append("| " + " | ".join(head + _cells(figures, missing="not yet")) + " |")
    for variant, trials in per_variant.items():
        if len(trials) > 1:
            means = [
                _mean_std([t[i] for t in trials], crossing=i < len(THRESHOLDS))
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


def _cells(figures: list[float | None], missing: str) -> list[str]:
    """Threshold crossings (env steps) then milestone returns, as table cells."""
    cells = []
    for i, value in enumerate(figures):
        crossing = i < len(THRESHOLDS)
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
