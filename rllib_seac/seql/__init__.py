"""Shared Experience Q-Learning (SEQL) and Independent Q-Learning (IQL), App. D of the
paper, on RLlib's DQN (new API stack)."""

from rllib_seac.seql.algorithm import SEQL
from rllib_seac.seql.config import SEQLConfig, SEQLConfigError

__all__ = ["SEQL", "SEQLConfig", "SEQLConfigError"]
