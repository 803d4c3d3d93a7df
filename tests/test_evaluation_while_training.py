"""RLlib's evaluation while training (evaluation_interval, evaluation_duration,
evaluation_config) for SEAC (stochastic policies) and SEQL (greedy)."""

import pytest

from rllib_seac import SEACConfig, SEACConfigError, SEQLConfig
from rllib_seac.analysis.evaluation import evaluate
from rllib_seac.seeding import SEEDS_PER_RUN, derived_seed

LBF = "Foraging-8x8-2p-2f-v3"
SHORT = {"max_episode_steps": 10}


def test_seac_evaluates_as_rllib_evaluate_does_on_its_checkpoint(tmp_path):
    config = (
        SEACConfig()
        .environment(LBF, env_config=SHORT)
        .training(updates_per_iteration=2)
        .evaluation(evaluation_interval=2, evaluation_duration=3)
        .debugging(seed=3)
    )
    algo = config.build_algo()
    try:
        first = algo.train()
        second = algo.train()
        checkpoint = algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    assert "evaluation" not in first  # every 2nd iteration
    evaluated = second["evaluation"]["env_runners"]
    assert evaluated["num_episodes"] == 3 and evaluated["episode_len_mean"] == 10
    # The same episodes as `rllib evaluate` runs with the evaluation's seed: the
    # agents' stochastic policies (actions sampled from pi_i), exactly.
    offline = evaluate(checkpoint, episodes=3, seed=derived_seed(3, SEEDS_PER_RUN - 1))
    assert evaluated["episode_return_mean"] == pytest.approx(
        sum(offline.total_returns) / 3, abs=1e-12
    )
    for aid, returns in offline.agent_returns.items():
        assert evaluated["agent_episode_returns_mean"][aid] == pytest.approx(
            sum(returns) / 3, abs=1e-12
        )


def test_seac_evaluation_config_overrides_the_env_config():
    config = (
        SEACConfig()
        .environment(LBF, env_config=SHORT)
        .training(updates_per_iteration=1)
        .evaluation(
            evaluation_interval=1,
            evaluation_duration=1,
            evaluation_config={"env_config": {"max_episode_steps": 7}},
        )
    )
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    assert result["evaluation"]["env_runners"]["episode_len_mean"] == 7


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"evaluation_duration": "auto"}, "evaluation_duration must be an integer >= 1"),
        ({"evaluation_duration_unit": "timesteps"}, "evaluation_duration_unit must be"),
        ({"evaluation_parallel_to_training": True}, "evaluation_parallel_to_training is not"),
        ({"evaluation_num_env_runners": 1}, "evaluation_num_env_runners must be 0"),
    ],
)
def test_seac_refuses_evaluation_settings_it_cannot_honour(settings, message):
    config = SEACConfig().environment(LBF).evaluation(evaluation_interval=1, **settings)
    with pytest.raises(SEACConfigError, match=message):
        config.validate()


def test_seql_evaluates_greedily():
    config = (
        SEQLConfig()
        .environment(LBF, env_config=SHORT)
        .evaluation(evaluation_interval=1, evaluation_duration=2)
    )
    config.min_sample_timesteps_per_iteration = 50
    algo = config.build_algo()
    try:
        assert algo.evaluation_config.explore is False  # argmax Q, epsilon 0
        result = algo.train()
    finally:
        algo.stop()
    evaluated = result["evaluation"]["env_runners"]
    assert evaluated["num_episodes"] == 2 and evaluated["episode_len_mean"] == 10
    assert "episode_return_mean" in evaluated
