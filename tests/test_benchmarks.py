"""The throughput benchmarks keep their interface: each prints one JSON object of figures.

Tiny budgets: these check that the scripts run and report consistent figures, not the
figures themselves (those are in the README, with the commands that made them).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_json(tmp_path, script: str, *args: str) -> dict:
    # HOME: RLlib logs a built algorithm under ~/ray_results.
    env = {**os.environ, "HOME": str(tmp_path), "RAY_TMPDIR": "/tmp/rllib_seac_bench_ray"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_throughput_reports_seac_iac_and_both_raw_rware_speeds(tmp_path):
    figures = run_json(tmp_path, "throughput.py", "--seconds", "1", "--raw-seconds", "0.5")
    seac, iac = figures["seac_env_steps_per_s"], figures["iac_env_steps_per_s"]
    assert seac > 0 and iac > 0
    assert figures["seac_over_iac_time"] == pytest.approx(iac / seac, abs=1e-3)
    assert figures["raw_env_steps_per_s_one_process"] > 0
    assert figures["raw_rware_own_step_steps_per_s_one_process"] > 0
    assert figures["command"].startswith("python ")


def test_learner_scaling_reports_each_agent_count(tmp_path):
    figures = run_json(tmp_path, "learner_scaling.py", "--agents", "2", "4", "--repeats", "2")
    assert [row["agents"] for row in figures["rows"]] == [2, 4]
    for row in figures["rows"]:
        assert row["seac_step_ms"] > 0 and row["iac_step_ms"] > 0


@pytest.mark.slow
def test_time_split_times_every_part_once(tmp_path):
    figures = run_json(tmp_path, "time_split.py", "--iterations", "1")
    split = figures["ms_per_update"]
    # Every wrapped part ran; none is counted inside another (the rest stays >= 0).
    assert all(value > 0 for key, value in split.items() if key != "other")
    assert split["other"] >= 0
    # The parts of the learner's numpy step (the default learner on the CPU).
    parts = figures["learner_update_parts_ms"]
    expected = {"batch", "bootstrap_values", "loss_terms", "forward_and_backward", "clip", "adam"}
    assert set(parts) == expected
    assert all(value > 0 for value in parts.values())


def test_learner_callgrind_compares_two_trees(tmp_path):
    # This tree as its own base: the script's two-tree path, wall time only (the
    # callgrind count runs Python under valgrind: minutes).
    figures = run_json(
        tmp_path,
        "learner_callgrind.py",
        "--base",
        str(ROOT),
        "--agents",
        "2",
        "--repeats",
        "3",
        "--no-callgrind",
    )
    assert [(r["tree"], r["agents"]) for r in figures["rows"]] == [("base", 2), ("this", 2)]
    assert all(r["wall_ms"] > 0 and "instructions" not in r for r in figures["rows"])


@pytest.mark.slow
def test_process_cpu_reports_both_processes_and_the_yardstick(tmp_path):
    figures = run_json(tmp_path, "process_cpu.py", "--iterations", "1", "--raw-seconds", "0.5")
    driver, worker = figures["driver_cpu_ms_per_update"], figures["worker_cpu_ms_per_update"]
    assert driver > 0 and worker > 0
    busier = figures["env_steps_per_cpu_s_of_the_busier"]
    assert busier == pytest.approx(20 / (max(driver, worker) / 1e3), rel=0.01)
    raw = figures["raw_rware_own_step_steps_per_cpu_s"]
    assert figures["busier_over_raw_rware"] == pytest.approx(busier / raw, abs=1e-3)


def test_seql_callgrind_compares_two_trees(tmp_path):
    # This tree as its own base, CPU time only (the callgrind count: minutes).
    figures = run_json(
        tmp_path,
        "seql_callgrind.py",
        "--base",
        str(ROOT),
        "--algos",
        "SEQL",
        "--cpu-steps",
        "50",
        "--no-callgrind",
    )
    assert [(r["tree"], r["algo"]) for r in figures["rows"]] == [("base", "SEQL"), ("this", "SEQL")]
    for row in figures["rows"]:
        assert row["env_steps_per_cpu_s"] > 0 and row["env_steps_per_wall_s"] > 0
        assert "instructions_per_env_step" not in row


def test_snapshot_spread_evaluates_the_checkpoint_then_each_next_policy(tmp_path):
    from rllib_seac import SEACConfig
    from rllib_seac.analysis.evaluation import evaluate

    config = (
        SEACConfig()
        .environment("Foraging-8x8-2p-2f-v3", env_config={"max_episode_steps": 25})
        .training(updates_per_iteration=5)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        algo.train()
        checkpoint = algo.save_to_path(str(tmp_path / "checkpoint"))
    finally:
        algo.stop()
    figures = run_json(
        tmp_path, "snapshot_spread.py", checkpoint, "--iterations", "2", "--episodes", "3"
    )
    rows = figures["rows"]
    assert [r["iterations_after_checkpoint"] for r in rows] == [0, 1, 2]
    assert [r["env_steps"] for r in rows] == [100, 200, 300]
    # Row 0 is the checkpoint itself, evaluated as `rllib evaluate --seed 0` does.
    first = evaluate(checkpoint, episodes=3, seed=0).total_returns
    assert rows[0]["evaluation_mean"] == pytest.approx(np.mean(first))
    assert rows[0]["evaluation_std"] == pytest.approx(np.std(first))
    assert rows[0]["training_return"] is None
    assert all(r["training_return"] is not None for r in rows[1:])


@pytest.mark.slow
def test_seql_checkpoint_size_reports_bytes_per_stored_step(tmp_path):
    figures = run_json(
        tmp_path,
        "seql_checkpoint_size.py",
        "--envs",
        "Foraging-8x8-2p-2f-v3",
        "--steps",
        "1000",
        "2000",
    )
    (row,) = figures["rows"]
    assert [c["env_steps_in_buffers"] for c in row["checkpoints"]] == [1000, 2000]
    # Compact: more than the observations alone (4 bytes per obs entry and agent),
    # less than the buffers in memory (which also hold every next observation).
    obs_bytes = 4 * row["obs_size"] * row["agents"]
    assert obs_bytes < row["bytes_per_env_step"] < row["memory_bytes_per_env_step"]
    assert row["bytes_per_agent_transition"] == pytest.approx(
        row["bytes_per_env_step"] / 2, abs=0.1
    )
