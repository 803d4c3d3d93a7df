"""Each RLlib / Tune internal that rllib_seac/_rllib_internals.py wraps still behaves
as the wrapper says; a failure here names the internal that changed."""

from ray.tune.registry import register_env

from rllib_seac._rllib_internals import config_attribute, registered_env_creator


def test_translate_special_keys_renames_old_keys():
    # AlgorithmConfig._translate_special_keys, as update_from_dict uses it.
    assert config_attribute("num_workers") == "num_env_runners", "_translate_special_keys"
    assert config_attribute("framework") == "framework_str", "_translate_special_keys"
    assert config_attribute("lr") == "lr", "_translate_special_keys"


def test_global_registry_finds_a_registered_env():
    # ray.tune.registry._global_registry, as RLlib looks envs up.
    register_env("internals-test-env", lambda config: ("made with", config))
    # Ray stores a copy (pickled into its key-value store once it runs).
    creator = registered_env_creator("internals-test-env")
    assert creator({"n": 1}) == ("made with", {"n": 1}), "_global_registry"
    assert registered_env_creator("internals-no-such-env") is None, "_global_registry"
