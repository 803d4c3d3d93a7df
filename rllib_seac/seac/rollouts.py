"""n-step rollouts of all agents in a batch of envs, in process or in worker processes.

`RolloutCollector` steps an `EnvBatch` with the agents' policies (one batched
forward per step for every agent and env) and returns dense arrays laid out
[agents, envs, n_steps, ...] plus the episodes that ended. `RolloutWorkers` runs
collectors over slices of the envs in forked processes, one message per rollout
each way, so the envs step on several cores; the actors' weights travel through
shared memory.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle

import numpy as np
import torch
from ray.rllib.core.columns import Columns

from rllib_seac.columns import (
    ACTIONS,
    BEHAVIOUR_LOGP,
    NEXT_OBS,
    OBS,
    REWARDS,
    TERMINATEDS,
    TRUNCATEDS,
)
from rllib_seac.envs.env_batch import EnvBatch
from rllib_seac.numerics.stacked_mlp import numpy_layers, numpy_mlp_forward, relu_mlp_linears
from rllib_seac.seeding import derived_seed

# The RLModule methods between an observation and the action logits when sampling:
# where a module overrides none of them, its actor MLP runs in numpy.
EXPLORATION_PATH = ("forward_exploration", "_forward_exploration", "_forward", "setup")


class RolloutCollector:
    def __init__(self, envs: EnvBatch, module, module_of_agent, n_steps: int, seed=None):
        self.envs, self.module, self.n_steps = envs, module, n_steps
        self._module_of_agent = module_of_agent
        self._actors = None
        # (the modules, their actors' Linear layers or [] for their own forward)
        self._actor_linears: tuple[list, list] = ([], [])
        # Its own random stream for the actions, so that a seeded rollout does not
        # depend on which process collects it.
        self._rng = np.random.default_rng(seed)
        self._obs = None  # [N, E, D], what the next step acts on
        n_agents, n_envs = len(envs.agent_ids), len(envs.envs)
        self._returns = np.zeros((n_agents, n_envs))
        self._lengths = np.zeros(n_envs, dtype=np.int64)

    def weights_changed(self) -> None:
        self._actors = None

    def _act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Samples a^j ~ pi_j(.|o^j) for all agents j and envs: [N, E] actions, log-probs.

        In numpy: for agents x envs rows (8 at 2 agents) a numpy op costs a
        fraction of a torch call. Actions are drawn by inverse CDF, one uniform
        per row from the collector's own generator.
        """
        if self._actors is None:  # re-stacked after each weight update
            modules = [self.module[m] for m in self._module_of_agent]
            seen, linears = self._actor_linears
            if len(seen) != len(modules) or any(a is not b for a, b in zip(seen, modules)):
                # Which layers run in numpy: looked up once per set of modules.
                linears = _actor_linears(modules)
                self._actor_linears = (modules, linears)
            self._actors = numpy_layers(linears) if linears else []
        if self._actors:
            x = numpy_mlp_forward(self._actors, obs)  # [N, E, A]
        else:  # the modules' own forward, where it is not the stock actor MLP's
            x = _exploration_logits([self.module[m] for m in self._module_of_agent], obs)
        shifted = x - x.max(-1, keepdims=True)
        unnormalised = np.exp(shifted)
        total = unnormalised.sum(-1, keepdims=True)
        log_pi = shifted - np.log(total)
        cdf = np.cumsum(unnormalised / total, axis=-1)
        uniform = self._rng.random(x.shape[:-1], dtype=np.float32)[..., None]
        # min(): rounding can leave cdf[-1] a hair under 1.
        actions = np.minimum((cdf < uniform).sum(-1), x.shape[-1] - 1)
        logp = np.take_along_axis(log_pi, actions[..., None], -1)[..., 0]
        return actions, logp

    def collect(self) -> tuple[dict[str, np.ndarray], list[tuple[np.ndarray, int]]]:
        """One rollout: columns [N, E, T, ...], and (per-agent return, length) of
        every episode that ended in it."""
        if self._obs is None:
            self._obs = self.envs.reset()
        shape = (*self._returns.shape, self.n_steps)
        obs_shape = self._obs.shape[2:]
        out = {
            OBS: np.empty((*shape, *obs_shape), np.float32),
            NEXT_OBS: np.empty((*shape, *obs_shape), np.float32),
            ACTIONS: np.empty(shape, np.int64),
            BEHAVIOUR_LOGP: np.empty(shape, np.float32),
            REWARDS: np.empty(shape, np.float32),
            TERMINATEDS: np.empty(shape, bool),
            TRUNCATEDS: np.empty(shape, bool),
        }
        episodes = []
        for t in range(self.n_steps):
            out[OBS][:, :, t] = self._obs
            actions, logp = self._act(self._obs)
            out[ACTIONS][:, :, t] = actions
            out[BEHAVIOUR_LOGP][:, :, t] = logp
            step = self.envs.step(actions)
            out[NEXT_OBS][:, :, t] = step["next_obs"]
            out[REWARDS][:, :, t] = step["rewards"]
            out[TERMINATEDS][:, :, t] = step["terminated"]
            out[TRUNCATEDS][:, :, t] = step["truncated"]
            self._returns += step["rewards"]
            self._lengths += 1
            for e in np.flatnonzero(step["ended"]):
                episodes.append((self._returns[:, e].copy(), int(self._lengths[e])))
                self._returns[:, e] = 0.0
                self._lengths[e] = 0
            self._obs = step["obs"]
        return out, episodes

    def get_state(self) -> bytes | None:
        """Everything the next rollout depends on: the envs mid-episode (their random
        generators included), the observations to act on, the running episode sums and
        the action sampler's stream. A run restored with it continues exactly. None
        where an env cannot be pickled (then a restored run starts new episodes)."""
        envs = self.envs.pickled_envs()
        if envs is None:
            return None
        rng = self._rng.bit_generator.state
        return pickle.dumps((envs, self._obs, self._returns, self._lengths, rng))

    def set_state(self, state: bytes) -> None:
        envs, self._obs, self._returns, self._lengths, rng = pickle.loads(state)
        self.envs.replace_envs(pickle.loads(envs))
        if isinstance(rng, dict):
            self._rng.bit_generator.state = rng
        # Otherwise a checkpoint from before the numpy sampler (a torch generator's
        # state): the envs resume exactly, the actions draw on from this run's stream.

    def close(self) -> None:
        self.envs.close()


