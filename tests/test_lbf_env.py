"""The level-based foraging wrapper against the real lbforaging 2.x env."""

import numpy as np
import pytest

from rllib_seac import env_names, make_env
from rllib_seac.envs.checks import EnvConfigError
from tests.env_contract import assert_reset_step_contract

PAPER_TASKS = [
    "Foraging-10x10-3p-3f-v3",
    "Foraging-12x12-2p-1f-v3",
    "Foraging-15x15-3p-4f-v3",
    "Foraging-8x8-2p-2f-coop-v3",
]
NOOP, LOAD = 0, 5


def test_all_foraging_ids_are_known():
    names = set(env_names())
    assert set(PAPER_TASKS) <= names
    assert "Foraging-2s-8x8-2p-2f-coop-v3" in names  # partial observability


def test_spaces_reset_and_step_contract():
    env = make_env("Foraging-15x15-3p-4f-v3")
    assert env.possible_agents == ["agent_0", "agent_1", "agent_2"]
    assert_reset_step_contract(env, n_actions=6)


def test_limit_is_a_config_key_and_a_truncation_not_a_terminal():
    env = make_env("Foraging-8x8-2p-2f-coop-v3", {"max_episode_steps": 25})
    env.reset(seed=0)
    for step in range(1, 26):
        _, rewards, terminateds, truncateds, _ = env.step(dict.fromkeys(env.possible_agents, NOOP))
        assert not terminateds["__all__"] and not terminateds["agent_0"]
        assert truncateds["__all__"] == truncateds["agent_1"] == (step == 25)
    assert env.env.field.any()  # food was left


def neighbours(row, col):
    return [(row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)]


@pytest.mark.parametrize("env_id", ["Foraging-15x15-3p-4f-v3", "Foraging-8x8-2p-2f-coop-v3"])
def test_solved_episode_returns_one_summed_over_agents(env_id):
    """Every agent is placed next to each food in turn and all load it: all food is
    collected, the episode is a terminal, and the returns sum to 1 (App. A.2)."""
    env = make_env(env_id, {"max_episode_steps": 25})
    env.reset(seed=3)
    foraging = env.env
    foods = list(zip(*np.nonzero(foraging.field)))
    assert len(foods) > 1
    total_food_level = foraging.field.sum()
    returns = dict.fromkeys(env.possible_agents, 0.0)
    for i, (row, col) in enumerate(foods):
        food_level = foraging.field[row, col]
        # Foods spawn off the edge and apart, so a food's four neighbours are free cells.
        for player, cell in zip(foraging.players, neighbours(row, col)):
            player.position = cell
        foraging._gen_valid_moves()  # the legal actions at the new positions
        _, rewards, terminateds, truncateds, _ = env.step(dict.fromkeys(env.possible_agents, LOAD))
        assert sum(rewards.values()) == pytest.approx(food_level / total_food_level)
        for aid, r in rewards.items():
            returns[aid] += r
        assert terminateds["__all__"] == (i == len(foods) - 1)
        assert not truncateds["__all__"]
    assert sum(returns.values()) == pytest.approx(1.0)
    # Each agent's share is its level over the loading agents' levels.
    levels = [p.level for p in foraging.players]
    for aid, level in zip(env.possible_agents, levels):
        assert returns[aid] == pytest.approx(level / sum(levels))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("max_episode_steps", -5, "max_episode_steps must be an integer >= 1, got -5"),
        ("max_episode_steps", 0, "max_episode_steps must be an integer >= 1, got 0"),
        ("players", 0, "players must be an integer >= 1, got 0"),
        ("max_num_food", 0, "max_num_food must be an integer >= 1, got 0"),
        ("sight", 0, "sight must be an integer >= 1, got 0"),
        ("field_size", (8, 0), "field_size must be two integers >= 1 (rows, columns), got (8, 0)"),
        ("max_steps", 25, "unknown key(s) max_steps; known: fast_step, field_size, force_coop"),
        ("fast_step", "no", "fast_step must be true or false, got 'no'"),
    ],
)
def test_settings_the_env_would_misuse_are_refused(key, value, message):
    with pytest.raises(EnvConfigError) as error:
        make_env("Foraging-8x8-2p-2f-v3", {key: value})
    assert str(error.value).startswith(f"Bad env config for Foraging-8x8-2p-2f-v3: {message}")
