"""The PettingZoo adapter on real MPE envs (mpe2), SuperSuit's padding, and SEAC through it."""

import numpy as np
import pytest
import supersuit
from mpe2 import simple_spread_v3, simple_tag_v3
from pettingzoo.utils.conversions import parallel_to_aec
from ray.tune.registry import register_env

from rllib_seac import SEACConfig, make_env
from rllib_seac.envs import PettingZooParallelAdapter
from rllib_seac.envs.pettingzoo import end_of_episode
from tests.env_contract import assert_reset_step_contract

SPREAD_AGENTS = ["agent_0", "agent_1", "agent_2"]


def test_spaces_reset_step_and_time_limit():
    env = PettingZooParallelAdapter(simple_spread_v3.parallel_env(N=3, max_cycles=4))
    assert env.possible_agents == SPREAD_AGENTS
    assert_reset_step_contract(env, n_actions=5)
    _, infos = env.reset(seed=0)
    assert set(infos) == set(SPREAD_AGENTS)
    for step in range(1, 5):
        _, _, terminateds, truncateds, _ = env.step(dict.fromkeys(SPREAD_AGENTS, 0))
        assert not any(terminateds.values())
        assert all(truncateds[k] == (step == 4) for k in truncateds)


@pytest.mark.parametrize("render_mode", [None, "rgb_array"])
def test_an_env_pickled_mid_episode_goes_on_exactly(render_mode):
    # As a checkpoint's env is. MPE's envs pickle as their constructor's arguments
    # (gymnasium's EzPickle), and a rendered one holds a pygame surface that does not
    # pickle at all.
    import pickle

    env = PettingZooParallelAdapter(
        simple_spread_v3.parallel_env(N=3, max_cycles=30, render_mode=render_mode)
    )
    env.reset(seed=1)
    if render_mode:
        assert env.render().ndim == 3
    rng = np.random.default_rng(1)
    actions = [{aid: int(rng.integers(5)) for aid in SPREAD_AGENTS} for _ in range(20)]
    for step in actions[:5]:
        env.step(step)
    restored = pickle.loads(pickle.dumps(env))
    for step in actions[5:]:
        ours, theirs = restored.step(step), env.step(step)
        for a, b in zip(ours, theirs):
            assert a.keys() == b.keys()
            for key in a:
                assert np.array_equal(a[key], b[key]) if key in SPREAD_AGENTS else a[key] == b[key]
    if render_mode:
        assert np.array_equal(restored.render(), env.render())


def test_creator_with_env_config():
    env = PettingZooParallelAdapter(simple_spread_v3.parallel_env, {"N": 2})
    assert env.possible_agents == ["agent_0", "agent_1"]


def test_mismatched_spaces_name_the_agents_and_spaces():
    # simple_tag's prey sees 14 numbers, its predators 16.
    with pytest.raises(ValueError) as error:
        PettingZooParallelAdapter(simple_tag_v3.parallel_env())
    message = str(error.value)
    assert "SEAC needs identical observation spaces" in message
    # Every agent is named with its space, the three predators too.
    assert (
        "These differ: adversary_0, adversary_1, adversary_2: Box(-inf, inf, (16,), float32); "
        "agent_0: Box(-inf, inf, (14,), float32)."
    ) in message
    # SuperSuit's padding makes them one space.
    padded = PettingZooParallelAdapter(supersuit.pad_observations_v0(simple_tag_v3.parallel_env()))
    obs, _ = padded.reset(seed=0)
    assert {o.shape for o in obs.values()} == {(16,)}


def test_untrained_agents_need_their_actions_and_aec_envs_are_refused():
    with pytest.raises(ValueError, match=r"agents \['agent_0'\] are not trained"):
        PettingZooParallelAdapter(
            simple_tag_v3.parallel_env(), agents=["adversary_0", "adversary_1", "adversary_2"]
        )
    with pytest.raises(TypeError, match="aec_to_parallel"):
        PettingZooParallelAdapter(parallel_to_aec(simple_spread_v3.parallel_env()))


def test_episode_ends_for_all_when_any_agent_is_done():
    agents = ["a", "b", "c"]
    terminated, truncated = end_of_episode(
        agents, {"a": False, "b": True, "c": False}, dict.fromkeys(agents, False)
    )
    assert terminated == {"a": False, "b": True, "c": False, "__all__": False}
    assert truncated == {"a": True, "b": False, "c": True, "__all__": True}
    terminated, truncated = end_of_episode(
        agents, dict.fromkeys(agents, True), dict.fromkeys(agents, False)
    )
    assert terminated["__all__"] and not any(truncated.values())
    terminated, truncated = end_of_episode(
        agents, dict.fromkeys(agents, False), dict.fromkeys(agents, False)
    )
    assert not any(terminated.values()) and not any(truncated.values())


def test_seac_trains_through_the_adapter_by_registered_name():
    # RLlib's Algorithm takes an env class or a registered name, not a lambda.
    register_env(
        "test-spread", lambda cfg: PettingZooParallelAdapter(simple_spread_v3.parallel_env, cfg)
    )
    assert make_env("test-spread", {"N": 4}).possible_agents == [*SPREAD_AGENTS, "agent_3"]
    config = (
        SEACConfig()
        .environment("test-spread", env_config={"N": 3, "max_cycles": 10})
        .training(updates_per_iteration=6)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    # 6 updates x 4 envs x 5 steps, in episodes of 10 steps.
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] == 120
    assert result["env_runners"]["episode_len_mean"] == 10
    for aid in SPREAD_AGENTS:
        assert np.isfinite(result["learners"][aid]["policy_loss"])
        assert np.isfinite(result["learners"][aid]["is_weight_mean"])
