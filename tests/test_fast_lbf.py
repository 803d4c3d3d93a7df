"""FastForaging against lbforaging 2.0.0's own ForagingEnv, stepped side by side."""

import pickle

import gymnasium as gym
import lbforaging  # noqa: F401  (registers the Foraging-* ids)
import numpy as np
import pytest
from lbforaging.foraging import ForagingEnv

from rllib_seac import make_env
from rllib_seac.envs.fast_lbf import FastForaging

CASES = [
    ("Foraging-8x8-2p-2f-v3", {"max_episode_steps": 25}),
    ("Foraging-8x8-2p-2f-coop-v3", {"max_episode_steps": 25}),
    ("Foraging-15x15-3p-4f-v3", {"max_episode_steps": 25}),
    # Sight 2: agents and food out of sight, windows cut by the border.
    ("Foraging-2s-8x8-2p-2f-v3", {}),
    ("Foraging-2s-15x15-3p-4f-v3", {"observe_agent_levels": False, "penalty": 0.1}),
]


def pair(env_id: str, config: dict) -> tuple[ForagingEnv, FastForaging]:
    kwargs = {**gym.spec(env_id).kwargs, **config}
    return ForagingEnv(**kwargs), FastForaging(**kwargs)


def assert_same(reference_obs, fast_obs):
    assert len(reference_obs) == len(fast_obs)
    for a, b in zip(reference_obs, fast_obs):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b), (a, b)


def valid_actions(env) -> list:
    return [env._valid_actions[p] for p in env.players]


@pytest.mark.parametrize("env_id, config", CASES)
def test_fast_foraging_steps_as_lbforaging_does(env_id, config):
    reference, fast = pair(env_id, config)
    seen = {"loads": 0, "episodes": 0, "hidden": 0}
    for seed in (0, 1):
        assert_same(reference.reset(seed=seed)[0], fast.reset(seed=seed)[0])
        rng = np.random.default_rng(seed)
        p = np.array([0.1, 0.15, 0.15, 0.15, 0.15, 0.3])  # LOAD often: more loads
        for _ in range(1500):
            actions = rng.choice(6, size=len(reference.players), p=p).tolist()
            ref_step, fast_step = reference.step(actions), fast.step(actions)
            assert_same(ref_step[0], fast_step[0])
            assert ref_step[1:] == fast_step[1:]  # rewards, done, truncated, info
            assert valid_actions(reference) == valid_actions(fast)
            seen["loads"] += sum(r > 0 for r in ref_step[1])
            seen["hidden"] += sum(int((obs == -1).sum()) for obs in ref_step[0])
            if ref_step[2]:
                seen["episodes"] += 1
                assert_same(reference.reset()[0], fast.reset()[0])
        assert reference.np_random.bit_generator.state == fast.np_random.bit_generator.state
    # The run went through what the observations encode: loads, episode ends, and
    # food or agents out of sight (a -1 slot).
    assert seen["loads"] > 0 and seen["episodes"] > 2 and seen["hidden"] > 0, seen


def test_lbforaging_ids_step_with_fast_foraging_unless_fast_step_is_false():
    fast = make_env("Foraging-8x8-2p-2f-v3", {"max_episode_steps": 25})
    assert type(fast.env) is FastForaging
    own = make_env("Foraging-8x8-2p-2f-v3", {"max_episode_steps": 25, "fast_step": False})
    assert type(own.env) is ForagingEnv
    for env in (fast, own):
        env.close()


def test_an_env_pickled_before_fast_step_goes_on_exactly_with_fast_foraging():
    # A checkpoint's env mid-episode, pickled when LbfEnv held lbforaging's class
    # and had no fast_step: restored, it steps with FastForaging and continues as
    # lbforaging's own class does.
    old = make_env("Foraging-8x8-2p-2f-v3", {"max_episode_steps": 25, "fast_step": False})
    old.reset(seed=3)
    for _ in range(5):
        old.step(dict.fromkeys(old.agents, 5))
    reference = pickle.loads(pickle.dumps(old))  # fast_step false: lbforaging's class
    del old.__dict__["_fast_step"]
    restored = pickle.loads(pickle.dumps(old))
    assert type(restored.env) is FastForaging and type(reference.env) is ForagingEnv
    rng = np.random.default_rng(3)
    for _ in range(200):
        actions = dict(zip(old.agents, rng.integers(0, 6, len(old.agents)).tolist()))
        ours, theirs = restored.step(actions), reference.step(actions)
        for a, b in zip(ours, theirs):
            assert a.keys() == b.keys()
            assert all(np.array_equal(a[k], b[k]) for k in a)
        if ours[2]["__all__"] or ours[3]["__all__"]:
            assert_same(restored.env.reset()[0], reference.env.reset()[0])
