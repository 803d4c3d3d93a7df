"""`rllib train`: Ray 2.40's tuned-example YAML and flags, translated or refused in one
line before Ray starts (checked with --dry-run; test_cli_runs.py runs them)."""

import pytest

from rllib_seac.cli import main

RWARE = "rware-tiny-2ag-v2"
# Ray 2.40's rllib/tuned_examples/ppo/cartpole-ppo.yaml, as a 2.40 user has it.
CARTPOLE_PPO_240 = """\
cartpole-ppo:
    env: CartPole-v1
    run: PPO
    stop:
        sampler_results/episode_reward_mean: 150
        timesteps_total: 100000
    config:
        # Works for both torch and tf.
        framework: torch
        gamma: 0.99
        lr: 0.0003
        num_workers: 1
        observation_filter: MeanStdFilter
        num_sgd_iter: 6
        vf_loss_coeff: 0.01
        model:
            fcnet_hiddens: [32]
            fcnet_activation: linear
            vf_share_layers: true
"""
# The same file once its old-stack-only key is gone: everything else translates.
CARTPOLE_PPO_TRANSLATABLE = CARTPOLE_PPO_240.replace(
    "        observation_filter: MeanStdFilter\n", ""
)
# A 2.40-style SEAC file for rware, old keys throughout.
SEAC_RWARE_240 = f"""\
seac-rware-old-keys:
    env: {RWARE}
    run: SEAC
    stop:
        episode_reward_mean: 10
        timesteps_total: 1000000
    config:
        framework: torch
        num_workers: 0
        num_envs_per_worker: 2
        model:
            fcnet_hiddens: [32, 32]
    checkpoint_freq: 5
    keep_checkpoints_num: 2
    checkpoint_score_attr: episode_reward_mean
    local_dir: out
"""


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def dry_run(tmp_path, text: str, *flags: str) -> list:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return ["train", "file", str(path), "--dry-run", *flags]


def test_ray_240_ppo_file_refuses_its_old_stack_key_in_one_line(tmp_path, capsys):
    assert main(dry_run(tmp_path, CARTPOLE_PPO_240)) == 2
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("rllib: error:")]
    assert "config key 'observation_filter' has no meaning on the new API stack" in line


def test_ray_240_ppo_file_translates_every_old_key(tmp_path, capsys):
    assert main(dry_run(tmp_path, CARTPOLE_PPO_TRANSLATABLE)) == 0
    captured = capsys.readouterr()
    for line in [
        "sampler_results/episode_reward_mean -> env_runners/episode_return_mean",
        "timesteps_total -> num_env_steps_sampled_lifetime",
        "framework: torch (the only framework) dropped",
        "num_workers -> num_env_runners",
        "num_sgd_iter -> num_epochs",
        "model.fcnet_hiddens -> model_config.fcnet_hiddens",
        "model.vf_share_layers -> model_config.vf_share_layers",
    ]:
        assert line in captured.err
    out = captured.out
    assert "run=PPO env=CartPole-v1" in out
    assert "'env_runners/episode_return_mean': 150" in out
    assert "'num_env_steps_sampled_lifetime': 100000" in out
    assert "'num_env_runners': 1" in out and "'num_epochs': 6" in out
    assert "'_model_config': {'fcnet_hiddens': [32], 'fcnet_activation': 'linear'" in out


def test_ray_240_seac_file_translates_config_stop_and_run_keys(tmp_path, capsys):
    assert main(dry_run(tmp_path, SEAC_RWARE_240)) == 0
    captured = capsys.readouterr()
    for line in [
        "num_envs_per_worker -> num_envs_per_env_runner",
        "model.fcnet_hiddens -> hidden_sizes",
        "episode_reward_mean -> env_runners/episode_return_mean",
        "checkpoint_freq -> checkpoint_config.checkpoint_frequency",
        "keep_checkpoints_num -> checkpoint_config.num_to_keep",
        "checkpoint_score_attr -> checkpoint_config.checkpoint_score_attribute",
        "local_dir -> storage_path",
    ]:
        assert line in captured.err
    assert (
        "config={'num_env_runners': 0, 'num_envs_per_env_runner': 2, 'hidden_sizes': [32, 32]}"
        in captured.out
    )


def entry(config: str = "{}", stop: str = "{training_iteration: 1}", extra: str = "") -> str:
    return f"x:\n  run: SEAC\n  env: {RWARE}\n  stop: {stop}\n  config: {config}\n{extra}"


