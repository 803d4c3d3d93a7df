"""`rllib train` for real, one short Tune run each: RLlib's PPO on rware (IPPO and a
shared module), Tune's experiment keys, the user's own env, loggers, auto-retry."""

import json
from pathlib import Path

import pytest

from rllib_seac.cli import main
from tests.trial_results import trial_results

RWARE = "rware-tiny-2ag-v2"
# Seconds of its own time an APPO trial gets to make its first update.
APPO_BOUND_S = 300
# Ray 2.40's old keys, as a 2.40 user writes a PPO file; kept tiny for one iteration.
IPPO_240 = f"""\
ippo:
    run: PPO
    env: {RWARE}
    stop:
        training_iteration: 1
    config:
        framework: torch
        num_workers: 0
        train_batch_size: 200
        sgd_minibatch_size: 100
        num_sgd_iter: 1
        model:
            fcnet_hiddens: [32]
"""


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def write(tmp_path, text: str) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return str(path)


def test_ppo_on_rware_one_module_per_agent(tmp_path, capsys):
    args = ["train", "file", write(tmp_path, IPPO_240), "--storage-path", str(tmp_path)]
    assert main(args) == 0
    (result,) = trial_results(tmp_path / "ippo")
    assert result["num_env_steps_sampled_lifetime"] == 200
    assert {"agent_0", "agent_1"} <= set(result["learners"])  # IPPO: a module each
    assert "shared" not in result["learners"]
    out = capsys.readouterr().out
    assert "ippo: results in" in out and "ok, best episode_return_mean=" in out


def test_ppo_from_flags_with_a_shared_module(tmp_path):
    config = '{"shared_policy": true, "num_env_runners": 0, "train_batch_size": 200, '
    config += '"minibatch_size": 100, "num_epochs": 1}'
    args = ["train", "--algo", "PPO", "--env", RWARE, "--config", config]
    args += ["--stop", '{"training_iteration": 1}', "--storage-path", str(tmp_path)]
    assert main(args) == 0
    (result,) = trial_results(tmp_path / f"ppo-{RWARE}")
    assert "shared" in result["learners"]
    assert not {"agent_0", "agent_1"} & set(result["learners"])


def test_dqn_on_rware_gets_a_multi_agent_replay_buffer(tmp_path):
    # DQN's default PrioritizedEpisodeReplayBuffer cannot hold multi-agent episodes.
    args = ["train", "--algo", "DQN", "--env", RWARE, "--stop", '{"training_iteration": 1}']
    assert main([*args, "--storage-path", str(tmp_path)]) == 0
    (result,) = trial_results(tmp_path / f"dqn-{RWARE}")
    assert result["num_env_steps_sampled_lifetime"] > 0
    assert {"agent_0", "agent_1"} <= set(result["learners"])


def appo(config: str, stop: str = "{training_iteration: 2}") -> str:
    return f"appo:\n  run: APPO\n  env: {RWARE}\n  stop: {stop}\n  config: {config}\n"


def test_appo_learning_in_the_trial_process_fits_two_cpus(tmp_path):
    # APPO samples and learns asynchronously: how many iterations pass before its
    # learner has trained depends on the machine's load, so the run stops once it
    # has, with a bound in seconds.
    trained = "learners/agent_0/num_module_steps_trained_lifetime"
    stop = f"{{{trained}: 1, time_total_s: {APPO_BOUND_S}}}"
    text = appo("{num_env_runners: 1, num_learners: 0}", stop)
    args = ["train", "file", write(tmp_path, text), "--storage-path", str(tmp_path)]
    assert main(args) == 0
    last = trial_results(tmp_path / "appo")[-1]
    assert "agent_0" in last["learners"], f"APPO did not train in {APPO_BOUND_S} s"
    assert last["num_env_steps_sampled_lifetime"] > 0
    assert {"agent_0", "agent_1"} <= set(last["learners"])  # a module per agent


