"""Sparse predator-prey (paper Sec. 5.1) on PettingZoo MPE's simple_tag (mpe2).

The paper's prey was pretrained with MADDPG and never published, so the prey here is
scripted: it flees the nearest predators and turns back before the arena's edge.
Positions are read as plain floats: for a few 2-D points numpy's per-call cost would be
most of the wrapper's time per step.
"""

from __future__ import annotations

import math

from rllib_seac.envs.checks import check_bool, check_int, check_known_keys, check_positive
from rllib_seac.envs.mpe_world import ArrayWorldStep
from rllib_seac.envs.pettingzoo import PettingZooParallelAdapter, end_of_episode

ENV_NAME = "predator-prey-sparse"

DEFAULTS = {
    "num_predators": 3,
    # MPE's default episode length; the paper states none for this task.
    "max_cycles": 25,
    "num_obstacles": 2,
    # Fraction of MPE's prey speed and acceleration: the paper's prey is "slowly
    # moving"; at 0.5 it is slower than the predators (max speed 0.65 vs 1.0).
    "prey_speed": 0.5,
    # MPE's: "rgb_array" makes render() return frames, with no display needed.
    "render_mode": None,
    # Step MPE's world directly (`PredatorPreyEnv.step`); False: through
    # PettingZoo's AEC-to-parallel wrapper. The same episodes either way.
    "fast_step": True,
}
# The prey is pulled back towards the centre beyond this |coordinate|, hard enough to
# beat the predators' push near the edge: a prey that leaves the arena is never caught.
PREY_EDGE = 0.6
PREY_EDGE_PULL = 300.0


def flee_action(prey_pos, predator_positions) -> int:
    """The prey's MPE action (1: -x, 2: +x, 3: -y, 4: +y): along the larger component
    of the push away from the predators, each weighted by 1 / distance."""
    px, py = prey_pos
    fx = fy = 0.0
    for x, y in predator_positions:
        dx, dy = px - x, py - y
        d2 = dx * dx + dy * dy + 1e-9
        fx += dx / d2
        fy += dy / d2
    fx -= math.copysign(max(abs(px) - PREY_EDGE, 0.0) * PREY_EDGE_PULL, px)
    fy -= math.copysign(max(abs(py) - PREY_EDGE, 0.0) * PREY_EDGE_PULL, py)
    if abs(fx) >= abs(fy):
        return 2 if fx > 0 else 1
    return 4 if fy > 0 else 3


def bound(x: float) -> float:
    """MPE simple_tag's out-of-bounds penalty of one coordinate (there for the prey only)."""
    x = abs(x)
    if x < 0.9:
        return 0.0
    if x < 1.0:
        return (x - 0.9) * 10
    return min(math.exp(2 * x - 2), 10.0)


