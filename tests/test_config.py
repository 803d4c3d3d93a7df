"""Bad SEAC settings fail at validate() with one clear message."""

from pathlib import Path

import pytest

from rllib_seac import SEACConfig, SEACConfigError
from tests.envs_for_tests import SpacesEnv

RWARE = "rware-tiny-2ag-v2"


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(seac_lambda=-0.5), "seac_lambda must be a number >= 0, got -0.5"),
        (dict(n_steps=0), "n_steps must be an integer >= 1, got 0"),
        (dict(seac_target="critic_k"), "seac_target must be one of ('paper', 'authors')"),
        (dict(is_weight_clip=0), "is_weight_clip must be None or > 0"),
        (dict(updates_per_iteration=0), "updates_per_iteration must be an integer >= 1"),
        (dict(lr=-1), "lr must be a number > 0 (or a schedule of such), got -1."),
        (dict(lr=0), "lr must be a number > 0 (or a schedule of such), got 0."),
        (dict(lr=[[0, 1e-3], [100, -1e-3]]), "lr must be a number > 0 (or a schedule"),
        (dict(gamma=1.5), "gamma must be a number in (0, 1], got 1.5."),
        (dict(gamma=0), "gamma must be a number in (0, 1], got 0."),
        (dict(entropy_coeff=-0.01), "entropy_coeff must be a number >= 0, got -0.01."),
        (dict(vf_loss_coeff=-1), "vf_loss_coeff must be a number >= 0, got -1."),
        (dict(grad_clip=0), "grad_clip must be a number > 0 (or None: no clipping), got 0."),
        (dict(adam_eps=0), "adam_eps must be a number > 0, got 0."),
        (dict(adam_eps=float("nan")), "adam_eps must be a number > 0, got nan."),
        (dict(hidden_sizes=[64, 0]), "hidden_sizes must be a list of layer sizes, each an"),
        (dict(num_envs_per_env_runner=0), "num_envs_per_env_runner must be an integer >= 1"),
        (dict(seed=-1), "seed must be an integer from 0 to 2**32-1 (or None), got -1."),
        (dict(seed=2**32), "seed must be an integer from 0 to 2**32-1 (or None), got 4294967296."),
        (dict(seac_lambda=True), "seac_lambda must be a number >= 0, got True."),
        (dict(shared_policy="no"), "shared_policy must be true or false, got 'no'."),
        (dict(overlap_sampling="false"), "overlap_sampling must be true or false, got 'false'."),
        (dict(torch_num_threads=-1), "torch_num_threads must be an integer >= 1 (or None"),
        (dict(num_cpus_for_main_process=-1), "num_cpus_for_main_process must be a number >= 0"),
        (dict(num_env_runners=-2), "num_env_runners must be an integer >= 0, got -2."),
        (dict(num_learners=-2), "num_learners must be an integer >= 0, got -2."),
        (dict(n_steps=10**9), "these settings need at least"),
        (dict(num_envs_per_env_runner=10**9), "these settings need at least"),
        (dict(hidden_sizes=[10**9]), "these settings need at least"),
    ],
)
def test_bad_training_settings(settings, message):
    # update_from_dict: the path of a YAML file's or --config's settings.
    config = SEACConfig().environment(RWARE).update_from_dict(settings)
    with pytest.raises(SEACConfigError, match="Bad SEAC config") as err:
        config.validate()
    assert message in str(err.value)


