"""What a Tune run's trials have written to their result.json files so far."""

import json
from pathlib import Path


def trial_results(run_dir: Path) -> list[dict]:
    """Every trial's results, trial by trial: complete lines only (Tune may be
    writing the last one while a test reads)."""
    return [
        json.loads(line)
        for f in sorted(run_dir.glob("*/result.json"))
        for line in f.read_text().split("\n")[:-1]
    ]
