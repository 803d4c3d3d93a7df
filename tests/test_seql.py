"""SEQL and IQL (App. D) end to end: real Ray, real envs, tiny budgets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from rllib_seac import SEQL, SEQLConfig, SEQLConfigError
from rllib_seac.analysis.evaluation import evaluate
from rllib_seac.cli import main
from tests.envs_for_tests import SpacesEnv

RWARE = "rware-tiny-2ag-v2"
LBF = "Foraging-8x8-2p-2f-v3"
CONFIGS = Path(__file__).resolve().parents[1] / "tuned_configs"
BATCH, STEPS_PER_ITER = 8, 20
AGENTS = {RWARE: ["agent_0", "agent_1"], LBF: ["agent_0", "agent_1"]}


def tiny_config(env, share: bool, direct_loop: bool = True) -> SEQLConfig:
    env_config = {"max_episode_steps": 10} if env == LBF else {"max_steps": 10}
    return (
        SEQLConfig()
        .environment(env, env_config=env_config)
        .training(
            share_experience=share,
            direct_loop=direct_loop,
            train_batch_size_per_learner=BATCH,
            num_steps_sampled_before_learning_starts=BATCH,
        )
        .reporting(min_sample_timesteps_per_iteration=STEPS_PER_ITER)
        .debugging(seed=0)
    )


def check_result(result, env, share):
    assert result["training_iteration"] == 2
    assert result["num_env_steps_sampled_lifetime"] >= 2 * STEPS_PER_ITER
    for aid in AGENTS[env]:
        learner = result["learners"][aid]
        for key in ("qf_loss", "qf_mean", "td_error_mean", "epsilon"):
            assert np.isfinite(learner[key]), (aid, key)
        assert 0.99 < learner["epsilon"] <= 1.0  # 40 steps into a 2.4M-step decay
        # SEQL: M/N transitions from each agent's buffer; IQL: M from its own.
        assert learner["module_train_batch_size_mean"] == (BATCH // 2 if share else BATCH)
        assert ("others_q_loss" in learner) == share
        assert aid in result["env_runners"]["agent_episode_returns_mean"]


@pytest.mark.parametrize("env", [RWARE, LBF])
@pytest.mark.parametrize("share", [True, False], ids=["SEQL", "IQL"])
def test_trains_two_iterations_with_per_agent_metrics(env, share):
    algo = tiny_config(env, share).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        check_result(result, env, share)
        assert algo.config.agent_ids == AGENTS[env]
        # One update per env step from the BATCH-th on, one target update each.
        updates = 2 * STEPS_PER_ITER - BATCH + 1
        trained = result["learners"]["__all_modules__"]["num_env_steps_trained_lifetime"]
        assert trained == updates * BATCH
        assert result["learners"]["agent_0"]["num_target_updates"] == updates
        # The buffers: one row per env step and agent; SEQL draws M // N from each.
        loop = algo._direct_loop
        assert loop.buffers.size == 2 * STEPS_PER_ITER
        assert loop.batch_per_agent == (BATCH // 2 if share else BATCH)
        # After the first update (autograd: it makes Adam's state), the stacked one.
        assert loop._stacked is not None and loop._stacked.is_current()
        # The env runner (used by evaluate()) holds the learner's weights.
        learner_weights = algo.learner_group.get_weights()["agent_0"]
        runner_weights = algo.env_runner.module["agent_0"].get_state()
        for key, value in runner_weights.items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(learner_weights[key]))
    finally:
        algo.stop()


@pytest.mark.parametrize("share", [True, False], ids=["SEQL", "IQL"])
def test_rllib_loop_trains_two_iterations(share):
    algo = tiny_config(LBF, share, direct_loop=False).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        check_result(result, LBF, share)
        # RLlib's episode buffer: M // N items of each agent's data for SEQL.
        sample = algo.local_replay_buffer.sample(num_items=BATCH)
        counts = Counter(episode.module_id for episode in sample)
        assert counts == dict.fromkeys(AGENTS[LBF], BATCH // 2 if share else BATCH)
    finally:
        algo.stop()


def test_direct_loop_is_deterministic_for_a_fixed_seed():
    weights = []
    for _ in range(2):
        algo = tiny_config(LBF, True).build_algo()
        try:
            result = algo.train()
            weights.append(algo.learner_group.get_weights())
            losses = [result["learners"][aid]["qf_loss"] for aid in AGENTS[LBF]]
            weights[-1]["losses"] = losses
        finally:
            algo.stop()
    first, second = weights
    assert first["losses"] == second["losses"]
    for aid in AGENTS[LBF]:
        for key in first[aid]:
            np.testing.assert_array_equal(first[aid][key], second[aid][key])


def test_checkpoint_restores_weights_and_evaluates_greedily(tmp_path):
    algo = tiny_config(LBF, True).build_algo()
    try:
        algo.train()
        path = algo.save_to_path(tmp_path / "ckpt")
        saved = algo.get_module("agent_0").state_dict()
    finally:
        algo.stop()
    restored = SEQL.from_checkpoint(path)
    try:
        weights = restored.get_module("agent_0").state_dict()
        assert saved.keys() == weights.keys()
        for key in saved:
            np.testing.assert_array_equal(np.asarray(saved[key]), np.asarray(weights[key]))
        # It trains on from the checkpoint's step count (its buffers start empty).
        result = restored.train()
        assert result["num_env_steps_sampled_lifetime"] == 2 * STEPS_PER_ITER
        assert np.isfinite(result["learners"]["agent_0"]["qf_loss"])
    finally:
        restored.stop()
    result = evaluate(path, episodes=2, seed=0)
    assert result.algorithm == "SEQL"
    assert result.policy.startswith("greedy")
    assert len(result.total_returns) == 2


def test_agents_with_different_spaces_are_named():
    config = SEQLConfig().environment(SpacesEnv, env_config={"carrier_obs": 5})
    with pytest.raises(SEQLConfigError) as err:
        config.validate()
    assert "SEQL needs identical observation spaces" in str(err.value)
    assert "carrier: Box(-1.0, 1.0, (5,)" in str(err.value)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"seql_lambda": -1.0}, "seql_lambda must be a number >= 0, got -1.0"),
        ({"share_experience": "yes"}, "share_experience must be true or false, got 'yes'"),
        ({"double_q": True}, "double_q must be False"),
        ({"direct_loop": 1}, "direct_loop must be true or false, got 1"),
    ],
)
def test_bad_settings_name_key_and_value(settings, message):
    with pytest.raises(SEQLConfigError, match="Bad SEQL config") as err:
        SEQLConfig().environment(LBF).training(**settings).validate()
    assert message in str(err.value)


def test_direct_loop_refuses_remote_runners_and_names_the_way_out():
    config = SEQLConfig().environment(LBF).env_runners(num_env_runners=2)
    with pytest.raises(SEQLConfigError) as err:
        config.validate()
    assert "num_env_runners must be 0 with direct_loop=True" in str(err.value)
    assert "got 2; set direct_loop=False" in str(err.value)
    config.training(direct_loop=False).validate()


def tuned(name: str) -> dict:
    (value,) = yaml.safe_load((CONFIGS / name).read_text()).values()
    return value


def test_tuned_files_hold_the_authors_settings_and_differ_only_in_sharing():
    for task, env in (("lbf-8x8-2p-2f", LBF), ("rware-tiny-2ag", RWARE)):
        seql, iql = tuned(f"seql-{task}.yaml"), tuned(f"iql-{task}.yaml")
        assert seql["run"] == iql["run"] == "SEQL" and seql["env"] == iql["env"] == env
        assert seql["config"]["share_experience"] is True
        assert iql["config"]["share_experience"] is False
        assert {
            k: v for k, v in seql["config"].items() if k not in ("share_experience", "seql_lambda")
        } == {k: v for k, v in iql["config"].items() if k != "share_experience"}
        config = seql["config"]
        assert config["train_batch_size_per_learner"] == 128
        assert (config["tau"], config["grad_clip"], config["gamma"]) == (0.05, 0.5, 0.99)
        assert config["lr"] == (5e-5 if env == RWARE else 1e-4)
    assert tuned("seql-lbf-8x8-2p-2f.yaml")["config"]["env_config"] == {"max_episode_steps": 25}


def test_cli_runs_the_tuned_file_for_one_iteration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small = {
        "train_batch_size_per_learner": BATCH,
        "num_steps_sampled_before_learning_starts": BATCH,
    }
    # 2 episodes of the file's 25 steps, so that `rllib plot` has returns.
    small["min_sample_timesteps_per_iteration"] = 50
    args = ["train", "file", str(CONFIGS / "seql-lbf-8x8-2p-2f.yaml")]
    args += ["--stop", '{"training_iteration": 1}', "--config", json.dumps(small)]
    assert main([*args, "--storage-path", str(tmp_path)]) == 0
    (result_file,) = tmp_path.glob("seql-lbf-8x8-2p-2f/*/result.json")
    result = json.loads(result_file.read_text().splitlines()[-1])
    assert result["training_iteration"] == 1
    assert result["config"]["share_experience"] is True
    assert "qf_loss" in result["learners"]["agent_0"]
    out = tmp_path / "fig.png"
    assert main(["plot", str(tmp_path / "seql-lbf-8x8-2p-2f"), "--out", str(out)]) == 0
    assert out.stat().st_size > 0