class PredatorPreyEnv(PettingZooParallelAdapter):
    """The predators (`adversary_0`, ...) learn; the prey (`agent_0`) is driven by
    `flee_action` inside the env.

    Reward of each predator at each step: 1 while at least two predators touch the
    prey (MPE's collision test), else 0, minus MPE's out-of-bounds penalty for the
    predator's own position. Actions are discrete; the episode ends at `max_cycles`
    as a truncation. Predators share their spaces, so no SuperSuit padding is needed.

    Config keys: num_predators (>= 2), max_cycles, num_obstacles, prey_speed,
    render_mode, fast_step.

    With `fast_step` (the default) a step sets every agent's action, runs MPE's world
    physics on arrays (`ArrayWorldStep`) and MPE's own observations, without
    PettingZoo's AEC-to-parallel wrapper (which steps the agents one by one and
    computes every agent's observation twice) and without MPE's rewards (replaced
    here). The episodes are the same (tests/test_predator_prey_env.py steps both side
    by side).
    """

    def __init__(self, env_config: dict | None = None):
        from mpe2 import simple_tag_v3

        config = {**DEFAULTS, **(env_config or {})}
        check_predator_prey_config(env_config or {})
        env = simple_tag_v3.parallel_env(
            num_good=1,
            num_adversaries=config["num_predators"],
            num_obstacles=config["num_obstacles"],
            max_cycles=config["max_cycles"],
            continuous_actions=False,
            render_mode=config["render_mode"],
        )
        # MPE renders a "human" window inside its AEC step: that mode keeps it.
        world = env.unwrapped.world
        self._fast_step = (
            config["fast_step"]
            and config["render_mode"] != "human"
            and ArrayWorldStep.applies_to(world)
        )
        self._predators = [a for a in world.agents if a.adversary]
        (self._prey,) = [a for a in world.agents if not a.adversary]
        # simple_tag's reset_world leaves speeds alone (without its curriculum option).
        self._prey.max_speed *= config["prey_speed"]
        self._prey.accel *= config["prey_speed"]
        self._touch_distance_sq = [(p.size + self._prey.size) ** 2 for p in self._predators]
        super().__init__(
            env,
            agents=[p.name for p in self._predators],
            other_actions=self._prey_action,
        )

    # An env pickled mid-episode before `fast_step` existed keeps the wrapper's step.
    _fast_step = False
    _world_step = None

    # `ArrayWorldStep` is built from the world at the next step, never pickled: a
    # checkpoint then restores under a version whose `ArrayWorldStep` differs (one
    # from an earlier version is dropped).
    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_world_step", None)
        return state

    def __setstate__(self, state: dict) -> None:
        state.pop("_world_step", None)
        super().__setstate__(state)

    def step(self, action_dict):
        if not self._fast_step:
            return super().step(action_dict)
        mpe = self.env.unwrapped
        actions = {**action_dict, **self._prey_action()}
        # What MPE's AEC step does once the last agent has acted (mpe2 1.1's SimpleEnv
        # `_execute_world_step`, with every agent movable and silent, then `steps` and
        # `max_cycles`), less MPE's rewards, which `_rewards` replaces; the world's
        # physics on arrays.
        world = mpe.world
        for agent in world.agents:
            action = actions[agent.name] % (2 * world.dim_p + 1)
            mpe._set_action([action], agent, mpe.action_spaces[agent.name])
        if self._world_step is None:
            self._world_step = ArrayWorldStep(world)
        self._world_step(world)
        mpe.steps += 1
        truncated = mpe.steps >= mpe.max_cycles
        ended = truncated or mpe.scenario.is_terminal(mpe.world)
        terminated, truncated = end_of_episode(
            self.agents,
            dict.fromkeys(self.agents, ended and not truncated),
            dict.fromkeys(self.agents, truncated),
        )
        obs = {aid: mpe.observe(aid) for aid in self.agents}
        return obs, self._rewards(None), terminated, truncated, {aid: {} for aid in self.agents}

    def _predator_positions(self) -> list[list[float]]:
        return [p.state.p_pos.tolist() for p in self._predators]

    def _prey_action(self) -> dict:
        prey_pos = self._prey.state.p_pos.tolist()
        return {self._prey.name: flee_action(prey_pos, self._predator_positions())}

    def _rewards(self, rewards: dict) -> dict:
        px, py = self._prey.state.p_pos.tolist()
        positions = self._predator_positions()
        touching = sum(
            (x - px) ** 2 + (y - py) ** 2 < touch_sq
            for (x, y), touch_sq in zip(positions, self._touch_distance_sq)
        )
        caught = float(touching >= 2)
        return {aid: caught - bound(x) - bound(y) for aid, (x, y) in zip(self.agents, positions)}


def check_predator_prey_config(config: dict) -> None:
    check_known_keys(ENV_NAME, config, DEFAULTS)
    # Two predators must touch the prey for a reward.
    check_int(ENV_NAME, config, "num_predators", 2)
    check_int(ENV_NAME, config, "max_cycles", 1)
    check_int(ENV_NAME, config, "num_obstacles", 0)
    check_positive(ENV_NAME, config, "prey_speed")
    check_bool(ENV_NAME, config, "fast_step")