@torch.no_grad()
def _actor_linears(modules: list) -> list[list]:
    """The Linear layers of the agents' actor MLPs (run in numpy by
    `numerics.stacked_mlp`), or [] where a module's exploration forward is not the
    stock actor MLP's (a subclass that overrides it, or another network): then the
    modules' own forward samples (`_exploration_logits`)."""
    from rllib_seac.fused_guard import overridden
    from rllib_seac.seac.rl_module import SEACTorchRLModule

    linears = []
    for module in modules:
        if not isinstance(module, SEACTorchRLModule) or overridden(
            module, SEACTorchRLModule, EXPLORATION_PATH
        ):
            return []
        layers = relu_mlp_linears(module.actor)
        if layers is None:
            return []
        linears.append(layers)
    if len({tuple(layer.weight.shape for layer in net) for net in linears}) != 1:
        return []
    return linears


@torch.no_grad()
def _exploration_logits(modules: list, obs: np.ndarray) -> np.ndarray:
    """Each agent's `forward_exploration` on its observations [N, E, D]: [N, E, A]."""
    return np.stack(
        [
            module.forward_exploration({Columns.OBS: torch.from_numpy(o)})[
                Columns.ACTION_DIST_INPUTS
            ].numpy()
            for module, o in zip(modules, obs)
        ]
    ).astype(np.float32)


def actor_parameters(module) -> list[torch.Tensor]:
    """Every module's actor parameters (module ids sorted): all that rollouts use."""
    return [p for mid in sorted(module.keys()) for p in module[mid].actor.parameters()]


# Requests to a worker process: one byte.
_COLLECT, _LOAD_AND_COLLECT, _STOP = b"c", b"w", b"s"


def _serve(
    conn, weights, env, env_config, n_envs, seed, first_index, module, module_of_agent, n_steps
):
    """Worker process: a collector over its slice of the envs, one rollout per request."""
    torch.set_num_threads(1)  # its inference is numpy; torch only loads weights
    envs = EnvBatch(env, env_config, n_envs, seed, first_index)
    collector = RolloutCollector(
        envs, module, module_of_agent, n_steps, derived_seed(seed, first_index)
    )
    params = actor_parameters(collector.module)
    chunks = [
        c.view_as(p) for c, p in zip(torch.split(weights, [p.numel() for p in params]), params)
    ]
    while True:
        request = conn.recv_bytes()
        if request == _STOP:
            collector.close()
            return
        if request == _LOAD_AND_COLLECT:
            with torch.no_grad():
                torch._foreach_copy_(params, chunks)
            collector.weights_changed()
        conn.send(collector.collect())


class RolloutWorkers:
    """Collectors over slices of the envs in forked worker processes.

    `request(new_weights)` starts a rollout in every worker; `gather()` waits for
    them and joins the slices along the env axis. Between the two the caller is
    free (e.g. to run a learner step). `module`'s actor weights go to the workers
    through one shared float32 buffer, written by `request(new_weights=True)`
    while no worker reads it (a worker reads it only at the start of a rollout).
    """

    def __init__(
        self, env, env_config, n_envs, seed, n_processes, module, module_of_agent, n_steps
    ):
        # fork: spawn and forkserver re-import the user's __main__ in each worker,
        # which reruns an unguarded training script; forked workers inherit the
        # module to copy weights into, the shared buffer, and no torch or Ray state
        # of the parent that they use.
        ctx = mp.get_context("fork")
        self._params = actor_parameters(module)
        size = sum(p.numel() for p in self._params)
        self._weights = torch.from_numpy(np.frombuffer(ctx.RawArray("f", size), np.float32))
        slices = [s for s in np.array_split(np.arange(n_envs), n_processes) if len(s)]
        self._conns, self._procs = [], []
        for part in slices:
            parent, child = ctx.Pipe()
            args = (child, self._weights, env, dict(env_config), len(part), seed, int(part[0]))
            proc = ctx.Process(
                target=_serve, args=(*args, module, module_of_agent, n_steps), daemon=True
            )
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        self.in_flight = False

    def request(self, new_weights: bool) -> None:
        """Starts a rollout in every worker, with `module`'s current actor weights
        where `new_weights` (else with the weights the workers have)."""
        if new_weights:
            with torch.no_grad():
                torch.cat([p.reshape(-1) for p in self._params], out=self._weights)
        for conn in self._conns:
            conn.send_bytes(_LOAD_AND_COLLECT if new_weights else _COLLECT)
        self.in_flight = True

    def gather(self) -> tuple[dict[str, np.ndarray], list]:
        parts = [conn.recv() for conn in self._conns]
        self.in_flight = False
        if len(parts) == 1:
            columns = parts[0][0]
        else:
            columns = {k: np.concatenate([p[0][k] for p in parts], axis=1) for k in parts[0][0]}
        return columns, [episode for p in parts for episode in p[1]]

    def close(self) -> None:
        if self.in_flight:
            self.gather()
        for conn, proc in zip(self._conns, self._procs):
            try:
                conn.send_bytes(_STOP)
            except (BrokenPipeError, OSError):
                pass
            proc.join(timeout=5)
