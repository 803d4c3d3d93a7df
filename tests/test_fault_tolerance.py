"""Long runs survive faults: a killed env runner, a killed driver (resume), and stop
clearly on NaN rewards before any weight moves."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import ray
import torch
from ray.tune.registry import register_env

from rllib_seac import SEACConfig
from rllib_seac.cli import main
from tests.envs_for_tests import NanRewardEnv
from tests.trial_results import trial_results

RWARE = "rware-tiny-2ag-v2"
UPDATES = 10  # per iteration
# Bound on a killed env runner's restart: Ray starts a new worker process, which
# imports torch and RLlib (seconds on an idle machine, far more on a loaded one).
RECOVERY_S = 300
# Seconds of its own time the killed-and-resumed run lasts: far longer than the kill
# takes to land after its second checkpoint and two state saves, even on a busy machine.
RUN_S = 30
NAN_MESSAGE = "SEAC stopped before updating the weights: "
NAN_CAUSE = "Non-finite inputs: rewards of agent_1."


def steps(result) -> int:
    return result["env_runners"]["num_env_steps_sampled_lifetime"]


@pytest.mark.slow
@pytest.mark.parametrize("overlap_sampling", [False, True], ids=["sync", "overlap"])
def test_training_survives_a_killed_env_runner(overlap_sampling):
    config = (
        SEACConfig()
        .environment(RWARE)
        .training(updates_per_iteration=UPDATES, overlap_sampling=overlap_sampling)
        .env_runners(num_env_runners=2, num_envs_per_env_runner=2)
    )
    algo = config.build_algo()
    runners = algo.env_runner_group
    both = UPDATES * 20  # 10 updates x 2 envs x 5 steps from each of the 2 runners
    try:
        counts = [steps(algo.train())]
        pids = runners.foreach_env_runner(lambda runner: os.getpid(), local_env_runner=False)
        # With overlap_sampling, a rollout request is in flight to it right now.
        os.kill(pids[1], signal.SIGKILL)
        # RLlib restarts it (restart_failed_env_runners) and takes it back after the
        # iteration it failed in; meanwhile the other runner's rollouts train on. How
        # many iterations that takes depends on the machine's load: train until a new
        # process answers and both runners sample a whole iteration again.
        deadline = time.monotonic() + RECOVERY_S
        while True:
            counts.append(steps(algo.train()))
            healthy = runners.num_healthy_remote_workers()
            new_pids = runners.foreach_env_runner(
                lambda runner: os.getpid(), local_env_runner=False
            )
            back = healthy == 2 and len(new_pids) == 2 and new_pids[1] != pids[1]
            if back and counts[-1] - counts[-2] == both:
                break
            assert time.monotonic() < deadline, (
                f"runner not back and sampling within {RECOVERY_S} s: healthy={healthy}, "
                f"pids {pids} -> {new_pids}, env steps per iteration {counts}"
            )
    finally:
        algo.stop()
    assert new_pids[0] == pids[0]
    # One runner samples in every iteration, also while the other restarts.
    assert all(gain >= both // 2 for gain in np.diff(counts)), counts


def weights(algo) -> dict:
    return {
        (mid, k): v.clone()
        for mid in ("agent_0", "agent_1")
        for k, v in algo.get_module(mid).state_dict().items()
    }


@pytest.mark.parametrize(
    "num_learners, env_config",
    # With 2 learners each holds 2 of the 4 envs; only env 0 (learner 0's) gives NaN,
    # so learner 1 must stop too instead of waiting for learner 0's gradients.
    [(0, {}), (2, {"nan_seeds": [0]})],
    ids=["one-learner", "two-learners-one-nan-share"],
)
def test_nan_reward_stops_before_the_weights_move(num_learners, env_config):
    config = (
        SEACConfig()
        .environment(NanRewardEnv, env_config=env_config)
        .training(updates_per_iteration=UPDATES)
        .learners(num_learners=num_learners, num_cpus_per_learner=0.5)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        before = weights(algo)
        with pytest.raises(FloatingPointError) as error:
            algo.train()  # the first rollout holds step 3: no update happens
        after = weights(algo)
    finally:
        algo.stop()
    message = str(error.value)
    assert message.startswith(NAN_MESSAGE) and message.endswith(NAN_CAUSE)
    assert "value_loss of agent_1 = nan" in message
    assert "Traceback" not in message
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_nan_reward_is_one_line_in_the_cli_summary(tmp_path, capsys):
    register_env("nan-reward", NanRewardEnv)
    path = tmp_path / "nan.yaml"
    path.write_text(
        "nan:\n  run: SEAC\n  env: nan-reward\n  stop: {training_iteration: 1}\n"
        "  config: {updates_per_iteration: 2}\n"
    )
    assert main(["train", "file", str(path), "--storage-path", str(tmp_path / "out")]) == 1
    # The CLI's summary: one line per trial, after Tune's own report.
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ": ERROR " in ln]
    assert f"ERROR FloatingPointError: {NAN_MESSAGE}" in line and NAN_CAUSE in line


def state_written(run_dir) -> float:
    """When Tune last saved the run's experiment state (0 before the first save)."""
    return max((f.stat().st_mtime_ns for f in run_dir.glob("experiment_state-*.json")), default=0)


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    # The run lasts RUN_S seconds of the trial's own time, not a number of iterations:
    # a fast machine could finish any fixed count between the second checkpoint and
    # the kill.
    per_iteration = 20 * 20  # 20 updates of 4 envs x 5 steps
    path = tmp_path / "exp.yaml"
    path.write_text(
        f"x:\n  run: SEAC\n  env: {RWARE}\n  stop: {{time_total_s: {RUN_S}}}\n"
        "  config: {updates_per_iteration: 20, seed: 0}\n"
    )
    out, run_dir = tmp_path / "out", tmp_path / "out" / "x"
    args = ["train", "file", str(path), "--storage-path", str(out), "--checkpoint-freq", "2"]
    # The driver runs in its own process (the test's Ray session is its cluster), so
    # killing it is what a crash or a lost login does to a run. Tune records which
    # checkpoints exist in its experiment state at most every 10 s by default; a
    # short run needs it sooner to have one to resume from.
    env = {
        **os.environ,
        "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
        "TUNE_GLOBAL_CHECKPOINT_S": "0.5",
    }
    with open(tmp_path / "driver.log", "w") as log:
        driver = subprocess.Popen(
            [sys.executable, "-m", "rllib_seac.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive():
        assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]

    try:
        deadline = time.monotonic() + RECOVERY_S
        while len(list(run_dir.glob("*/checkpoint_*/rllib_checkpoint.json"))) < 2:
            alive()
            assert time.monotonic() < deadline, f"no checkpoint within {RECOVERY_S} s"
            time.sleep(0.1)
        # Tune records the checkpoint in its experiment state (what --resume reads)
        # on its next periodic save: wait for two saves after it, however long
        # they take on a busy machine.
        saves, last = 0, state_written(run_dir)
        while saves < 2:
            alive()
            assert time.monotonic() < deadline, f"experiment state not saved in {RECOVERY_S} s"
            time.sleep(0.1)
            if (written := state_written(run_dir)) != last:
                saves, last = saves + 1, written
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    killed = driver.returncode == -signal.SIGKILL
    assert killed, "the run ended before it was killed: make it longer"

    assert main([*args, "--resume"]) == 0

    results = trial_results(run_dir)
    final = max(results, key=lambda r: r["training_iteration"])
    assert final["time_total_s"] >= RUN_S
    # The resumed trial started after a checkpoint, not from zero...
    restarts = [r["training_iteration"] for r in results if r["iterations_since_restore"] == 1]
    assert max(restarts) > 1, restarts
    # ...and every iteration, before and after, counts env steps on from the last.
    for r in results:
        assert r["num_env_steps_sampled_lifetime"] == r["training_iteration"] * per_iteration
