"""Small MultiAgentEnvs that break SEAC's space contract on purpose."""

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv


class SpacesEnv(MultiAgentEnv):
    """Two agents with the spaces given in the config; random observations."""

    def __init__(self, config=None):
        super().__init__()
        config = config or {}
        self.agents = self.possible_agents = ["scout", "carrier"]
        self.observation_spaces = {
            "scout": gym.spaces.Box(-1, 1, (config.get("scout_obs", 3),), np.float32),
            "carrier": gym.spaces.Box(-1, 1, (config.get("carrier_obs", 3),), np.float32),
        }
        action = (
            gym.spaces.Box(-1, 1, (2,), np.float32)
            if config.get("continuous")
            else gym.spaces.Discrete(2)
        )
        self.action_spaces = dict.fromkeys(self.agents, action)

    def reset(self, *, seed=None, options=None):
        return {a: self.observation_spaces[a].sample() for a in self.agents}, {}

    def step(self, action_dict):
        obs, _ = self.reset()
        flags = dict.fromkeys([*self.agents, "__all__"], False)
        return obs, dict.fromkeys(self.agents, 0.0), flags, dict(flags), {}
