"""FastWarehouse against rware 2.0.0's own Warehouse, stepped side by side."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import rware  # noqa: F401  (registers the rware-* ids)
from rware.warehouse import ObservationType, RewardType, Warehouse

from rllib_seac import make_env
from rllib_seac.envs.env_batch import EnvBatch
from rllib_seac.envs.fast_rware import FastWarehouse

# A warehouse small enough for random agents to deliver shelves now and then.
DELIVERY_LAYOUT = """
xxx
.g.
"""


def pair(env_id: str, **kwargs) -> tuple[Warehouse, FastWarehouse]:
    spec = gym.spec(env_id)
    fast_spec = dataclasses.replace(spec, entry_point=FastWarehouse)
    return (
        gym.make(spec, disable_env_checker=True, **kwargs).unwrapped,
        gym.make(fast_spec, disable_env_checker=True, **kwargs).unwrapped,
    )


def assert_same_obs(a, b):
    """Equal values and dtypes, through rware's nested tuples and dicts."""
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_obs(a[key], b[key])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_obs(x, y)
    else:
        assert np.asarray(a).dtype == np.asarray(b).dtype and np.array_equal(a, b)


def run_side_by_side(reference, fast, steps: int, p_forward: float, seed: int = 0) -> dict:
    """Steps both with the same random actions; returns what the run went through."""
    seen = {"fallbacks": 0, "reward": 0.0, "episodes": 0}
    resolve = fast._committed_agents_networkx

    def counting(moves):
        seen["fallbacks"] += 1
        return resolve(moves)

    fast._committed_agents_networkx = counting
    assert_same_obs(reference.reset(seed=seed)[0], fast.reset(seed=seed)[0])
    rng = np.random.default_rng(seed)
    p = np.full(5, (1 - p_forward) / 4)
    p[1] = p_forward  # FORWARD: more of it, more contested cells
    for t in range(steps):
        actions = rng.choice(5, size=reference.n_agents, p=p).tolist()
        if reference.msg_bits:
            actions = [[a, *rng.integers(2, size=reference.msg_bits)] for a in actions]
        expected, got = reference.step(actions), fast.step(actions)
        assert_same_obs(expected[0], got[0])
        assert expected[1:] == got[1:], f"step {t}"
        seen["reward"] += sum(expected[1])
        if expected[2]:
            seen["episodes"] += 1
            assert_same_obs(reference.reset()[0], fast.reset()[0])
    assert reference.np_random.bit_generator.state == fast.np_random.bit_generator.state
    return seen


@pytest.mark.parametrize(
    "env_id, steps, p_forward",
    [
        ("rware-tiny-2ag-v2", 3000, 0.2),
        ("rware-tiny-4ag-v2", 3000, 0.5),
        ("rware-small-4ag-hard-v2", 1500, 0.3),
        ("rware-tiny-19ag-v2", 600, 0.7),
    ],
)
def test_registered_tasks_give_rwares_trajectories(env_id, steps, p_forward):
    seen = run_side_by_side(*pair(env_id), steps, p_forward)
    assert seen["episodes"] >= 1  # resets at the 500-step limit were compared too


def test_contested_cells_go_to_rwares_own_resolution():
    # Crowded: two chains of robots often ask for one free cell. Which one moves is
    # decided by networkx's traversal order, so FastWarehouse hands those steps over.
    seen = run_side_by_side(*pair("rware-tiny-19ag-v2"), 300, p_forward=0.7)
    assert 0 < seen["fallbacks"] < 300


@pytest.mark.parametrize("reward_type", list(RewardType))
def test_deliveries_rewards_and_new_requests_match(reward_type):
    reference, fast = pair(
        "rware-tiny-2ag-v2",
        layout=DELIVERY_LAYOUT,
        n_agents=3,
        request_queue_size=1,
        reward_type=reward_type,
    )
    seen = run_side_by_side(reference, fast, 4000, p_forward=0.3)
    assert seen["reward"] > 0


def test_messages_wider_sensors_and_inactivity_limit_match():
    reference, fast = pair("rware-tiny-4ag-v2", msg_bits=2, sensor_range=2, max_inactivity_steps=40)
    seen = run_side_by_side(reference, fast, 1500, p_forward=0.4)
    assert seen["episodes"] >= 10  # ended by the inactivity limit


@pytest.mark.parametrize(
    "kwargs",
    [dict(normalised_coordinates=True), dict(observation_type=ObservationType.DICT)],
    ids=["normalised-coordinates", "dict-observations"],
)
def test_observation_types_it_does_not_accelerate_are_rwares(kwargs):
    run_side_by_side(*pair("rware-tiny-2ag-v2", **kwargs), 300, p_forward=0.3)


def test_the_wrapper_uses_it_unless_told_not_to():
    assert type(make_env("rware-tiny-2ag-v2").env.unwrapped) is FastWarehouse
    own = make_env("rware-tiny-2ag-v2", {"fast_step": False, "max_steps": 9})
    assert type(own.env.unwrapped) is Warehouse
    assert own.env.unwrapped.max_steps == 9


@pytest.mark.parametrize(
    "env_id, config",
    [
        ("rware-tiny-2ag-v2", {"max_steps": 30}),
        ("rware-tiny-4ag-v2", {"max_steps": 45, "time_limit_terminal": True}),
        (
            "rware-tiny-2ag-v2",
            {"layout": DELIVERY_LAYOUT, "n_agents": 3, "request_queue_size": 1, "max_steps": 50},
        ),
    ],
)
def test_a_batch_steps_as_arrays_exactly_as_env_by_env(env_id, config):
    arrays, by_env = (EnvBatch(env_id, config, 4, seed=3) for _ in range(2))
    by_env._arrays = False  # each env's own `step`, as any other env
    assert np.array_equal(arrays.reset(), by_env.reset())
    rng = np.random.default_rng(0)
    seen = {"ended": 0, "reward": 0.0}
    for t in range(400):
        actions = rng.choice(5, size=(len(arrays.agent_ids), 4), p=[0.15, 0.4, 0.15, 0.15, 0.15])
        got, expected = arrays.step(actions), by_env.step(actions)
        for key, value in expected.items():
            assert got[key].dtype == value.dtype and np.array_equal(got[key], value), (key, t)
        assert arrays._arrays
        seen["ended"] += int(expected["ended"].sum())
        seen["reward"] += float(expected["rewards"].sum())
    assert seen["ended"] >= 4 * 400 // 50  # resets compared too
    if "layout" in config:
        assert seen["reward"] > 0


def test_envs_it_cannot_batch_step_one_by_one():
    batch = EnvBatch("rware-tiny-2ag-v2", {"fast_step": False}, 2, seed=0)
    batch.reset()
    batch.step(np.zeros((2, 2), np.int64))
    assert batch._arrays is False