@pytest.mark.parametrize(
    "text, message",
    [
        (entry("{horizon: 500}"), "config key 'horizon' has no meaning on the new API stack"),
        (entry("{framework: tf2}"), "framework: tf2 is not supported"),
        (entry("{_enable_new_api_stack: false}"), "the old API stack is not supported"),
        (entry("{train_batch_size: 400}"), "'train_batch_size' has no meaning for SEAC"),
        (entry("{model: {fcnet_activation: relu}}"), "model.fcnet_activation has no meaning"),
        (entry(stop="{custom_metrics/x_mean: 1}"), "no result reports 'custom_metrics/x_mean'"),
        (entry(stop="{evaluation/episode_reward_mean: 1}"), "no result reports 'evaluation/"),
        (entry(extra="  resources_per_trial: {cpu: 1}\n"), "resources_per_trial has no meaning"),
        (entry(extra="  num_samples: 0\n"), "num_samples must be an integer >= 1, got 0"),
        (entry(extra="  max_failures: -2\n"), "max_failures must be an integer >= -1"),
        (entry(extra="  checkpoint_config: {every: 1}\n"), "unknown checkpoint_config key(s)"),
        (
            entry(extra="  checkpoint_config: {checkpoint_score_attribute: loss}\n"),
            "checkpoint score attribute: no result reports 'loss'",
        ),
    ],
)
def test_key_with_no_meaning_is_refused_in_one_line(tmp_path, capsys, text, message):
    assert main(dry_run(tmp_path, text)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and err.count("rllib: error:") == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--local-mode"], "--local-mode does not exist on Ray 2.60"),
        (["--framework", "tf2"], "--framework tf2 is not supported"),
        (["--num-samples", "0"], "--num-samples must be >= 1, got 0."),
        (["--keep-checkpoints-num", "0"], "--keep-checkpoints-num must be >= 1, got 0."),
        (["--max-failures", "-2"], "--max-failures must be >= -1, got -2."),
        (["--checkpoint-score-attr", "reward"], "no result reports 'reward'"),
        (["--import", "no_such_module_xyz"], "--import no_such_module_xyz: No module named"),
    ],
)
def test_bad_flag_is_refused_in_one_line(tmp_path, capsys, flags, message):
    assert main(dry_run(tmp_path, entry(), *flags)) == 2
    assert message in capsys.readouterr().err


def test_algo_with_a_file_is_refused(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(entry())
    assert main(["train", "--algo", "PPO", "file", str(path), "--dry-run"]) == 2
    assert "--algo is for a run without a file" in capsys.readouterr().err


def test_ray_address_that_does_not_answer(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "")  # restored after the CLI sets it
    path = tmp_path / "exp.yaml"
    path.write_text(entry())
    assert main(["train", "file", str(path), "--ray-address", "127.0.0.1:1"]) == 2
    assert "no Ray cluster answers at RAY_ADDRESS=127.0.0.1:1" in capsys.readouterr().err


def test_flags_override_the_file(tmp_path, capsys):
    flags = ["--env", "Foraging-8x8-2p-2f-coop-v3", "--num-samples", "3", "--framework", "torch"]
    flags += ["--checkpoint-score-attr", "min-episode_reward_mean"]
    assert main(dry_run(tmp_path, entry(), *flags)) == 0
    captured = capsys.readouterr()
    assert "env=Foraging-8x8-2p-2f-coop-v3" in captured.out and "num_samples=3" in captured.out
    assert "episode_reward_mean -> env_runners/episode_return_mean" in captured.err


def test_train_from_flags_without_a_file(capsys):
    args = ["train", "--algo", "SEAC", "--env", RWARE, "--config", '{"seac_lambda": 0.5}']
    assert main([*args, "--stop", '{"timesteps_total": 100}', "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"seac-{RWARE}: run=SEAC env={RWARE}")
    assert "stop={'num_env_steps_sampled_lifetime': 100} config={'seac_lambda': 0.5}" in out


def test_train_needs_a_file_or_algo_and_env(capsys):
    assert main(["train", "--algo", "SEAC"]) == 2
    assert "give a file (rllib train file FILE.yaml) or both --algo and --env" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "shared, modules", [("false", "['agent_0', 'agent_1']"), ("true", "['shared']")]
)
def test_rllib_algorithm_gets_a_module_per_agent_or_one_shared(tmp_path, shared, modules):
    # PPOConfig has no shared_policy: the CLI maps the env's agents to modules itself.
    from rllib_seac.cli import experiments, train

    exp = experiments.experiment(
        "x",
        {"run": "PPO", "env": RWARE, "config": {"shared_policy": shared == "true"}},
        experiments.Overrides(),
    )
    train.validate(exp)
    settings = train.trial_settings(exp, {})
    assert "shared_policy" not in settings
    assert str(sorted(settings["multiagent"]["policies"])) == modules


def test_help_is_quick_and_imports_no_ray():
    import subprocess
    import sys

    code = "import sys; from rllib_seac.cli import main\ntry: main(['--help'])\n"
    code += (
        "except SystemExit: pass\nassert 'ray' not in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_plot_kinds_are_the_plotting_module_s():
    from rllib_seac.analysis.plotting import KINDS
    from rllib_seac.cli.parser import build_parser

    plot = build_parser()._subparsers._group_actions[0].choices["plot"]
    (kind,) = [a for a in plot._actions if a.dest == "kind"]
    assert tuple(kind.choices) == KINDS
