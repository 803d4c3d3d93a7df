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
from rllib_seac.checkpoints import CheckpointError
from rllib_seac.cli import main
from rllib_seac.seql import replay_buffer
from rllib_seac.seql.algorithm import COMPONENT_IN_PROCESS_LOOP
from rllib_seac.seql.replay_buffer import AgentReplayBuffers
from tests.envs_for_tests import SpacesEnv, UnpicklableLbfEnv

RWARE = "rware-tiny-2ag-v2"
LBF = "Foraging-8x8-2p-2f-v3"
CONFIGS = Path(__file__).resolve().parents[1] / "tuned_configs"
BATCH, STEPS_PER_ITER = 8, 20
AGENTS = {RWARE: ["agent_0", "agent_1"], LBF: ["agent_0", "agent_1"]}


def tiny_config(env, share: bool, loop: str = "in_process") -> SEQLConfig:
    env_config = {"max_episode_steps": 10} if env == LBF else {"max_steps": 10}
    return (
        SEQLConfig()
        .environment(env, env_config=env_config)
        .training(
            share_experience=share,
            loop=loop,
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
        loop = algo._loop
        assert loop.buffers.size == 2 * STEPS_PER_ITER
        assert loop.batch_per_agent == (BATCH // 2 if share else BATCH)
        # After the first update (autograd: it makes Adam's state), the fused one.
        assert loop._fused is not None and loop._fused.is_current()
        # The env runner (used by evaluate()) holds the learner's weights.
        learner_weights = algo.learner_group.get_weights()["agent_0"]
        runner_weights = algo.env_runner.module["agent_0"].get_state()
        for key, value in runner_weights.items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(learner_weights[key]))
    finally:
        algo.stop()


@pytest.mark.parametrize("share", [True, False], ids=["SEQL", "IQL"])
def test_rllib_loop_trains_two_iterations(share):
    algo = tiny_config(LBF, share, loop="rllib").build_algo()
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


def test_loop_is_deterministic_for_a_fixed_seed():
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
        # store_buffer_in_checkpoints=False (the default): no buffers, no env.
        assert COMPONENT_IN_PROCESS_LOOP not in algo.get_state()
    finally:
        algo.stop()
    restored = SEQL.from_checkpoint(path)
    try:
        weights = restored.get_module("agent_0").state_dict()
        assert saved.keys() == weights.keys()
        for key in saved:
            np.testing.assert_array_equal(np.asarray(saved[key]), np.asarray(weights[key]))
        # It trains on from the checkpoint's step count, on new buffers.
        result = restored.train()
        assert result["num_env_steps_sampled_lifetime"] == 2 * STEPS_PER_ITER
        assert restored._loop.buffers.size == STEPS_PER_ITER
        assert np.isfinite(result["learners"]["agent_0"]["qf_loss"])
    finally:
        restored.stop()
    result = evaluate(path, episodes=2, seed=0)
    assert result.algorithm == "SEQL"
    assert result.policy.startswith("greedy")
    assert len(result.total_returns) == 2


BUFFER_COLUMNS = ("obs", "next_obs", "actions", "rewards", "terminateds")


def buffer_config(env, share: bool, capacity: int = 1_000_000) -> SEQLConfig:
    """tiny_config with the loop's state in checkpoints and the paper's 25-step LBF
    episodes: a checkpoint after 2 iterations (40 steps) falls mid-episode, after
    (with seed 8) an agent has collected food in that episode."""
    config = tiny_config(LBF, share).environment(env, env_config={"max_episode_steps": 25})
    return config.training(
        store_buffer_in_checkpoints=True, replay_buffer_config={"capacity": capacity}
    ).debugging(seed=8)


def filled_rows(algo) -> dict[str, np.ndarray]:
    buffers = algo._loop.buffers
    return {col: getattr(buffers, col)[:, : buffers.size].copy() for col in BUFFER_COLUMNS}


def learner_figures(result) -> dict:
    return {aid: result["learners"][aid] for aid in AGENTS[LBF]}


# IQL with a buffer smaller than the 40 steps saved: the ring has wrapped.
@pytest.mark.parametrize("share, capacity", [(True, 1_000_000), (False, 32)], ids=["SEQL", "IQL"])
def test_checkpoint_with_buffers_continues_exactly(tmp_path, share, capacity):
    algo = buffer_config(LBF, share, capacity).build_algo()
    try:
        for _ in range(2):
            algo.train()
        path = algo.save_to_path(tmp_path / "ckpt")
        saved_weights = algo.learner_group.get_weights()
        loop_state = algo.get_state()[COMPONENT_IN_PROCESS_LOOP]
        assert loop_state["episode"] is not None  # LBF pickles: mid-episode, 15 steps in
        assert loop_state["episode"][3] == 2 * STEPS_PER_ITER - 25
        assert loop_state["episode"][2].any()  # the running episode sums
        expected = algo.train()  # the run that never stopped
        expected_weights = algo.learner_group.get_weights()
        expected_rows = filled_rows(algo)
        # Restored into the same algo, which has moved on since.
        algo.train()
        algo.restore_from_path(path)
        runs = [(algo.train(), algo.learner_group.get_weights(), filled_rows(algo))]
    finally:
        algo.stop()
    restored = SEQL.from_checkpoint(path)  # a new algo
    try:
        runs.append((restored.train(), restored.learner_group.get_weights(), filled_rows(restored)))
    finally:
        restored.stop()
    assert len(expected_rows["obs"][0]) == min(3 * STEPS_PER_ITER, capacity)
    # The iteration after the checkpoint trained (so equal weights say something).
    moved = expected_weights["agent_0"]["encoder.net.mlp.0.weight"]
    assert not np.array_equal(moved, saved_weights["agent_0"]["encoder.net.mlp.0.weight"])
    for result, weights, rows in runs:
        for col in BUFFER_COLUMNS:
            np.testing.assert_array_equal(rows[col], expected_rows[col], err_msg=col)
        for aid in AGENTS[LBF]:
            for key, value in expected_weights[aid].items():
                np.testing.assert_array_equal(weights[aid][key], value, err_msg=f"{aid} {key}")
        assert learner_figures(result) == learner_figures(expected)
        # Episode returns, lengths and counts (the running sums were in the checkpoint).
        assert without_throughputs(result["env_runners"]) == without_throughputs(
            expected["env_runners"]
        )


def without_throughputs(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if "throughput" not in k}


def test_checkpoint_of_an_env_that_cannot_be_pickled_keeps_the_buffers(tmp_path):
    algo = buffer_config(UnpicklableLbfEnv, True).build_algo()
    try:
        for _ in range(2):
            algo.train()
        path = algo.save_to_path(tmp_path / "ckpt")
        saved_rows = filled_rows(algo)
    finally:
        algo.stop()
    restored = SEQL.from_checkpoint(path)
    try:
        loop = restored._loop
        for col in BUFFER_COLUMNS:
            np.testing.assert_array_equal(filled_rows(restored)[col], saved_rows[col])
        assert loop._obs is None and loop._length == 0  # it starts a new episode
        restored.train()
        assert loop.buffers.size == 3 * STEPS_PER_ITER
    finally:
        restored.stop()


# 3: get_state and set_state go through the rows in chunks (65,536 for real).
@pytest.mark.parametrize("chunk_rows", [None, 3], ids=["one-chunk", "chunks-of-3"])
def test_replay_buffers_state_is_compact_and_restores_the_same_samples(monkeypatch, chunk_rows):
    if chunk_rows:
        monkeypatch.setattr(replay_buffer, "_CHUNK_ROWS", chunk_rows)
    rng = np.random.default_rng(0)
    buffers = AgentReplayBuffers(2, capacity=7, obs_shape=(3,))
    obs = rng.normal(size=(2, 3)).astype(np.float32)
    ends = {3, 8}  # steps after which an episode ended: the next obs is a reset obs
    for step in range(10):
        next_obs = rng.normal(size=(2, 3)).astype(np.float32)
        if step == 5:
            next_obs[1, 0] = -0.0  # equal to 0.0 but not bit for bit
        buffers.add(obs, rng.integers(0, 5, 2), rng.normal(size=2), next_obs, [False, True])
        obs = rng.normal(size=(2, 3)).astype(np.float32) if step in ends else next_obs.copy()
        if step == 5:
            obs[1, 0] = 0.0
    state = buffers.get_state()
    # Rows in ring order: steps 7, 8, 9, 3, 4, 5, 6. The next obs kept: steps 8 and 3
    # (episode ends), 5 (-0.0 vs 0.0) and 9, the newest (its next row is step 3's).
    assert state["next_obs_rows"].tolist() == [1, 2, 3, 5]
    assert state["actions"].dtype == np.uint8 and (state["size"], state["next"]) == (7, 3)
    restored = AgentReplayBuffers(2, capacity=7, obs_shape=(3,))
    restored.set_state(state)
    for col in BUFFER_COLUMNS:
        saved, loaded = getattr(buffers, col), getattr(restored, col)
        assert saved.tobytes() == loaded.tobytes(), col
    first = buffers.sample(4, np.random.default_rng(1))
    second = restored.sample(4, np.random.default_rng(1))
    for col, value in first.items():
        np.testing.assert_array_equal(second[col], value)
    with pytest.raises(CheckpointError, match="capacity'\\] is 8, but the checkpoint's replay"):
        AgentReplayBuffers(2, capacity=8, obs_shape=(3,)).set_state(state)


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
        ({"loop": "direct"}, "loop must be one of ('in_process', 'rllib'), got 'direct'"),
        (
            {"loop": "rllib", "store_buffer_in_checkpoints": True},
            "store_buffer_in_checkpoints must be False with loop='rllib'",
        ),
    ],
)
def test_bad_settings_name_key_and_value(settings, message):
    with pytest.raises(SEQLConfigError, match="Bad SEQL config") as err:
        SEQLConfig().environment(LBF).training(**settings).validate()
    assert message in str(err.value)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"lr": -1}, "lr must be a number > 0 (or a schedule of such), got -1."),
        ({"lr": 0}, "lr must be a number > 0 (or a schedule of such), got 0."),
        ({"gamma": -1}, "gamma must be a number in (0, 1], got -1."),
        ({"gamma": 1.5}, "gamma must be a number in (0, 1], got 1.5."),
        ({"epsilon": 1.5}, "epsilon must be a number in [0, 1] (or a schedule of such"),
        ({"epsilon": -1}, "epsilon must be a number in [0, 1] (or a schedule of such"),
        ({"epsilon": [[0, 1.0], [10, -0.1]]}, "epsilon must be a number in [0, 1]"),
        ({"epsilon": [[10, 1.0], [0, 0.1]]}, "epsilon must be a number in [0, 1]"),
        ({"grad_clip": 0}, "grad_clip must be a number > 0 (or None: no clipping), got 0."),
        ({"grad_clip": -1}, "grad_clip must be a number > 0 (or None: no clipping), got -1."),
        (
            {"num_steps_sampled_before_learning_starts": -1},
            "num_steps_sampled_before_learning_starts must be an integer >= 0, got -1.",
        ),
        ({"seql_lambda": float("inf")}, "seql_lambda must be a number >= 0, got inf."),
        ({"seql_lambda": float("nan")}, "seql_lambda must be a number >= 0, got nan."),
        ({"seql_lambda": -1}, "seql_lambda must be a number >= 0, got -1."),
        ({"tau": 0}, "tau must be a number in (0, 1], got 0."),
        ({"tau": -1}, "tau must be a number in (0, 1], got -1."),
        ({"train_batch_size_per_learner": 0}, "train_batch_size_per_learner must be an integer"),
        ({"train_batch_size_per_learner": -1}, "train_batch_size_per_learner must be an integer"),
        ({"replay_buffer_config": {"capacity": 0}}, "replay_buffer_config['capacity'] must be"),
        ({"replay_buffer_config": {"capacity": 10**12}}, "these settings need at least"),
        ({"torch_num_threads": -1}, "torch_num_threads must be an integer >= 1"),
        ({"seed": -1}, "seed must be an integer from 0 to 2**32-1 (or None), got -1."),
        ({"seed": 2**32}, "seed must be an integer from 0 to 2**32-1"),
        ({"num_env_runners": -1}, "num_env_runners must be an integer >= 0, got -1."),
        ({"num_cpus_for_main_process": -1}, "num_cpus_for_main_process must be a number >= 0"),
    ],
)
def test_bad_dqn_settings_are_refused_by_build_algo(settings, message):
    # build_algo(): RLlib's get_state() drops values equal to -1 before the
    # Algorithm validates its copy of the config, so -1 must survive that copy.
    config = SEQLConfig().environment(LBF).update_from_dict(settings)
    with pytest.raises(SEQLConfigError, match="Bad SEQL config") as err:
        config.build_algo()
    assert message in str(err.value)


