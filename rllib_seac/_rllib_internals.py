"""Every use of a private part of RLlib, Ray Tune or Ray, in one place.

Each function wraps one internal behind a small, documented interface: what RLlib
does there and why the public API is not enough. `tests/test_rllib_internals.py`
checks each one so that an RLlib upgrade that changes it fails loudly, naming it.
"""


def config_attribute(key: str) -> str:
    """The AlgorithmConfig attribute that `update_from_dict` sets for `key`.

    `update_from_dict` renames a few keys (num_workers -> num_env_runners, framework
    -> framework_str, lambda -> lambda_, ...) with the private
    `AlgorithmConfig._translate_special_keys`; the CLI needs the same name to tell a
    typo (an attribute no config has) from a real key, since `update_from_dict` sets
    even unknown attributes silently.
    """
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    return AlgorithmConfig._translate_special_keys(key, warn_deprecated=False)


def registered_env_creator(name: str):
    """The creator given to `ray.tune.register_env(name, ...)`, or None.

    Ray has no public lookup of a registered env: RLlib itself reads the private
    `ray.tune.registry._global_registry`, which is what this does.
    """
    from ray.tune.registry import ENV_CREATOR, _global_registry

    if _global_registry.contains(ENV_CREATOR, name):
        return _global_registry.get(ENV_CREATOR, name)
    return None
