"""The throughput benchmarks keep their interface: each prints one JSON object of figures.

Tiny budgets: these check that the scripts run and report consistent figures, not the
figures themselves (those are in the README, with the commands that made them).
"""

import csv
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.slow
def test_throughput_compares_the_fast_env_step_with_the_envs_own(tmp_path):
    args = ("--fast-vs-own-step", "--env", "Foraging-8x8-2p-2f-v3", "--seconds", "1")
    figures = run_json(tmp_path, "throughput.py", *args)
    fast, own = figures["seac_env_steps_per_s_fast_step"], figures["seac_env_steps_per_s_own_step"]
    assert fast > 0 and own > 0
    assert figures["fast_over_own_step"] == pytest.approx(fast / own, abs=1e-3)


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


def test_env_speed_reports_each_env_beside_its_raw_env(tmp_path):
    figures = run_json(tmp_path, "env_speed.py", "--seconds", "0.2")
    assert {"rware-tiny-2ag-v2", "Foraging-8x8-2p-2f-coop-v3"} <= {
        e["env"] for e in figures["envs"]
    }
    for env in figures["envs"]:
        assert env["raw_steps_per_s"] > 0 and env["wrapped_steps_per_s"] > 0


def test_learning_redraws_its_figure_and_summary_from_a_record(tmp_path):
    record = tmp_path / "record" / "record.json"
    record.parent.mkdir()
    record.write_text((ROOT / "docs/results/seql-lbf-8x8-2p-2f-600k/record.json").read_text())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    command = [sys.executable, str(ROOT / "benchmarks/learning.py"), "--from-record", str(record)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (record.parent / "returns.png").stat().st_size > 0
    assert "SEQL" in (record.parent / "summary.md").read_text()


@pytest.mark.slow
def test_campaign_records_a_tune_leg_restores_it_and_records_the_next(tmp_path):
    from rllib_seac.cli import main

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    campaign = [sys.executable, str(ROOT / "benchmarks/campaign.py")]
    records = tmp_path / "records"
    name = "paper-lbf-8x8-2p-2f-coop"

    def leg(storage, *extra: str) -> None:
        args = ["train", "file", str(ROOT / f"tuned_configs/paper/{name[6:]}.yaml")]
        # 40 env steps per iteration (2 updates of 4 envs x 5 steps), a snapshot each.
        args += ["--config", '{"seed": 0, "seac_lambda": 0.0, "updates_per_iteration": 2}']
        args += ["--checkpoint-freq", "1", "--storage-path", str(storage)]
        assert main([*args, *extra]) == 0

    def stop(iterations: int) -> list[str]:
        return ["--stop", f'{{"training_iteration": {iterations}}}']

    # record and restore in this process (each a subprocess would start torch and Ray
    # again); report below runs the script's command line.
    script = campaign_script()

    def record(storage) -> Path:
        script.record_run(storage / name, records, episodes=2, window=80)
        return records / name / "IAC-seed0"

    leg(tmp_path / "first", *stop(2))
    trial = record(tmp_path / "first")
    snapshots = json.loads((trial / "snapshots.json").read_text())
    assert [s["env_steps"] for s in snapshots] == [40, 80]
    assert all(s["episodes"] == 2 and s["algorithm"] == "IAC" for s in snapshots)
    (first_leg,) = json.loads((trial / "legs.json").read_text())
    assert (first_leg["start_steps"], first_leg["end_steps"]) == (0, 80)
    assert (trial / "checkpoint/rllib_checkpoint.json").is_file()
    assert (trial / "best/rllib_checkpoint.json").is_file()

    # A later session: only the record is left; the run continues from its checkpoint.
    shutil.rmtree(tmp_path / "first")
    script.restore_run(records / name, tmp_path / "next")
    leg(tmp_path / "next", *stop(4), "--resume")
    (result_file,) = (tmp_path / "next" / name).glob("*/result.json")
    resumed = [json.loads(line) for line in result_file.read_text().splitlines()]
    # (Tune carries the earlier leg's rows over into the restored trial's result.json.)
    resumed = resumed[-2:]
    assert [r["iterations_since_restore"] for r in resumed] == [1, 2]
    assert [r["training_iteration"] for r in resumed] == [3, 4]
    assert [r["env_runners"]["num_env_steps_sampled_lifetime"] for r in resumed] == [120, 160]

    trial = record(tmp_path / "next")
    legs = json.loads((trial / "legs.json").read_text())
    assert [(g["start_steps"], g["end_steps"]) for g in legs] == [(0, 80), (80, 160)]
    snapshots = json.loads((trial / "snapshots.json").read_text())
    assert [s["env_steps"] for s in snapshots] == [40, 80, 120, 160]
    with (trial / "progress.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["num_env_steps_sampled_lifetime"]) for r in rows] == [80, 160]
    # Each agent's policy entropy, as its learner reported it (at most ln 6: LBF's 6 actions).
    entropies = [float(r[f"learners/agent_{i}/entropy"]) for r in rows for i in range(2)]
    assert all(0 < e <= math.log(6) for e in entropies), entropies

    # A later Tune run in which the finished trial does not run adds no leg to it.
    shutil.rmtree(tmp_path / "next")
    script.restore_run(records / name, tmp_path / "third")
    # The stop the finished trial has met: it stays done, with no extra iteration.
    leg(tmp_path / "third", *stop(4), "--resume")
    trial = record(tmp_path / "third")
    assert len(json.loads((trial / "legs.json").read_text())) == 2

    report = subprocess.run(
        [*campaign, "report", str(records / name)], capture_output=True, text=True, env=env
    )
    assert report.returncode == 0, report.stderr[-2000:]
    assert "| IAC-seed0 | 160 |" in report.stdout
    assert "| IAC | 1 | 4 | " in report.stdout  # the protocol's row over the four snapshots
    # No thresholds: a task without RWARE's delivery marks gets no crossing columns.
    bare = subprocess.run(
        [*campaign, "report", str(records / name), "--thresholds"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bare.returncode == 0, bare.stderr[-2000:]
    assert "first window" in report.stdout and "first window" not in bare.stdout
    assert "| IAC-seed0 | 160 |" in bare.stdout


def campaign_script():
    spec = importlib.util.spec_from_file_location("campaign", ROOT / "benchmarks/campaign.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_campaign_window_sums_up_each_modules_learner_stats():
    def result(steps, entropy, weight_max, others_loss=None):
        stats = {"entropy": entropy, "policy_loss": 0.1, "is_weight_max": weight_max}
        if others_loss is not None:
            stats["others_policy_loss"] = others_loss
        return {
            "env_runners": {"num_env_steps_sampled_lifetime": steps, "episode_return_mean": 1.0},
            "time_total_s": steps / 10,
            # A learner entry without an entropy (RLlib's __all_modules__) is no module.
            "learners": {"agent_0": stats, "__all_modules__": {"num_env_steps_trained": 9}},
        }

    results = [result(100, 1.5, 3.0, -0.2), result(200, 1.0, 40.0, 0.4), result(300, 0.5, 7.0)]
    (row,) = campaign_script().window_rows(results, window=300)
    assert row["num_env_steps_sampled_lifetime"] == 300
    assert row["learners/agent_0/entropy"] == 1.0  # the window's mean
    assert row["learners/agent_0/is_weight_max"] == 40.0  # its largest
    assert row["learners/agent_0/others_policy_loss"] == 0.1  # over the results reporting it
    assert "learners/agent_0/is_weight_mean" not in row  # never reported
    assert not any(key.startswith("learners/__all_modules__") for key in row)


@pytest.mark.slow
def test_seql_throughput_reports_seql_and_iql(tmp_path):
    figures = run_json(
        tmp_path,
        "seql_throughput.py",
        "--envs",
        "Foraging-8x8-2p-2f-v3",
        "--seconds",
        "1",
        "--no-rllib-loop",
    )
    assert figures["env"] == "Foraging-8x8-2p-2f-v3"
    for name in ("seac", "seql", "iql"):
        assert figures[f"{name}_env_steps_per_s"] > 0, name
