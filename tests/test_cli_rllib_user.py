"""`rllib train` and `rllib plot` as an RLlib user runs them: a sweep's progress table,
SEAC and IPPO in one figure, RLlib's example-script flags, Ctrl-C and --resume."""

import contextlib
import io
import json
import os
import shlex
import signal
import threading
import time
from pathlib import Path

import pytest

from rllib_seac.cli import main
from tests.trial_results import trial_results

LBF = "Foraging-8x8-2p-2f-v3"
RWARE = "rware-tiny-2ag-v2"
# Seconds a background check waits for a run's first result (a trial on a busy
# machine can take minutes to start).
FIRST_RESULT_S = 600
# Seconds of its own time a run that only Ctrl-C should end is given at most.
FIRST_RUN_BOUND_S = 300
# A λ sweep of SEAC (evaluated after every iteration) and RLlib's PPO (IPPO) on LBF
# with 10-step episodes, so that episodes end within each short run.
SWEEP_AND_IPPO = f"""\
sweep:
    run: SEAC
    env: {LBF}
    stop: {{training_iteration: 2}}
    config:
        updates_per_iteration: 2
        env_config: {{max_episode_steps: 10}}
        seac_lambda: {{grid_search: [0.0, 1.0]}}
        evaluation_interval: 1
        evaluation_duration: 2
ippo:
    run: PPO
    env: {LBF}
    stop: {{training_iteration: 2}}
    config:
        num_env_runners: 0
        train_batch_size: 100
        minibatch_size: 50
        num_epochs: 1
        env_config: {{max_episode_steps: 10}}
"""


