"""The README's examples on a tiny budget, each in its own process as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# Generous bound for a busy machine (Ray's start and two algorithms' builds).
RUN_TIMEOUT_S = 600
# What Ray and RLlib print at start-up that the examples keep quiet.
RAY_NOISE = (
    "Token authentication",
    "authentication token",
    "new API stack",
    "RLModuleConfig",
    "gputil",
    "Started a local Ray instance",
)


def run_example(tmp_path, script: str, *args) -> subprocess.CompletedProcess:
    # A HOME of its own, to see what a run leaves in the user's home.
    env = {**os.environ, "RAY_TMPDIR": "/tmp/rllib_seac_example_ray", "HOME": str(tmp_path)}
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ADDRESS"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=env,
    )


@pytest.mark.slow
def test_train_lbf_prints_progress_a_figure_and_a_verdict(tmp_path):
    out = tmp_path / "run"
    proc = run_example(tmp_path, "train_lbf.py", "--env-steps", 4000, "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert any(line.startswith("    4,000 env steps   SEAC return ") for line in lines), lines
    assert f"results: {out}/progress.csv, {out}/learning_curve.png" in proc.stdout
    # No threshold crossing in 4,000 steps: the verdict says so for both.
    assert lines[-1].startswith("Verdict: SEAC not yet (best ")
    assert ", IAC not yet (best " in lines[-1] and lines[-1].endswith(" in 4,000 env steps).")
    # header + 2 iterations x 2 algorithms
    assert len((out / "progress.csv").read_text().splitlines()) == 5
    with Image.open(out / "learning_curve.png") as image:
        assert image.size == (600, 400)
    assert (out / "seac" / "rllib_checkpoint.json").is_file()
    assert (out / "iac" / "rllib_checkpoint.json").is_file()
    # Each algorithm as a Tune trial: TensorBoard events, and `rllib plot` reads them.
    for name in ("SEAC", "IAC"):
        (events,) = (out / "trials" / name).glob("events.out.tfevents.*")
        assert b"ray/tune/env_runners/episode_return_mean" in events.read_bytes()
    from rllib_seac.analysis.plotting import group_trials, load_trials

    assert sorted(group_trials(load_trials([out]))) == ["IAC", "SEAC"]
    from rllib_seac.cli import main

    assert main(["plot", str(out), "--out", str(tmp_path / "plot.png")]) == 0
    output = proc.stdout + proc.stderr
    assert not [noise for noise in RAY_NOISE if noise in output], output[-3000:]
    # Nothing of Ray's in the home: no ~/ray_results/<date>, no ~/.ray/auth_token.
    assert not (tmp_path / "ray_results").exists() and not (tmp_path / ".ray").exists()


@pytest.mark.slow
def test_train_rware_prints_progress_and_writes_a_learning_curve(tmp_path):
    out = tmp_path / "run"
    proc = run_example(tmp_path, "train_rware.py", "--env-steps", 4000, "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "iter    2  env steps     4,000" in proc.stdout
    assert f"results: {out}/progress.csv" in proc.stdout
    assert len((out / "progress.csv").read_text().splitlines()) == 3  # header + 2 iterations
    with Image.open(out / "learning_curve.png") as image:
        assert image.size == (600, 400)
    assert (out / "checkpoint").is_dir()
    output = proc.stdout + proc.stderr
    assert not [noise for noise in RAY_NOISE if noise in output], output[-3000:]
    assert not (tmp_path / "ray_results").exists() and not (tmp_path / ".ray").exists()


def test_a_bad_setting_stops_the_example_before_ray_starts(tmp_path):
    proc = run_example(tmp_path, "train_rware.py", "--seed", -1, "--out", tmp_path / "run")
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "error: Bad SEAC config: seed must be an integer from 0 to 2**32-1 (or None), got -1."
    )
    assert not (tmp_path / ".ray").exists()


@pytest.mark.slow
def test_sweep_grids_the_setting_and_plots_one_curve_per_value(tmp_path):
    out = tmp_path / "results"
    proc = run_example(
        tmp_path,
        "sweep.py",
        *("--setting", "seac_lambda", "--values", 0.0, 1.0, "--seeds", 1),
        *("--env", "rware-tiny-2ag-v2", "--env-steps", 2000, "--out", out),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = out / "seac-lambda-sweep"
    trials = sorted(p.name for p in run_dir.glob("SEAC_*") if p.is_dir())
    assert len(trials) == 2, trials
    assert "seac_lambda=0.0" in trials[0] + trials[1] and "seac_lambda=1.0" in trials[0] + trials[1]
    for figure in ("lambda.png", "returns.png"):
        with Image.open(run_dir / figure) as image:
            assert image.size[0] > 0


def test_a_bad_sweep_value_stops_before_ray_starts(tmp_path):
    proc = run_example(tmp_path, "sweep.py", "--setting", "lr", "--values", 3e-4, -1)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "error: Bad SEAC config: lr must be a number > 0 (or a schedule of such), got -1.0."
    )
    assert not (tmp_path / ".ray").exists()
