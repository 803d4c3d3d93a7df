"""Sparse predator-prey against the real MPE simple_tag (mpe2)."""

import numpy as np
import pytest

from rllib_seac import make_env
from rllib_seac.envs.checks import EnvConfigError
from rllib_seac.envs.predator_prey import bound, flee_action
from tests.env_contract import assert_reset_step_contract

PREDATORS = ["adversary_0", "adversary_1", "adversary_2"]
NOOP, LEFT, RIGHT, UP = 0, 1, 2, 4


def test_spaces_reset_and_step_contract():
    env = make_env("predator-prey-sparse")
    assert env.possible_agents == PREDATORS
    assert all(env.get_observation_space(aid).shape == (16,) for aid in PREDATORS)
    assert_reset_step_contract(env, n_actions=5)


def test_config_keys():
    env = make_env("predator-prey-sparse", {"num_predators": 4, "num_obstacles": 0})
    assert env.possible_agents == [*PREDATORS, "adversary_3"]
    bad = {
        "num_predators": (1, "num_predators must be an integer >= 2, got 1"),
        "max_cycles": (0, "max_cycles must be an integer >= 1, got 0"),
        "num_obstacles": (-1, "num_obstacles must be an integer >= 0, got -1"),
        "prey_speed": (0, "prey_speed must be a number > 0, got 0"),
        "predators": (3, "unknown key(s) predators; known: fast_step, max_cycles, num_obstacles"),
        "fast_step": ("no", "fast_step must be true or false, got 'no'"),
    }
    for key, (value, message) in bad.items():
        with pytest.raises(EnvConfigError) as error:
            make_env("predator-prey-sparse", {key: value})
        assert str(error.value).startswith("Bad env config for predator-prey-sparse: " + message)


def test_episode_length_is_a_truncation():
    env = make_env("predator-prey-sparse", {"max_cycles": 6})
    env.reset(seed=1)
    for step in range(1, 7):
        _, _, terminateds, truncateds, _ = env.step(dict.fromkeys(PREDATORS, NOOP))
        assert not terminateds["__all__"] and not terminateds["adversary_0"]
        assert truncateds["__all__"] == truncateds["adversary_2"] == (step == 6)


@pytest.fixture
def placed_env():
    """The env and a function that places prey and predators, at rest, in the MPE world.

    MPE moves an entity by its velocity before applying the step's forces, so one step
    from rest leaves the placed positions unchanged."""
    env = make_env("predator-prey-sparse")
    env.reset(seed=0)
    world = env.env.unwrapped.world
    for landmark, pos in zip(world.landmarks, [(-0.8, 0.8), (0.8, -0.8)]):
        landmark.state.p_pos = np.array(pos)

    def place(prey, *predators):
        for agent, pos in zip([env._prey, *env._predators], [prey, *predators]):
            agent.state.p_pos = np.array(pos, dtype=float)
            agent.state.p_vel = np.zeros(2)
        _, rewards, _, _, _ = env.step(dict.fromkeys(PREDATORS, NOOP))
        return [rewards[aid] for aid in PREDATORS]

    return place


def test_reward_needs_two_predators_touching_the_prey(placed_env):
    # Touching: closer than predator size + prey size = 0.125.
    assert placed_env((0, 0), (0.5, 0.5), (-0.5, 0.5), (0.5, -0.5)) == [0, 0, 0]
    assert placed_env((0, 0), (0.1, 0), (-0.5, 0.5), (0.5, -0.5)) == [0, 0, 0]
    assert placed_env((0, 0), (0.1, 0), (-0.1, 0), (0.5, -0.5)) == [1, 1, 1]
    assert placed_env((0, 0), (0.1, 0), (-0.1, 0), (0, 0.1)) == [1, 1, 1]
    # Near but not touching.
    assert placed_env((0, 0), (0.13, 0), (-0.13, 0), (0.5, -0.5)) == [0, 0, 0]


def test_predators_out_of_bounds_are_penalised(placed_env):
    rewards = placed_env((0, 0), (0.1, 0), (-0.1, 0), (1.2, 0.95))
    # MPE's bound: exp(2x - 2) beyond 1, 10 (x - 0.9) between 0.9 and 1.
    assert rewards == [1, 1, pytest.approx(1 - (np.exp(0.4) + 0.5))]


def test_penalty_is_mpes_bound_of_the_prey():
    env = make_env("predator-prey-sparse")
    env.reset(seed=0)
    scenario, world, prey = env.env.unwrapped.scenario, env.env.unwrapped.world, env._prey
    for pos in [(0.0, 0.5), (0.95, -0.2), (-1.3, 0.99), (3.0, -4.0)]:
        prey.state.p_pos = np.array(pos)
        for predator, far in zip(env._predators, [(9, 9), (-9, 9), (9, -9)]):
            predator.state.p_pos = np.array(far, dtype=float)  # no collision penalty
        assert bound(pos[0]) + bound(pos[1]) == pytest.approx(-scenario.agent_reward(prey, world))