def run(argv: list[str]) -> tuple[int, str]:
    """`rllib ARGV`: its exit code and what it printed on stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def sweep_and_ippo(tmp_path_factory):
    """One `rllib train -f` of the file above: (storage directory, stdout)."""
    tmp = tmp_path_factory.mktemp("sweep")
    path = tmp / "sweep.yaml"
    path.write_text(SWEEP_AND_IPPO)
    code, out = run(["train", "-f", str(path), "--storage-path", str(tmp / "results")])
    assert code == 0, out
    return tmp / "results", out


@pytest.mark.slow
def test_sweep_progress_names_each_trial_and_its_lambda(sweep_and_ippo):
    _, out = sweep_and_ippo
    sweep = out.split("sweep: results in")[0]
    # The env's episode limit, named above the first table.
    assert f"{LBF}: episodes end after 10 steps (env_config max_episode_steps)" in sweep
    tables = [t for t in sweep.split("\ntrial ") if "status" in t]
    header, *rows = tables[-1].strip().splitlines()
    assert header.split() == [
        *("seac_lambda", "status", "iter", "env", "steps", "steps/s", "return", "eval", "time")
    ]
    assert [row.split()[:4] for row in rows] == [
        ["SEAC_00000", "0", "TERMINATED", "2"],
        ["SEAC_00001", "1", "TERMINATED", "2"],
    ]
    # The evaluation's mean return, as the result reports it.
    storage, _ = sweep_and_ippo
    for row in rows:
        trial = next((storage / "sweep").glob(f"SEAC_*_{row.split()[0][-5:]}_*"))
        last = json.loads((trial / "result.json").read_text().splitlines()[-1])
        evaluated = last["evaluation"]["env_runners"]
        assert evaluated["num_episodes"] == 2 and evaluated["episode_len_mean"] == 10
        assert row.split()[-2] == f"{evaluated['episode_return_mean']:.2f}"
        # In TensorBoard too (Tune's TBX logger, under ray/tune/).
        (events,) = trial.glob("events.out.tfevents.*")
        assert b"ray/tune/evaluation/env_runners/episode_return_mean" in events.read_bytes()
    # Tune's line per result ("Trial ... reported ...") only with -v.
    assert "reported" not in out


@pytest.mark.slow
def test_plot_of_seac_iac_and_ippo_side_by_side(sweep_and_ippo, tmp_path):
    from rllib_seac.analysis.plotting import group_trials, load_trials

    storage, _ = sweep_and_ippo
    trials = load_trials([storage])
    assert sorted(group_trials(trials)) == ["IAC", "IPPO", "SEAC"]
    out = tmp_path / "returns.png"
    code, printed = run(["plot", str(storage), "--out", str(out)])
    assert code == 0 and printed.strip() == f"wrote {out}"
    assert out.stat().st_size > 0


def test_algorithm_labels_of_rllib_and_package_trials():
    from rllib_seac.analysis.labels import trial_algorithm

    per_agent = {"policies/agent_0/0": None, "policies/agent_1/0": None}
    assert trial_algorithm(per_agent, "PPO_rware-tiny-2ag-v2_1a2b3_00000_0") == "IPPO"
    shared = {"multiagent/policies": ["shared"]}
    assert trial_algorithm(shared, "PPO_x_1a2b3_00000") == "PPO (shared policy)"
    assert trial_algorithm(per_agent, "APPO_x_1a2b3_00000") == "APPO"
    assert trial_algorithm({"seac_lambda": 0.0}, "SEAC_x_1a2b3_00000") == "IAC"
    assert trial_algorithm({}, "SEAC_x_1a2b3_00000") == "SEAC"
    assert trial_algorithm({"shared_policy": True}, "SEAC_x") == "SNAC"
    assert trial_algorithm({}, "SEQL_x_1a2b3_00000") == "SEQL"
    assert trial_algorithm({"share_experience": False}, "SEQL_x") == "IQL"
    # Records named by variant (SEAC-seed0) are labelled by their settings.
    assert trial_algorithm({"seac_lambda": 1.0, "shared_policy": True}, "SNAC-seed0") == "SNAC"
    assert trial_algorithm({"lr": 0.1}, "my-trial") == "unknown algorithm"


def test_a_campaign_record_of_rllibs_ppo_is_labelled_ippo(tmp_path):
    from rllib_seac.analysis.plotting import read_trial

    record = tmp_path / "IPPO-seed0"  # campaign.py's name: no trainable prefix
    record.mkdir()
    params = {"env": RWARE, "seed": 0, "multiagent": {"policies": ["agent_0", "agent_1"]}}
    (record / "params.json").write_text(json.dumps(params))
    (record / "progress.csv").write_text(
        "num_env_steps_sampled_lifetime,env_runners/episode_return_mean\n200000,0.3\n"
    )
    assert read_trial(record).algorithm == "unknown algorithm"
    tune_name = "PPO_rware-tiny-2ag-v2_00478_00000_0_seed=0_2026-12-08_00-04-56"
    (record / "trial.json").write_text(json.dumps({"tune_trial": tune_name}))
    assert read_trial(record).algorithm == "IPPO"


def test_rllib_example_script_flags_set_config_and_stop(tmp_path, capsys):
    args = ["train", "--algo", "PPO", "--env", RWARE, "--dry-run"]
    args += ["--num-env-runners", "1", "--num-envs-per-env-runner", "3", "--num-learners", "0"]
    args += ["--stop-reward", "5.5", "--stop-iters", "7", "--stop-timesteps", "9000"]
    args += ["--num-samples", "2", "--config", '{"lr": 0.001, "num_env_runners": 0}']
    assert main(args) == 0
    line = capsys.readouterr().out
    assert "stop={'env_runners/episode_return_mean': 5.5, 'training_iteration': 7, " in line
    assert "'num_env_steps_sampled_lifetime': 9000}" in line
    # The flags over --config's num_env_runners.
    assert "'lr': 0.001, 'num_env_runners': 1, 'num_envs_per_env_runner': 3" in line
    assert "'num_learners': 0" in line and "num_samples=2" in line


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num-env-runners", "-1"], "--num-env-runners must be >= 0, got -1."),
        (["--stop-iters", "0"], "--stop-iters must be >= 1, got 0."),
        (["--evaluation-duration", "0"], "--evaluation-duration must be >= 1, got 0."),
    ],
)
def test_bad_rllib_flag_exits_2(capsys, flags, message):
    assert main(["train", "--algo", "SEAC", "--env", RWARE, "--dry-run", *flags]) == 2
    assert capsys.readouterr().err.strip() == f"rllib: error: {message}"


def test_verbose_flags_set_tunes_verbosity():
    from rllib_seac.cli.parser import build_parser

    def verbosity(*flags):
        return build_parser().parse_args(["train", *flags]).verbose

    assert verbosity() == 1  # the progress table only
    assert verbosity("-v") == 2 and verbosity("-vv") == 3
    assert verbosity("--verbose", "0") == 0 and verbosity("--verbose", "3") == 3
    assert verbosity("file", "x.yaml", "-v") == 2
    assert build_parser().parse_args(["train", "-f", "x.yaml"]).path == "x.yaml"


def test_wandb_key_alone_logs_to_a_project_named_after_the_experiment():
    pytest.importorskip("wandb")
    from rllib_seac.cli import train
    from rllib_seac.cli.parser import build_parser

    args = build_parser().parse_args(["train", "--algo", "SEAC", "--env", RWARE])
    args.wandb_key = "0" * 40
    (exp,) = train._experiments(args)
    (callback,) = train._loggers(args, exp)
    assert callback.project == f"seac-{RWARE}" and callback.api_key == "0" * 40


def interrupt_after_first_result(
    run_dir: Path, sent: list, done: threading.Event, timeout_s: float
) -> None:
    """Ctrl-C (SIGINT to this process) once the run has reported a result: by then
    `rllib train` has its handler in place. Nothing once the run has ended (`done`)."""
    deadline = time.monotonic() + timeout_s
    while not done.is_set() and time.monotonic() < deadline:
        if trial_results(run_dir):
            os.kill(os.getpid(), signal.SIGINT)
            sent.append(True)
            return
        done.wait(0.1)


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_interrupt_checkpoint_with_a_new_stop(tmp_path):
    storage = tmp_path / "results"
    run_dir = storage / f"seac-{RWARE}"
    argv = ["train", "--algo", "SEAC", "--env", RWARE, "--storage-path", str(storage)]
    # No periodic checkpoint, and a stop far away (seconds of the trial's own time, so
    # that the run ends even if no Ctrl-C comes): only Ctrl-C ends the first run.
    argv += ["--config", '{"updates_per_iteration": 2}', "--checkpoint-freq", "0"]
    first_stop = ["--stop", json.dumps({"time_total_s": FIRST_RUN_BOUND_S})]
    sent, done = [], threading.Event()
    watcher = threading.Thread(
        target=interrupt_after_first_result, args=(run_dir, sent, done, FIRST_RESULT_S)
    )
    watcher.start()
    try:
        code, out = run([*argv, *first_stop])
    finally:
        done.set()
        watcher.join()
    assert sent, f"no result within {FIRST_RESULT_S} s"
    assert code == 130, out
    assert "interrupted at iteration" in out
    (saved_line,) = [line for line in out.splitlines() if "saved on interrupt" in line]
    saved = saved_line.split(": ", 1)[1]
    assert Path(saved).is_dir()
    resume = out.split("Resume with:\n", 1)[1].strip()
    assert resume == shlex.join(["rllib", *argv, *first_stop, "--resume"])

    before = trial_results(run_dir)
    target = before[-1]["training_iteration"] + 2
    code, out = run([*argv, "--resume", "--stop-iters", str(target), "-v"])
    assert code == 0, out
    assert f"resumed from {saved}" in out
    assert "reported" in out  # -v: Tune's line per result
    after = trial_results(run_dir)[len(before) :]
    # From the interrupt checkpoint (not from iteration 0), to the new stop.
    assert after[0]["iterations_since_restore"] == 1 and after[0]["training_iteration"] > 1
    assert after[-1]["training_iteration"] == target
    for r in after:  # the env-step counter restored with the weights
        assert r["num_env_steps_sampled_lifetime"] == r["training_iteration"] * 2 * 4 * 5


def test_unknown_config_key_suggests_the_near_one(capsys):
    args = ["train", "--algo", "SEAC", "--env", RWARE, "--config", '{"seac_lamda": 0.5}']
    assert main([*args, "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"rllib: error: experiment 'seac-{RWARE}': unknown config key 'seac_lamda'. "
        "Did you mean 'seac_lambda'?"
    )


def test_too_large_trial_without_learners_is_told_only_to_lower_env_runners(tmp_path, capsys):
    # 3 env runners and the trial's own CPU: 4 CPUs, where the test session's Ray has 2.
    args = ["train", "--algo", "SEAC", "--env", RWARE, "--num-env-runners", "3"]
    assert main([*args, "--num-learners", "0", "--storage-path", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("but Ray has 2 here: lower num_env_runners.")
    assert "num_learners: 0" not in err


def test_a_module_not_on_the_path_is_refused_with_where_python_looked(tmp_path, capsys):
    # From a directory without the module, as when evaluating elsewhere.
    args = ["train", "--algo", "SEAC", "--env", "spread", "--import", "myenvs", "--dry-run"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rllib: error: --import myenvs: No module named 'myenvs' (looked in")
    assert "PYTHONPATH=" in err
    from rllib_seac.envs import make_env

    with pytest.raises(ValueError, match="cannot import myenvs.*PYTHONPATH="):
        make_env("myenvs:make_spread")


def test_progress_table_keeps_each_trials_latest_evaluation():
    from ray.tune.experiment import Trial

    from rllib_seac.cli.progress import progress_table

    trials = [
        Trial("SEAC", stub=True, trial_id=f"ab12c_0000{i}", evaluated_params={"seed": i})
        for i in range(2)
    ]
    for t in trials:  # an iteration after the evaluation: no evaluation in this result
        t.update_last_result({"training_iteration": 3, "num_env_steps_sampled_lifetime": 600})
    header, first, second = progress_table(trials, {trials[0].trial_id: 0.5}).splitlines()
    assert header.split()[:2] == ["trial", "seed"] and "eval" in header.split()
    assert first.split()[:2] == ["SEAC_00000", "0"] and first.split()[-2] == "0.50"
    assert second.split()[:2] == ["SEAC_00001", "1"] and second.split()[-2] == "-"


def test_progress_table_shows_a_dash_for_an_iteration_in_which_no_episode_ended():
    from ray.tune.experiment import Trial

    from rllib_seac.cli.progress import progress_table

    trial = Trial("PPO", stub=True, trial_id="ab12c_00000", evaluated_params={})
    # RLlib's mean over the iteration's ended episodes, of which there were none.
    result = {"training_iteration": 2, "env_runners": {"episode_return_mean": float("nan")}}
    trial.update_last_result({**result, "num_env_steps_sampled_lifetime": 8000})
    header, row = progress_table([trial]).splitlines()
    assert header.split()[-2:] == ["return", "time"] and row.split()[-2] == "-"
