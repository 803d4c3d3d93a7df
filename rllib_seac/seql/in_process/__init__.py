"""SEQL's in-process loop (`SEQLConfig.training(loop="in_process")`, the default): one
env stepped and every agent updated in the driver, without RLlib's per-step machinery."""