# RLlib's get_state() drops every value equal to -1 (its marker of a deprecated
# setting), and Algorithm.__init__ validates the config rebuilt from that state.
MINUS_ONE_SETTINGS = [
    ("lr", "lr must be a number > 0"),
    ("gamma", "gamma must be a number in (0, 1]"),
    ("n_steps", "n_steps must be an integer >= 1"),
    ("seac_lambda", "seac_lambda must be a number >= 0"),
    ("entropy_coeff", "entropy_coeff must be a number >= 0"),
    ("vf_loss_coeff", "vf_loss_coeff must be a number >= 0"),
    ("adam_eps", "adam_eps must be a number > 0"),
    ("grad_clip", "grad_clip must be a number > 0"),
    ("is_weight_clip", "is_weight_clip must be None or > 0"),
    ("updates_per_iteration", "updates_per_iteration must be an integer >= 1"),
    ("num_envs_per_env_runner", "num_envs_per_env_runner must be an integer >= 1"),
    ("num_env_runners", "num_env_runners must be an integer >= 0"),
    ("num_env_processes_per_env_runner", "num_env_processes_per_env_runner must be"),
    ("seed", "seed must be an integer from 0 to 2**32-1"),
    ("torch_num_threads", "torch_num_threads must be an integer >= 1"),
    ("num_cpus_for_main_process", "num_cpus_for_main_process must be a number >= 0"),
]


@pytest.mark.parametrize("value", [-1, -1.0])
@pytest.mark.parametrize("name, message", MINUS_ONE_SETTINGS)
def test_minus_one_is_refused_by_build_algo(name, message, value):
    config = SEACConfig().environment(RWARE).update_from_dict({name: value})
    with pytest.raises(SEACConfigError, match="Bad SEAC config") as err:
        config.build_algo()  # fails at validate(): no Ray, no env runner
    assert message in str(err.value)


def test_env_config_null_is_empty():
    # YAML's `env_config:` with no value.
    config = SEACConfig().environment(RWARE).update_from_dict({"env_config": None})
    config.validate()
    assert config.env_config == {}


@pytest.mark.parametrize("env_config", [[1, 2], "n_agents=4"])
def test_env_config_that_is_not_a_mapping(env_config):
    message = "env_config must be a mapping of the env's settings"
    with pytest.raises(SEACConfigError, match=message):
        SEACConfig().environment(RWARE, env_config=env_config)
    with pytest.raises(SEACConfigError, match=message):
        SEACConfig().environment(RWARE).update_from_dict({"env_config": env_config})


def test_unknown_env_suggests_close_names():
    with pytest.raises(SEACConfigError, match=r"Unknown env 'rware-tiny-2ag-v9'. Did you mean"):
        SEACConfig().environment("rware-tiny-2ag-v9").validate()


def test_agents_with_different_observation_spaces_are_named():
    config = SEACConfig().environment(SpacesEnv, env_config={"carrier_obs": 5})
    with pytest.raises(SEACConfigError) as err:
        config.validate()
    msg = str(err.value)
    assert "identical observation spaces" in msg
    assert "scout: Box(-1.0, 1.0, (3,)" in msg and "carrier: Box(-1.0, 1.0, (5,)" in msg


def test_continuous_actions_are_refused():
    config = SEACConfig().environment(SpacesEnv, env_config={"continuous": True})
    with pytest.raises(SEACConfigError, match="needs a Discrete action space"):
        config.validate()


def test_learners_must_divide_the_envs_of_an_update():
    config = SEACConfig().environment(RWARE).learners(num_learners=3)
    with pytest.raises(SEACConfigError, match=r"num_learners \(3\) must divide the envs"):
        config.validate()
    config = SEACConfig().environment(RWARE).env_runners(num_env_runners=3)
    config.learners(num_learners=3).validate()  # 3 runners x 4 envs: 4 envs per learner


def test_defaults_are_table_2_and_agents_come_from_the_env():
    config = SEACConfig().environment(RWARE)
    config.validate()
    assert (config.lr, config.adam_eps, config.gamma) == (3e-4, 1e-3, 0.99)
    assert (config.entropy_coeff, config.vf_loss_coeff, config.grad_clip) == (0.01, 0.5, 0.5)
    assert (config.n_steps, config.num_envs_per_env_runner, config.seac_lambda) == (5, 4, 1.0)
    assert config.hidden_sizes == [64, 64]
    assert config.agent_ids == ["agent_0", "agent_1"]
    assert set(config.policies) == {"agent_0", "agent_1"}
    shared = SEACConfig().environment(RWARE).training(shared_policy=True)
    shared.validate()
    assert set(shared.policies) == {"shared"}


