"""The rware wrapper against the real rware 2.x env."""

import numpy as np
import pytest

from rllib_seac import env_names, make_env
from rllib_seac.envs.checks import EnvConfigError
from tests.env_contract import assert_reset_step_contract


def test_all_rware_ids_are_known():
    names = env_names()
    assert {"rware-tiny-2ag-v2", "rware-tiny-4ag-v2", "rware-small-4ag-v2"} <= set(names)
    assert "rware-tiny-2ag-hard-v2" in names


def test_spaces_reset_and_step_contract():
    env = make_env("rware-tiny-4ag-v2")
    assert env.possible_agents == ["agent_0", "agent_1", "agent_2", "agent_3"]
    assert_reset_step_contract(env, n_actions=5)


def _episode_end_flags(env_config: dict) -> list[tuple[bool, bool]]:
    """(terminated, truncated) of "__all__" at each step of a 7-step episode."""
    env = make_env("rware-tiny-2ag-v2", {"max_steps": 7, **env_config})
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    flags = []
    for _ in range(7):
        actions = {aid: int(rng.integers(5)) for aid in env.possible_agents}
        _, _, terminateds, truncateds, _ = env.step(actions)
        assert all(terminateds[a] == terminateds["__all__"] for a in env.possible_agents)
        assert all(truncateds[a] == truncateds["__all__"] for a in env.possible_agents)
        flags.append((terminateds["__all__"], truncateds["__all__"]))
    return flags


def test_time_limit_is_a_truncation_not_a_terminal():
    assert _episode_end_flags({}) == [(False, False)] * 6 + [(False, True)]


def test_time_limit_terminal_makes_the_last_step_a_terminal():
    # The authors' treatment of RWARE's time limit: the learner does not bootstrap there.
    flags = _episode_end_flags({"time_limit_terminal": True})
    assert flags == [(False, False)] * 6 + [(True, False)]


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("n_agents", 0, "n_agents must be an integer >= 1, got 0"),
        ("shelf_columns", 2, "shelf_columns must be an odd integer >= 1"),
        ("shelf_columns", -1, "shelf_columns must be an integer >= 1, got -1"),
        ("column_height", 0, "column_height must be an integer >= 1, got 0"),
        ("shelf_rows", 0, "shelf_rows must be an integer >= 1, got 0"),
        ("request_queue_size", 0, "request_queue_size must be an integer >= 1, got 0"),
        ("sensor_range", 0, "sensor_range must be an integer >= 1, got 0"),
        ("msg_bits", -1, "msg_bits must be an integer >= 0, got -1"),
        ("max_steps", 0, "max_steps must be an integer >= 1 (or null for none), got 0"),
    ],
)
def test_sizes_and_counts_out_of_range_are_refused(key, value, message):
    with pytest.raises(EnvConfigError) as error:
        make_env("rware-tiny-2ag-v2", {key: value})
    assert str(error.value).startswith(f"Bad env config for rware-tiny-2ag-v2: {message}")
