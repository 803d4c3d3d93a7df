"""End to end on the real rware env and a real (shared) Ray instance."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import ray
import torch

from rllib_seac import SEAC, SEACConfig
from rllib_seac.checkpoints import CheckpointError

RWARE = "rware-tiny-2ag-v2"
UPDATES = 10  # per iteration; 4 envs x 5 steps = 20 env steps per update


def build(env_config=None, env_processes=0, env=RWARE, **training):
    config = (
        SEACConfig()
        .environment(env, env_config=env_config or {})
        .training(updates_per_iteration=UPDATES, **training)
        .env_runners(num_env_processes_per_env_runner=env_processes)
        .debugging(seed=0)
    )
    return config.build_algo()


def weights(algo, module_id):
    return {k: v.clone() for k, v in algo.get_module(module_id).state_dict().items()}


@pytest.mark.parametrize(
    "variant, training, modules, has_is_weights",
    [
        ("SEAC", dict(seac_lambda=1.0), ["agent_0", "agent_1"], True),
        ("SEAC-authors-target", dict(seac_target="authors"), ["agent_0", "agent_1"], True),
        ("IAC", dict(seac_lambda=0.0), ["agent_0", "agent_1"], False),
        ("SNAC", dict(shared_policy=True), ["shared"], False),
    ],
)
def test_two_iterations(variant, training, modules, has_is_weights):
    algo = build(**training)
    try:
        before = {m: weights(algo, m) for m in modules}
        algo.train()
        result = algo.train()
        after = {m: weights(algo, m) for m in modules}
    finally:
        algo.stop()
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] == 2 * UPDATES * 20
    learners = result["learners"]
    # RLlib's steps-trained counters, which SEAC's learner logs once per report.
    assert learners["__all_modules__"]["num_env_steps_trained"] == UPDATES * 20
    assert learners["__all_modules__"]["num_env_steps_trained_lifetime"] == 2 * UPDATES * 20
    samples_per_module = UPDATES * 20 * (2 if modules == ["shared"] else 1)
    for m in modules:
        stats = learners[m]
        assert stats["num_module_steps_trained"] == samples_per_module
        assert stats["weights_seq_no"] == 2 * UPDATES
        assert np.isfinite(stats["total_loss"])
        for key in ("policy_loss", "value_loss", "entropy"):
            assert np.isfinite(stats[key]), (variant, m, key)
        assert ("is_weight_mean" in stats) == has_is_weights
        if has_is_weights:
            assert stats["is_weight_min"] <= stats["is_weight_mean"] <= stats["is_weight_max"]
            assert stats["is_weight_min"] <= stats["is_weight_q05"] <= stats["is_weight_q95"]
        # Every module was trained: its weights moved.
        assert any(not torch.equal(before[m][k], after[m][k]) for k in before[m]), m


def test_two_agents_per_module_train_as_the_user_grouped_them():
    def pairs(agent_id, episode=None, **kwargs):
        return "front" if agent_id in ("agent_0", "agent_1") else "back"

    config = (
        SEACConfig()
        .environment("rware-tiny-4ag-v2")
        .training(updates_per_iteration=2)
        .multi_agent(policies=["front", "back"], policy_mapping_fn=pairs)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        before = {m: weights(algo, m) for m in ("front", "back")}
        result = algo.train()
        after = {m: weights(algo, m) for m in ("front", "back")}
        assert set(algo.config.policies) == {"front", "back"}
    finally:
        algo.stop()
    for m in ("front", "back"):
        stats = result["learners"][m]
        # Two agents' data per update: 2 x 4 envs x 5 steps, 2 updates.
        assert stats["num_module_steps_trained"] == 2 * 2 * 20
        assert np.isfinite(stats["total_loss"]) and "is_weight_mean" in stats
        assert any(not torch.equal(before[m][k], after[m][k]) for k in before[m]), m


def adam_state(algo, module_id) -> dict:
    """Adam's step count and moments of each of the module's parameters."""
    state = algo.learner_group.get_state(components="learner/optimizer")["learner"]
    return state["optimizer"][f"{module_id}_default_optimizer"]["state"]["state"]


def test_checkpoint_restores_weights_counters_and_optimizer(tmp_path):
    algo = build()
    try:
        algo.train()
        saved = weights(algo, "agent_1")
        saved_adam = adam_state(algo, "agent_1")
        path = algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    restored = SEAC.from_checkpoint(path)
    try:
        for k, v in restored.get_module("agent_1").state_dict().items():
            assert torch.equal(v, saved[k]), k
        for param, moments in adam_state(restored, "agent_1").items():
            assert moments["step"] == saved_adam[param]["step"] == UPDATES
            for name in ("exp_avg", "exp_avg_sq"):
                np.testing.assert_array_equal(moments[name], saved_adam[param][name])
        result = restored.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] == 2 * UPDATES * 20
    finally:
        restored.stop()


@pytest.mark.parametrize(
    "env, env_config, agent",
    [
        (RWARE, {"max_steps": 13}, "agent_1"),
        ("Foraging-8x8-2p-2f-v3", {"max_episode_steps": 13}, "agent_1"),
        # MPE's envs pickle as their constructor's arguments unless the adapter keeps
        # their state.
        ("predator-prey-sparse", {"max_cycles": 13}, "adversary_1"),
    ],
)
def test_a_run_split_by_a_checkpoint_continues_exactly(tmp_path, env, env_config, agent):
    # 13-step episodes: the checkpoint falls mid-episode in every env, so the envs,
    # the observations to act on, the episode sums and the action stream must all be
    # in it for the two halves to equal one unbroken run.
    unbroken = build(env_config, env=env)
    try:
        expected = [unbroken.train() for _ in range(2)][1]
        expected_weights = weights(unbroken, agent)
    finally:
        unbroken.stop()
    first = build(env_config, env=env)
    try:
        first.train()
        path = first.save_to_path(str(tmp_path / "ckpt"))
    finally:
        first.stop()
    second = SEAC.from_checkpoint(path)
    try:
        result = second.train()
        resumed_weights = weights(second, agent)
    finally:
        second.stop()
    for k, v in expected_weights.items():
        assert torch.equal(v, resumed_weights[k]), k
    for key in ("episode_return_mean", "num_env_steps_sampled_lifetime", "num_episodes"):
        assert result["env_runners"][key] == expected["env_runners"][key], key
    assert result["learners"][agent]["policy_loss"] == expected["learners"][agent]["policy_loss"]


@pytest.mark.parametrize("overlap_sampling", [False, True])
def test_remote_env_runners_sample_for_the_learner(overlap_sampling):
    config = (
        SEACConfig()
        .environment(RWARE)
        .training(updates_per_iteration=UPDATES, overlap_sampling=overlap_sampling)
        .env_runners(num_env_runners=2, num_envs_per_env_runner=2)
    )
    algo = config.build_algo()
    try:
        first = algo.train()
        second = algo.train()
    finally:
        algo.stop()
    # Each update consumes one rollout of 2 runners x 2 envs x 5 steps; with
    # overlap one more rollout is in flight and lands in the next iteration.
    steps = [r["env_runners"]["num_env_steps_sampled_lifetime"] for r in (first, second)]
    extra = 20 if overlap_sampling else 0
    assert steps == [UPDATES * 20 + extra, 2 * UPDATES * 20 + extra]
    assert np.isfinite(second["learners"]["agent_0"]["policy_loss"])


def test_env_given_as_a_function_of_the_env_config():
    from rllib_seac import make_env

    config = (
        SEACConfig()
        .environment(lambda cfg: make_env("rware-tiny-2ag-v2", cfg), env_config={"max_steps": 20})
        .training(updates_per_iteration=UPDATES)
    )
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    assert result["env_runners"]["episode_len_mean"] == 20


def fingerprint(env_config=None, env_processes=0, env=RWARE):
    """Per-iteration figures of 3 iterations and agent_1's final weights."""
    algo = build(env_config, env_processes, env)
    try:
        results = [algo.train() for _ in range(3)]
        return [
            (
                r["env_runners"].get("episode_return_mean"),
                r["learners"]["agent_0"]["policy_loss"],
                r["learners"]["agent_1"]["value_loss"],
                r["learners"]["agent_1"]["is_weight_max"],
            )
            for r in results
        ], weights(algo, "agent_1")
    finally:
        algo.stop()


