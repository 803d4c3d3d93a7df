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


def test_time_limit_is_a_truncation_not_a_terminal():
    env = make_env("rware-tiny-2ag-v2", {"max_steps": 7})
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for step in range(1, 8):
        actions = {aid: int(rng.integers(5)) for aid in env.possible_agents}
        _, _, terminateds, truncateds, _ = env.step(actions)
        assert not terminateds["__all__"]
        assert truncateds["__all__"] == (step == 7)
