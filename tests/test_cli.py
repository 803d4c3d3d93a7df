"""The `rllib train file` command: input errors (exit 2, one message) and a real Tune run."""

import json
import time
from pathlib import Path

import pytest
from ray.tune.registry import register_env

from rllib_seac.cli import main
from tests.envs_for_tests import NanRewardEnv

RWARE_YAML = Path(__file__).resolve().parents[1] / "tuned_configs" / "rware.yaml"
ONE_ITER = '{"training_iteration": 1}'


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    # The CLI's default storage is ./results: keep it out of the repo.
    monkeypatch.chdir(tmp_path)


def write_yaml(tmp_path, text: str) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return str(path)


def experiment(config: str = "{}", env: str = "rware-tiny-2ag-v2") -> str:
    return f"x:\n  run: SEAC\n  env: {env}\n  stop: {{training_iteration: 1}}\n  config: {config}\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("- a\n- b\n", "must map experiment names"),
        ("x: [\n", "is not valid YAML"),
        ("x:\n  env: rware-tiny-2ag-v2\n", "missing 'run'"),
        ("x:\n  run: PPOO\n  env: rware-tiny-2ag-v2\n", "run: PPOO is not an algorithm Ray knows"),
        ("x:\n  run: SEAC\n", "missing 'env'"),
        (
            "x:\n  run: SEAC\n  env: rware-tiny-2ag-v2\n  trial_name: 3\n",
            "unknown key(s) trial_name",
        ),
        ("x:\n  run: SEAC\n  env: a\n  stop: {env_runners: {b: 1}}\n", "nest keys as 'a/b'"),
        (experiment(env="no-such-env-v0"), "Unknown env 'no-such-env-v0'"),
        (experiment("{seac_lambda: -1.0}"), "seac_lambda must be a number >= 0"),
        (experiment("{seac_lambda: {grid_search: [1.0, -1.0]}}"), "seac_lambda must be a number"),
        (experiment("{seac_target: bogus}"), "seac_target must be one of"),
        (experiment("{seac_lamda: 1.0}"), "unknown config key 'seac_lamda'"),
        (experiment("{seac_lamda: {grid_search: [0.0, 1.0]}}"), "unknown config key 'seac_lamda'"),
        (experiment("{seac_lambda: {grid_search: []}}"), "grid_search needs a non-empty list"),
        (experiment("{lr: -1}"), "lr must be a number > 0 (or a schedule of such), got -1."),
        (experiment("{gamma: 1.5}"), "gamma must be a number in (0, 1], got 1.5."),
        (experiment("{entropy_coeff: -0.1}"), "entropy_coeff must be a number >= 0"),
        (experiment("{vf_loss_coeff: -0.5}"), "vf_loss_coeff must be a number >= 0"),
        (experiment("{grad_clip: 0}"), "grad_clip must be a number > 0"),
        (experiment("{adam_eps: 0}"), "adam_eps must be a number > 0, got 0."),
        (experiment("{hidden_sizes: [64, -1]}"), "hidden_sizes must be a list of layer sizes"),
        (experiment("{num_envs_per_env_runner: 0}"), "num_envs_per_env_runner must be an integer"),
        (experiment("{n_steps: 0}"), "n_steps must be an integer >= 1, got 0."),
        (experiment("{updates_per_iteration: 0}"), "updates_per_iteration must be an integer"),
        (experiment("{seed: -1}"), "seed must be an integer from 0 to 2**32-1 (or None), got -1."),
        (
            experiment("{env_config: {max_episode_steps: -5}}", env="Foraging-8x8-2p-2f-v3"),
            "Bad env config for Foraging-8x8-2p-2f-v3: max_episode_steps must be an integer >= 1",
        ),
        (
            experiment("{env_config: {n_agents: 0}}"),
            "Bad env config for rware-tiny-2ag-v2: n_agents must be an integer >= 1, got 0.",
        ),
        (
            experiment("{env_config: {num_predators: 1}}", env="predator-prey-sparse"),
            "Bad env config for predator-prey-sparse: num_predators must be an integer >= 2",
        ),
    ],
)
def test_bad_file_exits_2_with_one_message(tmp_path, capsys, text, message):
    assert main(["train", "file", write_yaml(tmp_path, text)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("rllib: error:") and len(err.strip().splitlines()) == 1, err


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)


@pytest.mark.parametrize(
    "data, message",
    [
        (experiment() + experiment(), "exp.yaml: experiment 'x' is given twice (lines 1 and 6)"),
        (experiment("{lr: 0.1, lr: 0.2}"), "exp.yaml: key 'lr' is given twice (lines 5 and 5)"),
        ("x:\n  run: SEAC\n  env: caf\xe9\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9"),
        (BOMB, "exp.yaml: its aliases (*name) expand to more than 100,000 values"),
        (
            experiment().replace(
                "  config:", "  checkpoint_config: {checkpoint_frequency: -5}\n  config:"
            ),
            "checkpoint_frequency must be an integer >= 0 (0: at the end), got -5.",
        ),
        (
            experiment().replace("  config:", "  checkpoint_freq: -5\n  config:"),
            "checkpoint_frequency must be an integer >= 0 (0: at the end), got -5.",
        ),
        (
            experiment().replace("  config:", "  checkpoint_config: {num_to_keep: 0}\n  config:"),
            "num_to_keep must be an integer >= 1 (or null: keep all), got 0.",
        ),
        (experiment().replace("x:", "../up:", 1), "experiment name '../up' must be a plain folder"),
        (experiment().replace("x:", "a/b:", 1), "experiment name 'a/b' must be a plain folder"),
        (
            experiment("{num_sgd_iter: 5}"),
            "config key 'num_sgd_iter' (num_epochs on the new stack) has no meaning for SEAC",
        ),
        (
            experiment("{sgd_minibatch_size: 5}"),
            "config key 'sgd_minibatch_size' (minibatch_size on the new stack) has no meaning",
        ),
        (experiment("{shared_policy: 'no'}"), "shared_policy must be true or false, got 'no'."),
        (experiment("{overlap_sampling: 'false'}"), "overlap_sampling must be true or false"),
        (experiment("{num_env_runners: -1}"), "num_env_runners must be an integer >= 0, got -1."),
        (experiment("{torch_num_threads: -2}"), "torch_num_threads must be an integer >= 1"),
        (experiment("{num_cpus_for_main_process: -1}"), "num_cpus_for_main_process must be a"),
        (experiment("{seed: 4294967296}"), "seed must be an integer from 0 to 2**32-1"),
        (experiment("{env_config: [1, 2]}"), "env_config must be a mapping of the env's settings"),
        (experiment("{n_steps: 1000000000}"), "these settings need at least"),
        (experiment("{num_envs_per_env_runner: 1000000000}"), "these settings need at least"),
        (experiment("{hidden_sizes: [1000000000]}"), "these settings need at least"),
        (
            experiment("{env_config: {n_agents: 1000}}"),
            "Bad env config for rware-tiny-2ag-v2: n_agents must be at most the 110 cells",
        ),
        (
            experiment("{env_config: {request_queue_size: 100}}"),
            "Bad env config for rware-tiny-2ag-v2: request_queue_size must be at most its 32",
        ),
        (
            experiment("{env_config: {players: 100}}", env="Foraging-8x8-2p-2f-v3"),
            "Bad env config for Foraging-8x8-2p-2f-v3: players (100) and max_num_food (2) must",
        ),
        (
            experiment("{env_config: {max_num_food: 60}}", env="Foraging-8x8-2p-2f-v3"),
            "Bad env config for Foraging-8x8-2p-2f-v3: max_num_food must be at most 9 on its",
        ),
        (
            experiment(env="builtins:dict"),
            "env 'builtins:dict' returned dict, not an env (an object with reset() and step()",
        ),
        (experiment(env="os:getcwd"), "env 'os:getcwd': calling it with the env config failed"),
        (
            experiment("{env_config: {min_player_level: 1000}}", env="Foraging-8x8-2p-2f-v3"),
            "Bad env config for Foraging-8x8-2p-2f-v3: min_player_level must be less than",
        ),
        (
            experiment("{env_config: {shelf_columns: 100000000001}}"),
            "Bad env config for rware-tiny-2ag-v2: rware cannot build this warehouse (MemoryError",
        ),
        (
            experiment("{env_config: {sensor_range: 10000000}}"),
            "Bad env config for rware-tiny-2ag-v2: rware cannot build this warehouse (MemoryError",
        ),
    ],
)
def test_bad_file_is_refused_before_ray_in_one_line(tmp_path, capsys, data, message):
    path = tmp_path / "exp.yaml"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    assert main(["train", "file", str(path), "--storage-path", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    # One error line (after a note of an old key's translation, where one is made).
    lines = err.strip().splitlines()
    assert [line for line in lines if line.startswith("rllib: error:")] == lines[-1:], err
    assert message in lines[-1]
    assert len(lines[-1]) < 300  # an alias bomb's expansion is never printed
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--env", ""], "--env is empty: give an env name, or MODULE:CALLABLE."),
        (["--storage-path", "{file}"], "storage path {file} is a file: give a directory."),
        (["--storage-path", "{file}/sub"], "storage path {file}/sub is under a file ({file})"),
        (["--storage-path", "/proc/runs"], "storage path /proc/runs: cannot write in /proc"),
        (["--config", '{"env_config": "n_agents=4"}'], "env_config must be a mapping"),
        # A dry run builds the env once: what the run could not start with stops it.
        (["--config", '{"env_config": {"n_agents": 1000}}'], "n_agents must be at most the"),
    ],
)
def test_bad_options_are_refused_before_ray(tmp_path, capsys, options, message):
    file = tmp_path / "a-file"
    file.write_text("")
    options = [o.replace("{file}", str(file)) for o in options]
    assert main(["train", "file", str(RWARE_YAML), "--dry-run", *options]) == 2
    err = capsys.readouterr().err
    assert message.replace("{file}", str(file)) in err and len(err.strip().splitlines()) == 1


def test_missing_file(capsys):
    assert main(["train", "file", "no/such.yaml"]) == 2
    assert "cannot read no/such.yaml: No such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "stop, message",
    [("{bad", "--stop is not valid JSON"), ("[1]", "--stop must be a JSON object")],
)
def test_bad_stop_json(capsys, stop, message):
    assert main(["train", "file", str(RWARE_YAML), "--stop", stop]) == 2
    assert message in capsys.readouterr().err