def test_hidden_layers_too_large_for_memory_are_refused():
    config = SEQLConfig().environment(LBF).rl_module(model_config={"fcnet_hiddens": [10**9]})
    with pytest.raises(SEQLConfigError, match="these settings need at least .* of memory"):
        config.validate()
    config = SEQLConfig().environment(LBF).rl_module(model_config={"fcnet_hiddens": [0]})
    with pytest.raises(SEQLConfigError, match="fcnet_hiddens must be a list of layer sizes"):
        config.validate()


def test_loop_refuses_remote_runners_and_names_the_way_out():
    config = SEQLConfig().environment(LBF).env_runners(num_env_runners=2)
    with pytest.raises(SEQLConfigError) as err:
        config.validate()
    assert "num_env_runners must be 0 with loop='in_process'" in str(err.value)
    assert "got 2; set loop='rllib'" in str(err.value)
    config.training(loop="rllib").validate()


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


def test_build_algo_leaves_no_empty_results_folder():
    algo = SEQLConfig().environment(LBF).build_algo()
    logdir = Path(algo.logdir)
    assert logdir.is_dir()
    algo.stop()
    assert not logdir.exists()


def test_a_gpu_learner_is_refused_by_the_in_process_loop_in_one_line():
    config = SEQLConfig().environment(LBF).learners(num_gpus_per_learner=1)
    with pytest.raises(SEQLConfigError) as err:
        config.validate()
    assert "num_gpus_per_learner must be 0 with loop='in_process'" in str(err.value)
    assert "set loop='rllib'" in str(err.value)


@pytest.mark.parametrize("old, loop", [(True, "in_process"), (False, "rllib")])
def test_a_config_saved_with_the_loops_old_name_keeps_its_loop(old, loop):
    state = SEQLConfig().environment(LBF).get_state()
    del state["loop"]
    state["direct_loop"] = old  # as checkpoints saved before the rename hold it
    config = SEQLConfig.from_state(state)
    config.validate()
    assert config.loop == loop and "direct_loop" not in vars(config)