def test_a_trial_larger_than_the_machine_is_refused_in_one_line(tmp_path, capsys):
    # APPO's default remote learner makes 3 CPUs with one env runner; the test
    # session's Ray has 2. Tune would wait for the third forever.
    args = ["train", "file", write(tmp_path, appo("{num_env_runners: 1}"))]
    assert main([*args, "--storage-path", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "rllib: error: experiment 'appo': each APPO trial asks for 3 CPUs "
        "(num_env_runners=1, num_learners=1) but Ray has 2 here: lower num_env_runners, "
        "or set num_learners: 0 to learn in the trial's own process."
    )
    assert not (tmp_path / "appo").exists()


def test_experiment_keys_num_samples_and_checkpoint_config(tmp_path, capsys):
    text = f"""\
seac-keys:
    run: SEAC
    env: {RWARE}
    num_samples: 2
    storage_path: {tmp_path / "store"}
    checkpoint_config: {{checkpoint_frequency: 1, num_to_keep: 1}}
    stop: {{training_iteration: 2}}
    config: {{updates_per_iteration: 1}}
"""
    assert main(["train", "file", write(tmp_path, text), "-v"]) == 0
    # -v: a table at each result (2 trials x 2 iterations), not only every 30 s.
    tables = capsys.readouterr().out.split("trial  ")[1:]
    assert len(tables) >= 4
    assert tables[-1].count(" TERMINATED      2 ") == 2
    trials = sorted((tmp_path / "store" / "seac-keys").glob("SEAC_*"))
    assert len(trials) == 2  # num_samples
    for trial in trials:
        # A checkpoint every iteration, only the last one kept.
        assert [p.name for p in trial.glob("checkpoint_*")] == ["checkpoint_000001"]
        assert list(trial.glob("events.out.tfevents.*"))  # TensorBoard, out of the box


def checkpoint_env(checkpoint: Path) -> str:
    from rllib_seac.analysis.evaluation import AgentPolicies

    return AgentPolicies(checkpoint, imports=["tests.user_envs"]).config.env


@pytest.mark.parametrize(
    "env, flags, stored",
    [
        ("tests.user_envs:make_spread", [], "tests.user_envs:make_spread"),
        ("user-spread", ["--import", "tests.user_envs"], "tests.user_envs:user-spread"),
    ],
    ids=["module-callable", "import-flag"],
)
def test_user_env_trains_and_evaluates_from_its_checkpoint(tmp_path, capsys, env, flags, stored):
    # PettingZoo's MPE spread through the adapter, in tests/user_envs.py: importable
    # as tests.user_envs here and in Ray's workers (the repo root is the current
    # directory of the test session's ray.init, which Ray puts on its workers' paths).
    text = f"""\
spread:
    run: SEAC
    env: {env}
    stop: {{training_iteration: 1}}
    config: {{updates_per_iteration: 1, env_config: {{N: 2, max_cycles: 5}}}}
"""
    args = ["train", "file", write(tmp_path, text), "--storage-path", str(tmp_path), *flags]
    assert main(args) == 0
    (checkpoint,) = (tmp_path / "spread").glob("*/checkpoint_*")
    assert checkpoint_env(checkpoint) == stored
    capsys.readouterr()
    # Making the env runs code from the module the spec names: only one the user imports.
    assert main(["evaluate", str(checkpoint), "--episodes", "2"]) == 2
    assert "--import tests.user_envs" in capsys.readouterr().err
    args = ["evaluate", str(checkpoint), "--episodes", "2", "--json", "--import", "tests.user_envs"]
    assert main(args) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["episodes"] == 2 and set(evaluation["agent_returns"]) == {
        "agent_0",
        "agent_1",
    }


def test_wandb_offline_and_mlflow_file_store(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)  # offline: never sent
    # MLflow 3.x refuses its file store unless told (a database is its new default).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    args = ["train", "--algo", "SEAC", "--env", RWARE, "--config", '{"updates_per_iteration": 1}']
    args += ["--stop", '{"training_iteration": 2}', "--storage-path", str(tmp_path)]
    args += ["--wandb-project", "seac-test", "--mlflow-tracking-uri", uri]
    assert main(args) == 0
    assert list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name(f"seac-{RWARE}").experiment_id])
    history = client.get_metric_history(run.info.run_id, "training_iteration")
    assert [m.value for m in history] == [1, 2]


@pytest.mark.slow
def test_max_failures_restarts_a_killed_trial_from_its_checkpoint(tmp_path, capsys):
    # The env kills its trial's process once the trial has a checkpoint (after
    # iteration 2): what a crash or the OOM killer does, at a known point of the run.
    per_iteration = 20 * 20  # 20 updates of 4 envs x 5 steps
    run_dir = tmp_path / "x"
    text = f"""\
x:
    run: SEAC
    env: tests.envs_for_tests:KilledOnceEnv
    stop: {{training_iteration: 6}}
    config: {{updates_per_iteration: 20, seed: 0, env_config: {{run_dir: {run_dir}}}}}
"""
    args = ["train", "file", write(tmp_path, text), "--storage-path", str(tmp_path)]
    assert main([*args, "--checkpoint-freq", "2", "--max-failures", "1"]) == 0
    killed = int((run_dir / "killed").read_text())
    lines = trial_results(run_dir)
    assert lines[-1]["training_iteration"] == 6
    # The trial came back in a new process, from a checkpoint, not from zero...
    restarts = [r for r in lines if r["iterations_since_restore"] == 1 and r["pid"] != killed]
    assert restarts and restarts[0]["training_iteration"] > 1, restarts
    # ...with its env-step counter restored.
    for r in lines:
        assert r["num_env_steps_sampled_lifetime"] == r["training_iteration"] * per_iteration
    # The summary says so, with the checkpoint it restarted from.
    out = capsys.readouterr().out
    (restart,) = [line.strip() for line in out.splitlines() if "restart 1 after" in line]
    checkpoint = Path(restart.split(": from ", 1)[1])
    assert checkpoint.parent.parent == run_dir and checkpoint.name.startswith("checkpoint_")
