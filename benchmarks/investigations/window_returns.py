"""Mean training return per 100k-env-step window of each trial of a Tune run (the
form in which the authors' learning curves are compared in docs/learning.md).

    rllib train file benchmarks/investigations/anchors/lbf-8x8-2p-2f.yaml \
        --storage-path results/anchors
    python benchmarks/investigations/window_returns.py results/anchors/anchor-lbf-8x8-2p-2f

A window's figure is the mean of the iterations' `episode_return_mean` (the mean
over the episodes that ended in that iteration) whose last env step falls in it.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def windows(trial_dir: Path, width: int) -> dict[int, float]:
    per_window = defaultdict(list)
    for line in (trial_dir / "result.json").read_text().splitlines():
        runners = json.loads(line)["env_runners"]
        if "episode_return_mean" in runners:
            window = (int(runners["num_env_steps_sampled_lifetime"]) - 1) // width
            per_window[window].append(runners["episode_return_mean"])
    return {w: sum(v) / len(v) for w, v in sorted(per_window.items())}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--width", type=int, default=100_000, help="env steps per window")
    args = parser.parse_args(argv)
    for trial in sorted(p.parent for p in args.run_dir.glob("*/result.json")):
        params = json.loads((trial / "params.json").read_text())
        # The trial's scalar settings (lambda, target, seed, ...), not env or dicts.
        given = {k: v for k, v in params.items() if k != "env" and not isinstance(v, dict)}
        label = " ".join(f"{k}={v}" for k, v in {"seac_lambda": 1.0, **given}.items())
        figures = windows(trial, args.width)
        k = args.width // 1000
        print(label, " ".join(f"{w * k}-{(w + 1) * k}k: {v:.2f}" for w, v in figures.items()))


if __name__ == "__main__":
    main()
