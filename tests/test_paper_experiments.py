"""tuned_configs/paper/: one Tune experiment per Table 1 row, SEAC and IAC x 5 seeds."""

from pathlib import Path

import pytest
import yaml

from rllib_seac.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAPER = sorted((ROOT / "tuned_configs/paper").glob("*.yaml"))
GRID = {"seac_lambda": [1.0, 0.0], "seed": [0, 1, 2, 3, 4]}


def entry(path: Path) -> dict:
    (value,) = yaml.safe_load(path.read_text()).values()
    return value


def test_one_file_per_runnable_table_1_row():
    assert [p.stem for p in PAPER] == [
        "lbf-15x15-3p-4f",
        "lbf-8x8-2p-2f-coop",
        "predator-prey-sparse",
        "rware-small-4ag",
        "rware-tiny-4ag",
    ]


@pytest.mark.parametrize("path", PAPER, ids=[p.stem for p in PAPER])
def test_the_task_file_gridded_over_variant_and_seed_with_kept_snapshots(path, capsys):
    exp = entry(path)
    task = entry(ROOT / "tuned_configs" / path.name)  # the task's single-trial file
    assert exp["env"] == task["env"] and exp["stop"] == task["stop"]
    assert {k: v for k, v in exp["config"].items() if k not in GRID} == {
        k: v for k, v in task["config"].items() if k not in GRID
    }
    assert {k: exp["config"][k]["grid_search"] for k in GRID} == GRID
    # Every 1M env steps (500 iterations of 2,000), none dropped.
    assert exp["checkpoint_config"] == {"checkpoint_frequency": 500, "checkpoint_at_end": True}
    assert main(["train", "file", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"grid={GRID}" in out, out


@pytest.mark.slow
def test_a_paper_experiment_runs_one_iteration_of_one_trial(tmp_path, capsys):
    path = ROOT / "tuned_configs/paper/lbf-8x8-2p-2f-coop.yaml"
    args = ["train", "file", str(path), "--storage-path", str(tmp_path)]
    args += ["--config", '{"seed": 0, "seac_lambda": 1.0, "updates_per_iteration": 2}']
    args += ["--stop", '{"training_iteration": 1}']
    assert main(args) == 0
    results = list(tmp_path.glob("paper-lbf-8x8-2p-2f-coop/*/result.json"))
    assert len(results) == 1 and results[0].read_text().count("\n") == 1
    assert list(results[0].parent.glob("checkpoint_*"))  # checkpoint_at_end
