"""A user's env module, as `rllib train` loads one: PettingZoo's MPE spread through
the adapter, as a callable (`user_envs:make_spread`) and as a name its import
registers (`--import user_envs` with `env: user-spread`)."""

from mpe2 import simple_spread_v3
from ray.tune.registry import register_env

from rllib_seac.envs import PettingZooParallelAdapter


def make_spread(config):
    return PettingZooParallelAdapter(simple_spread_v3.parallel_env, config)


register_env("user-spread", make_spread)
