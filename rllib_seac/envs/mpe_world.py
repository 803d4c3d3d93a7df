"""MPE's world step (mpe2 1.1's `World.step`) on arrays, with the same result.

MPE computes the contact force of each pair of entities in Python, a dozen numpy calls
on 2-vectors per pair: with predator-prey's 6 entities that was most of an env step.
`ArrayWorldStep` does the same arithmetic, operation for operation, on all pairs at
once, and adds up each agent's forces in MPE's order, so positions and velocities come
out bit for bit as MPE's (tests/test_predator_prey_env.py steps both side by side).
"""

from __future__ import annotations

import numpy as np


class ArrayWorldStep:
    """`World.step` of one MPE world whose agents all move and are silent, without
    scripted agents, action noise or movable landmarks (`applies_to`). The world's
    entities must stay the same objects between calls (MPE's scenarios reset their
    states, not the entities)."""

    def __init__(self, world):
        self.agents = world.agents  # the movable entities, first in `world.entities`
        n = len(world.entities)
        colliders = [e.collide for e in world.entities]
        # Every pair (a < b) of colliders in MPE's order, and its minimum distance.
        pairs = [(a, b) for a in range(n) for b in range(a + 1, n) if colliders[a] and colliders[b]]
        sizes = [e.size for e in world.entities]
        self.pair_a = np.array([a for a, _ in pairs], dtype=np.int64)
        self.pair_b = np.array([b for _, b in pairs], dtype=np.int64)
        self.dist_min = np.array([sizes[a] + sizes[b] for a, b in pairs])
        # Where each pair's force goes in `terms` (agent, 1 + other entity): + on a,
        # - on b, as get_collision_force returns them; only agents move.
        slots = [
            (receiver, giver, p, sign)
            for p, (a, b) in enumerate(pairs)
            for receiver, giver, sign in ((a, b, 1.0), (b, a, -1.0))
            if receiver < len(self.agents)
        ]
        self.to_agent = np.array([s[0] for s in slots], dtype=np.int64)
        self.from_other = np.array([s[1] for s in slots], dtype=np.int64)
        self.pair = np.array([s[2] for s in slots], dtype=np.int64)
        self.sign = np.array([[s[3]] for s in slots])
        self.terms_shape = (len(self.agents), n + 1, world.dim_p)
        self.mass = np.array([[a.mass] for a in self.agents])
        # Agents without a speed limit get an infinite one (never exceeded).
        self.max_speed = np.array(
            [[np.inf if a.max_speed is None else a.max_speed] for a in self.agents]
        )

    @staticmethod
    def applies_to(world) -> bool:
        """Whether `World.step` does no more than this for `world`."""
        return (
            not world.scripted_agents
            and all(a.movable and a.silent and not a.u_noise for a in world.agents)
            and not any(e.movable for e in world.landmarks)
        )

    def __call__(self, world) -> None:
        agents = self.agents
        # get_collision_force for every pair of colliders.
        pos = np.array([e.state.p_pos for e in world.entities])
        delta_pos = pos[self.pair_a] - pos[self.pair_b]
        dist = np.sqrt(np.sum(np.square(delta_pos), axis=1))
        k = world.contact_margin
        penetration = np.logaddexp(0, -(dist - self.dist_min) / k) * k
        contact = world.contact_force * delta_pos / dist[:, None] * penetration[:, None]
        # apply_action_force (u + 0.0: MPE's noise without u_noise), then
        # apply_environment_force, which adds an agent's contact forces one at a time
        # in the order of the other entity's index. A running sum along that axis adds
        # them in that order; the +0.0 of an absent pair changes no sum (one that
        # starts at u + 0.0 is never -0.0).
        terms = np.zeros(self.terms_shape)
        terms[:, 0] = np.array([a.action.u for a in agents]) + 0.0
        terms[self.to_agent, self.from_other + 1] = contact[self.pair] * self.sign
        force = np.add.accumulate(terms, axis=1)[:, -1]
        # integrate_state
        vel = np.array([a.state.p_vel for a in agents])
        new_pos = pos[: len(agents)] + vel * world.dt
        vel = vel * (1 - world.damping)
        vel += (force / self.mass) * world.dt
        speed = np.sqrt(np.square(vel[:, 0]) + np.square(vel[:, 1]))[:, None]
        fast = speed[:, 0] > self.max_speed[:, 0]
        vel[fast] = vel[fast] / speed[fast] * self.max_speed[fast]
        # update_agent_state: silent agents say nothing.
        for a, p, v in zip(agents, new_pos, vel):
            a.state.p_pos[:] = p
            a.state.p_vel = v
            a.state.c = np.zeros(world.dim_c)
