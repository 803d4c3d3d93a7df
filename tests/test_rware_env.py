"""The rware wrapper against the real rware 2.x env."""

import numpy as np

from rllib_seac import env_names, make_env
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