def test_same_seed_same_config_gives_identical_runs():
    (first, first_weights), (second, second_weights) = fingerprint(), fingerprint()
    assert first == second
    assert all(torch.equal(first_weights[k], second_weights[k]) for k in first_weights)


FINGERPRINT_SCRIPT = """
import sys, ray
ray.init(address=sys.argv[1])  # the test session's Ray: the algorithm runs in this process
from rllib_seac import SEACConfig
config = SEACConfig().environment("rware-tiny-4ag-v2").training(updates_per_iteration=2)
algo = config.debugging(seed=0).build_algo()
result = algo.train()
print("fingerprint", [result["learners"][f"agent_{i}"]["policy_loss"] for i in range(4)])
"""


@pytest.mark.slow
def test_same_seed_gives_identical_runs_in_processes_with_other_string_hashing():
    # Python salts str hashes per process: a set of module ids once decided which
    # module drew which initial weights, so runs differed across processes.
    gcs = ray.get_runtime_context().gcs_address
    drivers = [
        subprocess.Popen(
            [sys.executable, "-c", FINGERPRINT_SCRIPT, gcs],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for hash_seed in ("1", "2")
    ]
    prints = []
    for driver in drivers:
        out, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err[-2000:]
        prints.append([line for line in out.splitlines() if line.startswith("fingerprint")])
    assert prints[0] == prints[1] != [], prints


def test_an_env_worker_process_gives_the_same_run_as_the_driver():
    # Its rollouts act with each update's new weights (sent through shared memory),
    # so the run is the one-process run, update for update.
    (driver, driver_weights), (worker, worker_weights) = fingerprint(), fingerprint(env_processes=1)
    assert driver == worker
    assert all(torch.equal(driver_weights[k], worker_weights[k]) for k in driver_weights)


def test_rwares_own_step_gives_the_same_run_as_the_fast_one():
    (fast, fast_weights) = fingerprint()
    (own, own_weights) = fingerprint({"fast_step": False})
    assert fast == own
    assert all(torch.equal(fast_weights[k], own_weights[k]) for k in fast_weights)


def test_lbforagings_own_step_gives_the_same_run_as_the_fast_one():
    lbf = {"env": "Foraging-8x8-2p-2f-v3"}
    (fast, fast_weights) = fingerprint({"max_episode_steps": 25}, **lbf)
    (own, own_weights) = fingerprint({"max_episode_steps": 25, "fast_step": False}, **lbf)
    assert fast == own
    assert all(torch.equal(fast_weights[k], own_weights[k]) for k in fast_weights)


def test_a_checkpoint_of_other_agents_is_refused(tmp_path):
    algo = build()  # 2 agents
    try:
        path = algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    four = SEACConfig().environment("rware-tiny-4ag-v2").build_algo()
    try:
        with pytest.raises(CheckpointError, match="trained with 2 agents .* this SEAC has 4"):
            four.restore_from_path(path)
    finally:
        four.stop()


def test_a_checkpoint_saved_before_the_package_layout_moved_restores():
    # Saved by the flat layout (its pickles name rllib_seac.config.SEACConfig,
    # rllib_seac.env_runner.SEACEnvRunner, ...): the old module names still import.
    import importlib

    from rllib_seac import MOVED_MODULES

    for old, new in MOVED_MODULES.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
    # What a checkpoint of the flat layout pickled: classes by their old module path.
    for old, name in [
        ("rllib_seac.config", "SEACConfig"),
        ("rllib_seac.algorithm", "SEAC"),
        ("rllib_seac.env_runner", "SEACEnvRunner"),
        ("rllib_seac.learner", "SEACTorchLearner"),
        ("rllib_seac.rl_module", "SEACTorchRLModule"),
    ]:
        loaded = pickle.loads(f"c{old}\n{name}\n.".encode())
        assert loaded is getattr(importlib.import_module(MOVED_MODULES[old]), name)
    # The RWARE campaign's committed checkpoint (docs/results/) restores and trains on.
    checkpoint = (
        Path(__file__).resolve().parents[1] / "docs/results/rware-tiny-4ag-v2/SEAC-seed0/checkpoint"
    )
    algo = SEAC.from_checkpoint(str(checkpoint))
    try:
        assert algo.config.agent_ids == ["agent_0", "agent_1", "agent_2", "agent_3"]
        trained = {k: v.clone() for k, v in algo.get_module("agent_0").state_dict().items()}
        assert algo.train()["env_runners"]["num_env_steps_sampled_lifetime"] > 0
        after = algo.get_module("agent_0").state_dict()
        assert any(not torch.equal(trained[k], after[k]) for k in trained)
    finally:
        algo.stop()
