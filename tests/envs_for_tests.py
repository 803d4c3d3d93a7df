"""Small MultiAgentEnvs that break SEAC's contract on purpose (its spaces, finite
rewards), that cannot be pickled into a checkpoint, or whose process dies."""

import os
import signal
import threading
from pathlib import Path

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rllib_seac.envs.lbf import LbfEnv


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


class KilledOnceEnv(SpacesEnv):
    """SpacesEnv whose process is killed (SIGKILL, as a crash or the OOM killer would)
    at the first step that finds a trial checkpoint under `run_dir`: once per run,
    marked by the file `run_dir/killed` (the killed process id)."""

    CHECK_EVERY = 10  # steps between looks for a checkpoint

    def __init__(self, config=None):
        config = dict(config or {})
        self.run_dir = Path(config.pop("run_dir"))
        super().__init__(config)
        self.steps = 0

    def step(self, action_dict):
        self.steps += 1
        if self.steps % self.CHECK_EVERY == 0 and self._checkpoint_before_the_kill():
            (self.run_dir / "killed").write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().step(action_dict)

    def _checkpoint_before_the_kill(self) -> bool:
        if (self.run_dir / "killed").exists():
            return False
        return any(self.run_dir.glob("*/checkpoint_*/rllib_checkpoint.json"))


class NanRewardEnv(MultiAgentEnv):
    """Two agents with random observations; agent_1's reward is NaN at step
    `nan_at_step` (3) of each episode, 0 otherwise; episodes are truncated after 10
    steps. With `nan_seeds`, only envs first reset with one of those seeds give NaN."""

    EPISODE_STEPS = 10

    def __init__(self, config=None):
        super().__init__()
        config = config or {}
        self.nan_at_step = config.get("nan_at_step", 3)
        self.nan_seeds = config.get("nan_seeds")
        self.gives_nan = self.nan_seeds is None
        self.agents = self.possible_agents = ["agent_0", "agent_1"]
        self.observation_spaces = dict.fromkeys(
            self.agents, gym.spaces.Box(-1, 1, (3,), np.float32)
        )
        self.action_spaces = dict.fromkeys(self.agents, gym.spaces.Discrete(2))
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        if seed is not None and self.nan_seeds is not None:
            self.gives_nan = seed in self.nan_seeds
        self.steps = 0
        return {a: self.observation_spaces[a].sample() for a in self.agents}, {}

    def step(self, action_dict):
        self.steps += 1
        obs = {a: self.observation_spaces[a].sample() for a in self.agents}
        nan = self.gives_nan and self.steps == self.nan_at_step
        rewards = {"agent_0": 0.0, "agent_1": np.nan if nan else 0.0}
        truncated = self.steps == self.EPISODE_STEPS
        terminateds = dict.fromkeys([*self.agents, "__all__"], False)
        truncateds = dict.fromkeys([*self.agents, "__all__"], truncated)
        return obs, rewards, terminateds, truncateds, {}


class UnpicklableLbfEnv(LbfEnv):
    """Foraging-8x8-2p-2f-v3 holding a lock, as an env with an open socket or a
    simulator handle would: it cannot be pickled."""

    def __init__(self, config=None):
        super().__init__("Foraging-8x8-2p-2f-v3", config)
        self.lock = threading.Lock()
