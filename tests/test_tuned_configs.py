"""Every file in tuned_configs/: the paper's settings, and one real training iteration."""

from pathlib import Path

import pytest
import yaml

import rllib_seac
from rllib_seac import env_names, make_env
from rllib_seac.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "tuned_configs"
ALL = sorted(CONFIGS.glob("*.yaml"))


def entry(path: Path) -> dict:
    (value,) = yaml.safe_load(path.read_text()).values()
    return value


# SEAC's files, one task each; the *-sweep.yaml files run a grid of trials (below).
SEAC = [p for p in ALL if entry(p)["run"] == "SEAC"]
TUNED = [p for p in SEAC if not p.stem.endswith("-sweep")]
SWEEPS = [p for p in SEAC if p.stem.endswith("-sweep")]
# RLlib's algorithms in the same harness (IPPO); SEQL's and IQL's files are checked
# in test_seql.py.
RLLIB = [p for p in ALL if entry(p)["run"] not in ("SEAC", "SEQL")]
# Table 2 of the paper (App. B), in SEACConfig's names: learning rate 3e-4, network
# 64 x 64 (SEACConfig's default hidden_sizes), Adam epsilon 0.001, gamma 0.99, entropy
# coef 0.01, value loss coef 0.5, no GAE (SEAC has none), grad clip 0.5, 4 parallel
# processes, 5 n-steps, lambda 1.0; the reference's target and seed 0 are ours.
TABLE_2 = {
    "lr": 0.0003,
    "adam_eps": 0.001,
    "gamma": 0.99,
    "entropy_coeff": 0.01,
    "vf_loss_coeff": 0.5,
    "grad_clip": 0.5,
    "num_envs_per_env_runner": 4,
    "n_steps": 5,
    "seac_lambda": 1.0,
    "seac_target": "paper",
    "seed": 0,
}
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


def test_one_file_per_paper_task_with_table_2_settings():
    assert {entry(path)["env"] for path in TUNED} == TASKS
    for path in TUNED:
        exp = entry(path)
        assert exp["env"] in env_names(), path.name
        config = {k: v for k, v in exp["config"].items() if k != "env_config"}
        assert config == TABLE_2, path.name
        assert exp["stop"]["num_env_steps_sampled_lifetime"] >= 40_000_000, path.name
        if exp["env"].startswith("Foraging"):
            assert exp["config"]["env_config"] == {"max_episode_steps": 25}, path.name
        assert path.read_text().startswith("# SEAC on "), path.name


def test_experiment_names_are_unique():
    # Two files writing one run directory would let --resume cross them.
    names = [name for path in ALL for name in yaml.safe_load(path.read_text())]
    assert len(names) == len(set(names)), names


@pytest.mark.parametrize("path", TUNED, ids=[p.stem for p in TUNED])
def test_one_training_iteration(path):
    # The config exactly as `rllib train file` builds it, trained without Tune's
    # start-up (about 10 s a file); test_cli.py runs rware.yaml through the CLI.
    from rllib_seac.cli import experiments, train

    (exp,) = experiments.load_file(path, experiments.Overrides())
    rllib_seac.register([exp.env])  # as `rllib train` does: Tune then knows "SEAC"
    config = train.algorithm_config(exp).environment(exp.env)
    config.update_from_dict({**train.trial_settings(exp, {}), "updates_per_iteration": 2})
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    # 2 updates x 4 envs x 5 steps.
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] == 40


@pytest.mark.parametrize("path", RLLIB, ids=[p.stem for p in RLLIB])
def test_rllib_algorithm_file_builds_a_module_per_agent(path, capsys):
    # The dry run builds and validates the algorithm's config with the env's agents;
    # test_cli_runs.py trains PPO on rware for real.
    assert main(["train", "file", str(path), "--dry-run"]) == 0
    assert "'shared_policy': False" in capsys.readouterr().out
    from rllib_seac.cli import experiments, train

    (exp,) = experiments.load_file(path, experiments.Overrides())
    env = make_env(exp.env)
    agents = list(env.possible_agents)
    env.close()
    assert train.trial_settings(exp, {})["multiagent"]["policies"] == agents


def test_lambda_sweep_grids_lambda_and_seed_over_table_2(capsys):
    (path,) = [p for p in SWEEPS if p.stem.endswith("lambda-sweep")]
    assert main(["train", "file", str(path), "--dry-run"]) == 0
    exp = entry(path)
    assert exp["env"] == "Foraging-8x8-2p-2f-v3"
    assert exp["config"]["seac_lambda"] == {"grid_search": [0.0, 0.3, 0.5, 0.9, 1.0]}
    assert exp["config"]["env_config"] == {"max_episode_steps": 25}
    plain = {k: v for k, v in exp["config"].items() if k != "env_config"}
    assert plain == {**TABLE_2, "seac_lambda": plain["seac_lambda"], "seed": plain["seed"]}
    assert "grid={'seac_lambda': [0.0, 0.3, 0.5, 0.9, 1.0], 'seed': [0, 1, 2]}" in (
        capsys.readouterr().out
    )
