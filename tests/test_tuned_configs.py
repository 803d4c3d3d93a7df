"""Every file in tuned_configs/: the paper's settings, and one real training iteration."""

import json
from pathlib import Path

import pytest
import yaml

from rllib_seac import env_names
from rllib_seac.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "tuned_configs"
# SEAC's: one task each; the *-sweep.yaml files run a grid of trials (checked below).
# SEQL's and IQL's (seql-*, iql-*) are checked in test_seql.py.
Q_LEARNING = ("seql-", "iql-")
TUNED = sorted(
    p
    for p in CONFIGS.glob("*.yaml")
    if not p.stem.endswith("-sweep") and not p.stem.startswith(Q_LEARNING)
)
SWEEPS = sorted(CONFIGS.glob("*-sweep.yaml"))
# Table 2 of the paper, as tuned_configs/rware.yaml writes it.
TABLE_2 = next(iter(yaml.safe_load((TUNED[0].parent / "rware.yaml").read_text()).values()))
TASKS = {
    "rware-tiny-2ag-v2",
    "rware-tiny-4ag-v2",
    "rware-small-4ag-v2",
    "rware-tiny-2ag-hard-v2",
    "Foraging-10x10-3p-3f-v3",
    "Foraging-12x12-2p-1f-v3",
    "Foraging-15x15-3p-4f-v3",
    "Foraging-8x8-2p-2f-coop-v3",
    "predator-prey-sparse",
}


def entry(path: Path) -> dict:
    (value,) = yaml.safe_load(path.read_text()).values()
    return value


def test_one_file_per_paper_task_with_table_2_settings():
    assert {entry(path)["env"] for path in TUNED} == TASKS
    for path in TUNED:
        exp = entry(path)
        assert exp["env"] in env_names(), path.name
        config = {k: v for k, v in exp["config"].items() if k != "env_config"}
        assert config == TABLE_2["config"], path.name
        assert exp["stop"]["num_env_steps_sampled_lifetime"] >= 40_000_000, path.name
        if exp["env"].startswith("Foraging"):
            assert exp["config"]["env_config"] == {"max_episode_steps": 25}, path.name
        assert path.read_text().startswith("# SEAC on "), path.name


@pytest.mark.parametrize("path", TUNED, ids=[p.stem for p in TUNED])
def test_one_training_iteration(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["train", "file", str(path), "--stop", '{"training_iteration": 1}']
    args += ["--config", '{"updates_per_iteration": 2}', "--storage-path", str(tmp_path)]
    assert main(args) == 0
    (result_file,) = tmp_path.glob("*/*/result.json")
    result = json.loads(result_file.read_text().splitlines()[-1])
    assert result["training_iteration"] == 1
    # 2 updates x 4 envs x 5 steps.
    assert result["num_env_steps_sampled_lifetime"] == 40


def test_lambda_sweep_grids_lambda_and_seed_over_table_2(capsys):
    (path,) = [p for p in SWEEPS if p.stem.endswith("lambda-sweep")]
    assert main(["train", "file", str(path), "--dry-run"]) == 0
    exp = entry(path)
    assert exp["env"] == "Foraging-8x8-2p-2f-v3"
    assert exp["config"]["seac_lambda"] == {"grid_search": [0.0, 0.3, 0.5, 0.9, 1.0]}
    assert exp["config"]["env_config"] == {"max_episode_steps": 25}
    plain = {k: v for k, v in exp["config"].items() if k != "env_config"}
    assert plain == {
        **TABLE_2["config"],
        "seac_lambda": plain["seac_lambda"],
        "seed": plain["seed"],
    }
    assert "grid={'seac_lambda': [0.0, 0.3, 0.5, 0.9, 1.0], 'seed': [0, 1, 2]}" in (
        capsys.readouterr().out
    )
