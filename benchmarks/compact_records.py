"""Compact records of a Tune run, small enough to commit, that `rllib plot` reads.

    python benchmarks/compact_records.py results/lbf-seac-target/<run> \
        docs/results/lbf-8x8-2p-2f-seac-target --name-by seac_target
    rllib plot docs/results/lbf-8x8-2p-2f-seac-target --label-by seac_target \
        --out docs/results/lbf-8x8-2p-2f-seac-target/returns.png

Per trial, <out>/<value of --name-by>-seed<k>/ (without --name-by: the algorithm's
name, SEAC, IAC, SNAC, SEQL or IQL, from the trial's settings) gets the trial's params.json and a
progress.csv of its iterations: env steps, the mean episode return and each agent's
(Tune's result.json of a 1M-step LBF trial is ~7 MB; this is ~30 kB).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from rllib_seac.analysis.labels import variant_name

STEPS = "num_env_steps_sampled_lifetime"
RETURN = "env_runners/episode_return_mean"
AGENT_RETURNS = "agent_episode_returns_mean"


def compact_rows(result_json: Path) -> list[dict]:
    rows = []
    for line in result_json.read_text().splitlines():
        result = json.loads(line)
        runners = result["env_runners"]
        row = {STEPS: result[STEPS], RETURN: runners.get("episode_return_mean", "")}
        for agent, value in sorted(runners.get(AGENT_RETURNS, {}).items()):
            row[f"env_runners/{AGENT_RETURNS}/{agent}"] = value
        rows.append(row)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a Tune run's directory")
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--name-by",
        help="the setting that names each trial's directory (default: the algorithm's name)",
    )
    args = parser.parse_args(argv)
    for result_json in sorted(args.run_dir.glob("*/result.json")):
        params = json.loads((result_json.parent / "params.json").read_text())
        name = params[args.name_by] if args.name_by else variant_name(params)
        trial = args.out / f"{name}-seed{params.get('seed', 0)}"
        trial.mkdir(parents=True, exist_ok=True)
        (trial / "params.json").write_text(json.dumps(params, indent=1) + "\n")
        rows = compact_rows(result_json)
        with (trial / "progress.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[-1]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"{trial}: {len(rows)} iterations")


if __name__ == "__main__":
    main()
