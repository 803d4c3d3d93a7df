"""The paper's evaluation protocol over a run's kept snapshots (App. B, Table 1).

Every kept snapshot of every trial is evaluated with full episodes (`evaluation.py`:
stochastic policies for SEAC, IAC, SNAC, SE-PPO and IPPO, greedy for SEQL and IQL).
Per trial (one seed) the best snapshot counts, as Table 1 takes "the best saved
models per seed"; then mean ± std over the seeds of each algorithm. Beside it: the
mean of each seed's last three snapshots, which carries less selection bias.

A trial is a Tune trial directory (its `checkpoint_*` snapshots and `params.json`) or
a record of one (`benchmarks/campaign.py record`: `snapshots.json`, the evaluations of
snapshots that no longer exist, and `params.json`). A Tune trial's evaluations are kept
beside its snapshots in `snapshot_evaluations.json`, so a second call evaluates only
new snapshots; each snapshot's env steps are read from the snapshot itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rllib_seac._rllib_internals import checkpoint_env_steps
from rllib_seac.analysis.labels import trial_algorithm
from rllib_seac.analysis.plotting import flatten

EVALUATIONS_FILE = "snapshot_evaluations.json"
CAMPAIGN_SNAPSHOTS_FILE = "snapshots.json"
LAST_SNAPSHOTS = 3


@dataclass
class TrialSnapshots:
    trial: str
    algorithm: str
    seed: int | None
    # Per snapshot, in training order: its name, env steps (None where not known),
    # the mean and std of the total return over its episodes, and their number.
    evaluations: list[dict] = field(default_factory=list)

    @property
    def best(self) -> float:
        return max(e["mean"] for e in self.evaluations)

    @property
    def last(self) -> float:
        return float(np.mean([e["mean"] for e in self.evaluations[-LAST_SNAPSHOTS:]]))


def find_trials(run_dir) -> list[Path]:
    """The trials under `run_dir` (or `run_dir` itself): directories with
    checkpoint_* snapshots or a campaign's snapshots.json."""
    run_dir = Path(run_dir)
    candidates = [run_dir, *sorted(p for p in run_dir.rglob("*") if p.is_dir())]
    return [
        d
        for d in candidates
        if (d / CAMPAIGN_SNAPSHOTS_FILE).is_file() or any(d.glob("checkpoint_*"))
    ]


def evaluate_trial(
    trial_dir, episodes: int = 100, seed: int = 0, trust: bool = False, imports=()
) -> TrialSnapshots:
    """Every snapshot of one trial, evaluated (or read where evaluated before with the
    same number of episodes and seed)."""
    trial_dir = Path(trial_dir)
    params = _params(trial_dir)
    algorithm = trial_algorithm(flatten(params), trial_dir.name)
    record = TrialSnapshots(trial_dir.name, algorithm, params.get("seed"))
    campaign = trial_dir / CAMPAIGN_SNAPSHOTS_FILE
    if campaign.is_file():
        snapshots = json.loads(campaign.read_text())
        # (the record's own name for what ran: its params hold the variant's settings)
        record.algorithm = snapshots[0].get("algorithm", algorithm) if snapshots else algorithm
        for snapshot in snapshots:
            record.evaluations.append(
                {
                    "snapshot": f"{snapshot['env_steps']} env steps",
                    "env_steps": snapshot["env_steps"],
                    "mean": snapshot["total_return"]["mean"],
                    "std": snapshot["total_return"]["std"],
                    "episodes": snapshot["episodes"],
                }
            )
        return record
    from rllib_seac.analysis.evaluation import evaluate

    cache_file = trial_dir / EVALUATIONS_FILE
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    for snapshot in sorted(trial_dir.glob("checkpoint_*")):
        known = cache.get(snapshot.name)
        if not known or known["episodes"] != episodes or known["seed"] != seed:
            result = evaluate(snapshot, episodes, seed, trust=trust, imports=imports)
            returns = result.total_returns
            known = {
                "snapshot": snapshot.name,
                "env_steps": checkpoint_env_steps(snapshot),
                "mean": float(np.mean(returns)),
                "std": float(np.std(returns)),
                "episodes": episodes,
                "seed": seed,
            }
            cache[snapshot.name] = known
            cache_file.write_text(json.dumps(cache, indent=1) + "\n")
        record.evaluations.append(known)
    return record


def table(trials: list[TrialSnapshots]) -> str:
    """Markdown: per algorithm, the seeds, the best snapshot per seed (mean ± std over
    seeds: Table 1's figure) and the mean of the last three snapshots per seed."""
    by_algorithm: dict[str, list[TrialSnapshots]] = {}
    for trial in trials:
        if trial.evaluations:
            by_algorithm.setdefault(trial.algorithm, []).append(trial)
    lines = [
        "| algorithm | seeds | snapshots per seed | best snapshot per seed "
        f"(mean ± std over seeds) | mean of the last {LAST_SNAPSHOTS} snapshots per seed |",
        "|---|---|---|---|---|",
    ]
    for algorithm, group in sorted(by_algorithm.items()):
        best = [t.best for t in group]
        last = [t.last for t in group]
        counts = sorted({len(t.evaluations) for t in group})
        lines.append(
            f"| {algorithm} | {len(group)} | {'-'.join(map(str, counts))} | "
            f"{np.mean(best):.2f} ± {np.std(best):.2f} | {np.mean(last):.2f} ± {np.std(last):.2f} |"
        )
    return "\n".join(lines)


def _params(trial_dir: Path) -> dict:
    path = trial_dir / "params.json"
    return json.loads(path.read_text()) if path.is_file() else {}