def test_prey_flees_the_nearest_predator_and_stays_in_the_arena():
    assert flee_action([0.0, 0.0], [[0.1, 0.0], [-0.8, 0.0]]) == LEFT
    assert flee_action([0.0, 0.0], [[-0.1, 0.0], [0.8, 0.0]]) == RIGHT
    assert flee_action([0.0, 0.0], [[0.0, -0.1], [0.2, 0.8]]) == UP
    # At the edge it turns back, even towards a distant predator.
    assert flee_action([0.95, 0.0], [[0.5, 0.0]]) == LEFT
    env = make_env("predator-prey-sparse")
    env.reset(seed=2)
    rng = np.random.default_rng(0)
    for _ in range(200):
        _, _, _, truncateds, _ = env.step({aid: int(rng.integers(5)) for aid in PREDATORS})
        assert np.abs(env._prey.state.p_pos).max() < 1.0
        if truncateds["__all__"]:
            env.reset()


@pytest.mark.parametrize(
    "config",
    [{}, {"num_predators": 4, "num_obstacles": 0, "max_cycles": 10, "prey_speed": 1.0}],
)
def test_the_fast_step_gives_the_episodes_of_pettingzoos_wrapper(config):
    # The same seed and actions through MPE's AEC env and PettingZoo's parallel
    # wrapper (fast_step false) and through the world step directly.
    fast = make_env("predator-prey-sparse", config)
    wrapped = make_env("predator-prey-sparse", {**config, "fast_step": False})
    rng = np.random.default_rng(0)
    seen = {"penalties": 0, "catches": 0, "ends": 0}
    for episode in range(30):
        first = fast.reset(seed=episode), wrapped.reset(seed=episode)
        assert_same_step(*first)
        if episode % 3 == 0:  # the predators start around the prey: catches
            for env in (fast, wrapped):
                prey = env._prey.state.p_pos
                for k, predator in enumerate(env._predators):
                    predator.state.p_pos = prey + 0.08 * np.array([np.cos(k), np.sin(k)])
        done = False
        while not done:
            actions = {aid: int(rng.integers(5)) for aid in fast.agents}
            ours, theirs = fast.step(actions), wrapped.step(actions)
            assert_same_step(ours, theirs)
            rewards = list(ours[1].values())
            seen["penalties"] += sum(r < 0 for r in rewards)
            seen["catches"] += sum(r > 0 for r in rewards)
            done = ours[3]["__all__"] or ours[2]["__all__"]
        seen["ends"] += 1
    assert seen["penalties"] > 0 and seen["catches"] > 0, seen


def assert_same_step(ours: tuple, theirs: tuple) -> None:
    """Equal dicts, arrays compared by value and dtype."""
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], np.ndarray):
                assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
            else:
                assert a[key] == b[key], key


def test_the_array_world_step_is_mpes_world_step_in_crowded_worlds():
    # Every entity within reach of several others, so that contact forces add up in
    # MPE's order, and speeds over the limit: positions and velocities bit for bit.
    from rllib_seac.envs.mpe_world import ArrayWorldStep

    ours = make_env("predator-prey-sparse", {"num_predators": 4, "num_obstacles": 3})
    mpes = make_env("predator-prey-sparse", {"num_predators": 4, "num_obstacles": 3})
    worlds = [env.env.unwrapped.world for env in (ours, mpes)]
    array_step = ArrayWorldStep(worlds[0])
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = len(worlds[0].entities)
        pos, vel = rng.uniform(-0.2, 0.2, (n, 2)), rng.normal(0, 1.5, (n, 2))
        u = rng.normal(0, 3, (len(worlds[0].agents), 2))
        for world in worlds:
            for k, entity in enumerate(world.entities):
                entity.state.p_pos = pos[k].copy()
                entity.state.p_vel = vel[k].copy() if entity.movable else np.zeros(2)
            for k, agent in enumerate(world.agents):
                agent.action.u = u[k].copy()
        array_step(worlds[0])
        worlds[1].step()
        for a, b in zip(*(world.entities for world in worlds)):
            assert np.array_equal(a.state.p_pos, b.state.p_pos)
            assert np.array_equal(a.state.p_vel, b.state.p_vel)


@pytest.mark.parametrize(
    "fast_step, pickled_world_step", [(True, "current"), (True, "stale"), (False, "current")]
)
def test_an_env_pickled_mid_episode_goes_on_exactly(fast_step, pickled_world_step):
    # As a checkpoint's env is; one from an earlier version may hold an `ArrayWorldStep`
    # of another layout ("stale": without an attribute the current one reads).
    import copy
    import pickle

    env = make_env("predator-prey-sparse", {"max_cycles": 40, "fast_step": fast_step})
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    actions = [{aid: int(rng.integers(5)) for aid in env.agents} for _ in range(30)]
    for step in actions[:10]:
        env.step(step)
    if pickled_world_step == "stale":
        state = env.__getstate__()
        state["_world_step"] = copy.copy(env._world_step)
        del state["_world_step"].terms_shape
        restored = type(env).__new__(type(env))
        restored.__setstate__(pickle.loads(pickle.dumps(state)))
    else:
        restored = pickle.loads(pickle.dumps(env))
    for step in actions[10:]:
        assert_same_step(restored.step(step), env.step(step))