def test_aliases_and_grid_pass_dry_run(tmp_path, capsys):
    # "framework" and "multiagent" are update_from_dict aliases, not attribute names.
    config = "{framework: torch, multiagent: {}, seac_lambda: {grid_search: [0.0, 1.0]}}"
    assert main(["train", "file", write_yaml(tmp_path, experiment(config)), "--dry-run"]) == 0
    assert "grid={'seac_lambda': [0.0, 1.0]}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "config, message",
    [
        ("{bad", "--config is not valid JSON"),
        ("[1]", "--config must be a JSON object"),
        ('{"seac_lamda": 1.0}', "unknown config key 'seac_lamda'"),
        ('{"seac_lambda": -1.0}', "seac_lambda must be a number >= 0"),
    ],
)
def test_bad_config_json(capsys, config, message):
    assert main(["train", "file", str(RWARE_YAML), "--config", config, "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_config_json_is_merged_into_each_experiment(tmp_path, capsys):
    text = experiment("{lr: 0.001, seac_lambda: {grid_search: [0.0, 1.0]}}")
    text += text.replace("x:", "y:", 1)
    overrides = '{"seac_lambda": 0.5, "updates_per_iteration": 2}'
    args = ["train", "file", write_yaml(tmp_path, text), "--config", overrides, "--dry-run"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for line in lines:
        # The file's lr stays, --config's keys replace the file's (its grid too).
        assert "'lr': 0.001, 'seac_lambda': 0.5, 'updates_per_iteration': 2} grid={}" in line


@pytest.mark.parametrize(
    "address, message",
    [
        ("127.0.0.1:1", "no Ray cluster answers at RAY_ADDRESS=127.0.0.1:1 (Connection refused)"),
        ("head-node", "RAY_ADDRESS=head-node is not HOST:PORT"),
    ],
)
def test_cluster_address_that_does_not_answer(monkeypatch, capsys, address, message):
    monkeypatch.setenv("RAY_ADDRESS", address)
    start = time.monotonic()
    assert main(["train", "file", str(RWARE_YAML), "--stop", ONE_ITER]) == 2
    # A bound on failing fast, generous for a busy machine: ray.init would retry for
    # minutes, the CLI's probe gives up after CLUSTER_PROBE_TIMEOUT_S (5 s).
    assert time.monotonic() - start < 60
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "options, message",
    [
        (["--resume"], "experiment 'seac-rware': no run to resume at "),
        (["--checkpoint-freq", "-1"], "--checkpoint-freq must be >= 0, got -1."),
    ],
)
def test_bad_run_options(tmp_path, capsys, options, message):
    args = ["train", "file", str(RWARE_YAML), "--storage-path", str(tmp_path), *options]
    assert main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "steps, continues, message",
    [
        ([], False, None),  # nothing finished: nothing to restart
        ([60, 80], True, None),  # a new leg: both continue to 100
        ([100, 120], False, "x: 2 finished trials already met the stop: left as done"),
        ([100, 80], True, "x: 1 of the 2 finished trials already met the stop but run one"),
    ],
)
def test_resume_restarts_finished_trials_only_for_a_stop_one_has_not_met(
    capsys, steps, continues, message
):
    from rllib_seac.cli.train import finished_trials_continue

    stop = {"env_runners/num_env_steps_sampled_lifetime": 100}
    # A finished trial's last result: Tune marks it done.
    results = [{"done": True, "env_runners": {"num_env_steps_sampled_lifetime": n}} for n in steps]
    assert finished_trials_continue("x", results, stop) is continues
    err = capsys.readouterr().err
    assert (message in err) if message else err == ""


@pytest.mark.parametrize(
    "prog",
    ["rllib", "python -m rllib_seac.cli"],  # the script, and the module
)
def test_the_resume_line_repeats_the_command_as_it_was_called(prog):
    import argparse
    import shlex

    from rllib_seac.cli.train import _resume_command

    argv = ["train", "file", "my runs/x.yaml", "--stop", '{"training_iteration": 3}']
    line = _resume_command(argparse.Namespace(prog=prog, argv=argv))
    assert line == f"{prog} {shlex.join(argv)} --resume"
    assert shlex.split(line) == [*shlex.split(prog), *argv, "--resume"]


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "train" in capsys.readouterr().out


def test_rware_yaml_one_iteration(tmp_path, capsys):
    args = ["train", "file", str(RWARE_YAML), "--stop", ONE_ITER, "--storage-path", str(tmp_path)]
    assert main(args) == 0
    (result_file,) = (tmp_path / "seac-rware").glob("*/result.json")
    result = json.loads(result_file.read_text().splitlines()[-1])
    assert result["training_iteration"] == 1
    assert result["num_env_steps_sampled_lifetime"] > 0
    assert list(result_file.parent.glob("checkpoint_*"))
    out = capsys.readouterr().out
    assert f"results in {tmp_path / 'seac-rware'}" in out
    # The progress table's return column, and the summary's best return and command.
    assert "return" in out.splitlines()[0].split()
    row = next(
        line for line in out.splitlines() if line.startswith("SEAC_00000") and "TERMINATED" in line
    )
    iteration, steps, _, ret, _ = row.split()[2:]
    assert (iteration, steps) == ("1", f"{result['num_env_steps_sampled_lifetime']:,.0f}")
    assert float(ret) == pytest.approx(result["env_runners"]["episode_return_mean"], abs=0.01)
    assert "ok, best episode_return_mean=" in out
    (checkpoint,) = result_file.parent.glob("checkpoint_*")
    assert f"evaluate: rllib evaluate {checkpoint}" in out


def test_errored_trial_exits_nonzero(tmp_path, capsys):
    # Passes validate(), but its reward turns NaN at the third step: the trial errors
    # inside Tune.
    register_env("nan-reward", NanRewardEnv)
    path = write_yaml(tmp_path, experiment("{updates_per_iteration: 1}", env="nan-reward"))
    assert main(["train", "file", path, "--storage-path", str(tmp_path / "out")]) == 1
    assert "ERROR" in capsys.readouterr().out


def test_resume_reads_the_trials_states_without_tunes_warning_on_missing_results(
    tmp_path, caplog, capsys
):
    # A committed record rebuilt as a Tune run; one trial's result files removed, as a
    # trial that has not reported yet has none.
    import importlib.util
    import logging

    from rllib_seac.cli import train
    from rllib_seac.cli.parser import build_parser

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("campaign", root / "benchmarks/campaign.py")
    campaign = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(campaign)
    campaign.restore_run(root / "docs/results/paper-predator-prey-sparse", tmp_path)
    (trial,) = tmp_path.glob("*/SEAC_*_00000_*")
    for name in ("result.json", "progress.csv"):
        (trial / name).unlink()
    stop = '{"num_env_steps_sampled_lifetime": 10000000}'
    file = str(root / "tuned_configs/paper/predator-prey-sparse.yaml")
    args = build_parser().parse_args(
        ["train", "file", file, "--storage-path", str(tmp_path), "--resume", "--stop", stop]
    )
    (exp,) = train._experiments(args)
    with caplog.at_level(logging.WARNING, logger="ray.tune.analysis.experiment_analysis"):
        assert train._finished_trials_continue(exp, args) is False  # seed 0 met 10M
    assert "Failed to fetch metrics" not in caplog.text
    assert "already met the stop: left as done" in capsys.readouterr().err