def test_env_processes_are_checked_against_the_envs_per_runner():
    config = SEACConfig().environment(RWARE).env_runners(num_env_processes_per_env_runner=5)
    with pytest.raises(SEACConfigError, match="must be an integer from 0 to"):
        config.validate()


def test_env_settings_are_checked_at_validate_naming_the_env():
    config = SEACConfig().environment("Foraging-8x8-2p-2f-v3", env_config={"max_episode_steps": -5})
    with pytest.raises(SEACConfigError) as err:
        config.validate()
    assert str(err.value) == (
        "Bad env config for Foraging-8x8-2p-2f-v3: max_episode_steps must be an integer "
        ">= 1, got -5."
    )


def pairs(agent_id, episode=None, **kwargs):
    """rware-tiny-4ag's agents 0, 1 -> module "front", 2, 3 -> "back"."""
    return "front" if agent_id in ("agent_0", "agent_1") else "back"


def test_a_users_grouping_of_agents_is_kept():
    config = SEACConfig().environment("rware-tiny-4ag-v2")
    config.multi_agent(policies={"back", "front"}, policy_mapping_fn=pairs)
    config.validate()
    assert config.policy_mapping_fn is pairs
    # Modules in the order of their first agent, whatever the set's order.
    assert list(config.policies) == ["front", "back"]
    assert config.module_agents() == {
        "front": ["agent_0", "agent_1"],
        "back": ["agent_2", "agent_3"],
    }
    # Policies left unset are filled in from the mapping.
    config = SEACConfig().environment("rware-tiny-4ag-v2").multi_agent(policy_mapping_fn=pairs)
    config.validate()
    assert list(config.policies) == ["front", "back"]
    # A mapping left unset is filled in for policies it can only mean.
    config = SEACConfig().environment(RWARE).multi_agent(policies=["shared"])
    config.validate()
    assert config.module_agents() == {"shared": ["agent_0", "agent_1"]}


@pytest.mark.parametrize(
    "multi_agent, training, message",
    [
        (
            dict(policies=["front"], policy_mapping_fn=pairs),
            {},
            "policy_mapping_fn maps agents to modules not in policies: ['back']",
        ),
        (
            dict(policies=["front", "back", "spare"], policy_mapping_fn=pairs),
            {},
            "policies ['spare'] act for none of the env's agents",
        ),
        (
            dict(policies=["front", "back"]),
            {},
            "policies ['back', 'front'] need a policy_mapping_fn",
        ),
        (
            dict(policy_mapping_fn=pairs),
            dict(shared_policy=True),
            "shared_policy=True needs one module for all agents, but policy_mapping_fn gives 2",
        ),
    ],
)
def test_a_grouping_that_misses_agents_or_modules_is_refused(multi_agent, training, message):
    config = SEACConfig().environment("rware-tiny-4ag-v2").training(**training)
    config.multi_agent(**multi_agent)
    with pytest.raises(SEACConfigError, match="Bad SEAC config") as err:
        config.validate()
    assert message in str(err.value)


def test_the_old_name_of_the_authors_target_still_works_and_warns():
    config = SEACConfig().environment(RWARE).training(seac_target="reference")
    with pytest.warns(FutureWarning, match='use seac_target="authors"'):
        config.validate()
    assert config.seac_target == "authors"


def test_build_algo_leaves_no_empty_results_folder():
    algo = SEACConfig().environment(RWARE).training(updates_per_iteration=1).build_algo()
    logdir = Path(algo.logdir)
    assert logdir.is_dir()  # Ray's Trainable made it; nothing writes into it
    algo.stop()
    assert not logdir.exists()
