"""lbforaging's ForagingEnv with the same dynamics at a fraction of the step's cost.

lbforaging 2.0.0 builds each agent's vector observation from an `Observation`
namedtuple (a copy of its field window, a `PlayerObservation` per agent in sight),
checks it against the observation space, and lists every agent's valid actions with
one method call per action. That is most of its step. `FastForaging` writes the
same vector observations straight from the field and the players' positions, and
lists the valid actions inline. Moves, loading, rewards and the RNG stream are
lbforaging's own code (`step` and `reset` are not overridden); observations,
rewards and valid actions are identical (tests/test_fast_lbf.py steps both side by
side). The grid observation and fields that are not square keep lbforaging's
observation code.
"""

from __future__ import annotations

import numpy as np
from lbforaging.foraging.environment import Action, ForagingEnv


class FastForaging(ForagingEnv):
    def _gen_valid_moves(self):
        # lbforaging's `_is_valid_action` for each agent, in Action's order, on the
        # field as Python lists (its LOAD test is `adjacent_food`, written out here).
        field, last_row, last_col = self.field.tolist(), self.rows - 1, self.cols - 1
        valid = {}
        for player in self.players:
            row, col = int(player.position[0]), int(player.position[1])
            actions = [Action.NONE]
            if row > 0 and field[row - 1][col] == 0:
                actions.append(Action.NORTH)
            if row < last_row and field[row + 1][col] == 0:
                actions.append(Action.SOUTH)
            if col > 0 and field[row][col - 1] == 0:
                actions.append(Action.WEST)
            if col < last_col and field[row][col + 1] == 0:
                actions.append(Action.EAST)
            adjacent = (
                field[max(row - 1, 0)][col]
                + field[min(row + 1, last_row)][col]
                + field[row][max(col - 1, 0)]
                + field[row][min(col + 1, last_col)]
            )
            if adjacent > 0:
                actions.append(Action.LOAD)
            valid[player] = actions
        self._valid_actions = valid

    def _make_gym_obs(self):
        # lbforaging's observation space swaps rows and columns: on a field that is
        # not square its own check fails once a coordinate passes the smaller bound.
        # Its code keeps that, and the grid observation.
        if self._grid_observation or self.rows != self.cols:
            return super()._make_gym_obs()
        rows, cols = self.field.nonzero()  # row-major, as each window's own nonzero()
        foods = list(zip(rows.tolist(), cols.tolist(), self.field[rows, cols].tolist()))
        agents = [(int(p.position[0]), int(p.position[1]), int(p.level)) for p in self.players]
        return tuple(self._vector_obs(i, agents, foods) for i in range(len(agents)))

    def _vector_obs(self, i: int, agents: list, foods: list) -> np.ndarray:
        """lbforaging's `make_obs_array(self._make_obs(player))` for agent i: the foods
        in its field window (row-major, window coordinates, level), then the agent
        itself and every other agent in sight (lbforaging's own, asymmetric test of
        "in sight"), each as (row, column[, level]); (-1, -1[, 0]) fills the rest.
        The field never holds more than max_num_food foods (lbforaging spawns at most
        that many), so the foods fit their slots."""
        sight, obs = self.sight, list(self._empty_obs())
        row, col, _ = agents[i]
        top, left = max(row - sight, 0), max(col - sight, 0)
        slot = 0
        for r, c, level in foods:
            if top <= r <= row + sight and left <= c <= col + sight:
                obs[slot : slot + 3] = (r - top, c - left, level)
                slot += 3
        row_offset, col_offset = min(sight, row) - row, min(sight, col) - col
        width = 3 if self._observe_agent_levels else 2
        slot = 3 * self.max_num_food
        for j in [i] + [j for j in range(len(agents)) if j != i]:
            r, c, level = agents[j]
            r, c = r + row_offset, c + col_offset
            if min(r, c) >= 0 and max(r, c) <= 2 * sight:
                obs[slot : slot + width] = (r, c, level)[:width]
                slot += width
        return np.array(obs, dtype=np.float32)

    def _empty_obs(self) -> tuple:
        """The observation with nothing seen (lbforaging's initial values): (-1, -1, 0)
        per food, (-1, -1[, 0]) per agent."""
        empty = getattr(self, "_empty", None)
        if empty is None:
            agent = (-1, -1, 0) if self._observe_agent_levels else (-1, -1)
            empty = (-1, -1, 0) * self.max_num_food + agent * len(self.players)
            self._empty = empty
        return empty
