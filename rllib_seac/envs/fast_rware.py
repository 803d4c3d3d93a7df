"""rware's Warehouse with the same dynamics at several times the speed.

rware 2.0.0 spends most of a step building observations one sensor cell at a
time and resolving moves with networkx graphs. `FastWarehouse` builds every
agent's observation in a few array operations and resolves moves without
networkx whenever the answer is unambiguous. Trajectories, rewards and the RNG
stream are identical to rware's (tests/test_fast_rware.py steps both side by
side); anything it does not accelerate falls back to rware's own code.
"""

from __future__ import annotations

import numpy as np
from rware.warehouse import (
    _LAYER_AGENTS,
    _LAYER_SHELFS,
    Action,
    Direction,
    RewardType,
    Warehouse,
)

_DIRECTIONS = len(Direction)


class FastWarehouse(Warehouse):
    def reset(self, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        if not self._accelerated_obs():
            return obs, info
        self._observations = Observations(self, 1)
        return self._observe_all(), info

    def __setstate__(self, state: dict) -> None:
        # Pickled by an older version (a checkpoint's envs): its buffers were its own.
        for old in ("_padded", "_agent_rows", "_shelf_rows", "_window"):
            state.pop(old, None)
        self.__dict__.update(state)
        if "_observations" not in state and hasattr(self, "shelfs") and self._accelerated_obs():
            self._observations = Observations(self, 1)

    def _accelerated_obs(self) -> bool:
        # The flattened vector observation with integer coordinates: what every
        # registered rware-*-v2 id uses. Other observation types keep rware's code.
        return bool(self.fast_obs) and not self.normalised_coordinates

    def _observe_all(self) -> tuple:
        return tuple(self._observations([self])[0])

    def step(self, actions):
        rewards, done = self.advance(actions)
        if self._accelerated_obs():
            obs = self._observe_all()
        else:
            obs = tuple(self._make_obs(agent) for agent in self.agents)
        return obs, list(rewards), done, False, self._get_info()

    def advance(self, actions) -> tuple[np.ndarray, bool]:
        """`step` without the observations: moves, loads and deliveries; the
        agents' rewards and whether the episode ended."""
        assert len(actions) == len(self.agents)
        for agent, action in zip(self.agents, actions):
            if self.msg_bits > 0:
                agent.req_action = Action(action[0])
                agent.message[:] = action[1:]
            else:
                agent.req_action = Action(action)

        moves = [(agent, (agent.x, agent.y), self._target(agent)) for agent in self.agents]
        committed = self._committed_agents(moves)
        if committed is None:
            committed = self._committed_agents_networkx(moves)
        for agent in self.agents:
            if agent not in committed:
                assert agent.req_action == Action.FORWARD
                agent.req_action = Action.NOOP

        rewards = np.zeros(self.n_agents)
        for agent in self.agents:
            agent.prev_x, agent.prev_y = agent.x, agent.y
            if agent.req_action == Action.FORWARD:
                agent.x, agent.y = agent.req_location(self.grid_size)
                if agent.carrying_shelf:
                    agent.carrying_shelf.x, agent.carrying_shelf.y = agent.x, agent.y
            elif agent.req_action in (Action.LEFT, Action.RIGHT):
                agent.dir = agent.req_direction()
            elif agent.req_action == Action.TOGGLE_LOAD and not agent.carrying_shelf:
                shelf_id = self.grid[_LAYER_SHELFS, agent.y, agent.x]
                if shelf_id:
                    agent.carrying_shelf = self.shelfs[shelf_id - 1]
            elif agent.req_action == Action.TOGGLE_LOAD and agent.carrying_shelf:
                if not self._is_highway(agent.x, agent.y):
                    agent.carrying_shelf = None
                    if agent.has_delivered and self.reward_type == RewardType.TWO_STAGE:
                        rewards[agent.id - 1] += 0.5
                    agent.has_delivered = False

        self._recalc_grid()
        shelf_delivered = self._deliver(rewards)

        if shelf_delivered:
            self._cur_inactive_steps = 0
        else:
            self._cur_inactive_steps += 1
        self._cur_steps += 1
        done = bool(
            (self.max_inactivity_steps and self._cur_inactive_steps >= self.max_inactivity_steps)
            or (self.max_steps and self._cur_steps >= self.max_steps)
        )
        return rewards, done

    def _target(self, agent) -> tuple[int, int]:
        """Where the agent asks to go; a loaded agent facing a standing shelf stays
        (and its action becomes NOOP), as in rware."""
        start, target = (agent.x, agent.y), agent.req_location(self.grid_size)
        if agent.carrying_shelf and start != target:
            tx, ty = target
            other = self.grid[_LAYER_AGENTS, ty, tx]
            if self.grid[_LAYER_SHELFS, ty, tx] and not (
                other and self.agents[other - 1].carrying_shelf
            ):
                agent.req_action = Action.NOOP
                return start
        return target

    def _committed_agents(self, moves) -> set | None:
        """The agents whose request succeeds, as rware's graph rules decide it.

        Each agent adds the edge start -> target; starts are distinct, so every
        weakly connected component holds at most one cycle. A component with a
        cycle commits the agents on it (none for a 2-cycle: two agents cannot swap
        cells). A component without one commits the agents on its longest path;
        when two chains compete for one cell, which one wins depends on networkx's
        traversal order, so those steps return None for rware's own resolution.
        """
        target_of = {start: target for _, start, target in moves}
        agent_at = {start: agent for agent, start, _ in moves}
        feeds = {}
        for start, target in target_of.items():
            feeds.setdefault(target, []).append(start)

        committed, seen = set(), set()
        for _, start, _ in moves:
            if start in seen:
                continue
            # Walk forward to the cycle or to the free cell that ends this component.
            path, on_path, node = [], set(), start
            while node in target_of and node not in on_path:
                path.append(node)
                on_path.add(node)
                node = target_of[node]
            component = self._component(node, feeds)
            seen |= component
            if node in on_path:
                cycle = path[path.index(node) :]
                if len(cycle) != 2:
                    committed.update(agent_at[cell] for cell in cycle)
            elif any(len(feeds.get(cell, ())) > 1 for cell in component):
                return None
            else:
                committed.update(agent_at[cell] for cell in component if cell in agent_at)
        return committed

    @staticmethod
    def _component(sink_or_cycle_cell, feeds) -> set:
        """All cells that lead to `sink_or_cycle_cell` (itself included)."""
        component, frontier = {sink_or_cycle_cell}, [sink_or_cycle_cell]
        while frontier:
            for cell in feeds.get(frontier.pop(), ()):
                if cell not in component:
                    component.add(cell)
                    frontier.append(cell)
        return component

    def _committed_agents_networkx(self, moves) -> set:
        """rware 2.0.0's resolution, verbatim in its use of networkx."""
        import networkx as nx

        graph = nx.DiGraph()
        for _, start, target in moves:
            graph.add_edge(start, target)
        ids = set()
        for comp in [graph.subgraph(c).copy() for c in nx.weakly_connected_components(graph)]:
            try:
                cycle = nx.algorithms.find_cycle(comp)
                if len(cycle) == 2:
                    continue
                cells = [edge[0] for edge in cycle]
            except nx.NetworkXNoCycle:
                cells = nx.algorithms.dag_longest_path(comp)
            for x, y in cells:
                agent_id = self.grid[_LAYER_AGENTS, y, x]
                if agent_id:
                    ids.add(agent_id)
        return {self.agents[i - 1] for i in ids}

    def _deliver(self, rewards: np.ndarray) -> bool:
        """rware's delivery rule: a requested shelf on a goal is replaced in the
        queue by a random unrequested one and rewards the agent(s)."""
        delivered = False
        for y, x in self.goals:
            shelf_id = self.grid[_LAYER_SHELFS, x, y]
            if not shelf_id:
                continue
            shelf = self.shelfs[shelf_id - 1]
            if shelf not in self.request_queue:
                continue
            delivered = True
            candidates = [s for s in self.shelfs if s not in self.request_queue]
            self.request_queue[self.request_queue.index(shelf)] = self.np_random.choice(candidates)
            if self.reward_type == RewardType.GLOBAL:
                rewards += 1
            elif self.reward_type == RewardType.INDIVIDUAL:
                rewards[self.grid[_LAYER_AGENTS, x, y] - 1] += 1
            elif self.reward_type == RewardType.TWO_STAGE:
                agent_id = self.grid[_LAYER_AGENTS, x, y]
                self.agents[agent_id - 1].has_delivered = True
                rewards[agent_id - 1] += 0.5
        return delivered


class Observations:
    """Builds the observations of several warehouses of one layout (`same_layout`) in
    one array program: every agent's flattened observation, as rware's
    `_get_default_obs` writes it: [x, y, carrying, direction one-hot, on highway] then,
    per sensor cell, [has agent, its direction one-hot (UP if none), message, has
    shelf, requested]. Holds only buffers: the warehouses are passed at each call
    (a reset replaces their agents, shelves and grid)."""

    def __init__(self, warehouse: Warehouse, n_envs: int):
        r, n = warehouse.sensor_range, warehouse.n_agents
        self._r, self._msg_bits = r, warehouse.msg_bits
        self._highways = warehouse.highways
        # The grids with r empty cells around them, and rows of observation
        # features indexed by env and agent / shelf id (row 0: none).
        rows, cols = warehouse.grid_size
        self._padded = np.zeros((n_envs, 2, rows + 2 * r, cols + 2 * r), warehouse.grid.dtype)
        self._agent_rows = np.zeros((n_envs, n + 1, 1 + _DIRECTIONS + self._msg_bits), np.float32)
        self._shelf_rows = np.zeros((n_envs, len(warehouse.shelfs) + 1, 2), np.float32)
        self._shelf_rows[:, 1:, 0] = 1.0
        self._window = np.arange(2 * r + 1)
        self._envs = np.arange(n_envs)[:, None]  # [E, 1]
        self._ids = np.arange(n)[None]  # [1, n]

    @staticmethod
    def same_layout(warehouses) -> bool:
        """Whether one `Observations` serves all of them (and they are accelerated)."""

        def layout(w):
            return (w.grid_size, w.n_agents, w.sensor_range, w.msg_bits, len(w.shelfs))

        first = warehouses[0]
        return all(
            isinstance(w, FastWarehouse)
            and w._accelerated_obs()
            and layout(w) == layout(first)
            and np.array_equal(w.highways, first.highways)
            for w in warehouses
        )

    def __call__(self, warehouses) -> np.ndarray:
        """[E, n agents, features], float32."""
        r, envs, ids = self._r, self._envs, self._ids
        padded = self._padded
        for e, w in enumerate(warehouses):
            padded[e, :, r:-r, r:-r] = w.grid
        agents = [w.agents for w in warehouses]

        agent_rows = self._agent_rows
        agent_rows[:] = 0.0
        agent_rows[:, 0, 1] = 1.0
        agent_rows[:, 1:, 0] = 1.0
        dirs = np.array([[a.dir.value for a in row] for row in agents])  # [E, n]
        agent_rows[envs, ids + 1, 1 + dirs] = 1.0
        if self._msg_bits:
            agent_rows[:, 1:, 1 + _DIRECTIONS :] = [[a.message for a in row] for row in agents]
        shelf_rows = self._shelf_rows
        shelf_rows[:, :, 1] = 0.0
        for e, w in enumerate(warehouses):
            shelf_rows[e, [s.id for s in w.request_queue], 1] = 1.0

        xs = np.array([[a.x for a in row] for row in agents])  # [E, n]
        ys = np.array([[a.y for a in row] for row in agents])
        rows = (ys[..., None] + self._window)[..., :, None]  # padded coordinates of each cell
        cols = (xs[..., None] + self._window)[..., None, :]
        env = envs[..., None, None]  # [E, 1, 1, 1]
        sensors = np.concatenate(
            [
                agent_rows[env, padded[env, _LAYER_AGENTS, rows, cols]],
                shelf_rows[env, padded[env, _LAYER_SHELFS, rows, cols]],
            ],
            axis=-1,
        ).reshape(*xs.shape, -1)

        own = np.zeros((*xs.shape, 3 + _DIRECTIONS + 1), np.float32)
        own[..., 0] = xs
        own[..., 1] = ys
        own[..., 2] = [[a.carrying_shelf is not None for a in row] for row in agents]
        own[envs, ids, 3 + dirs] = 1.0
        own[..., -1] = self._highways[ys, xs]
        return np.concatenate([own, sensors], axis=-1)
