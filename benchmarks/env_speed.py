"""Env steps/s of each wrapped env next to the raw env it wraps (random actions, one process).

    python benchmarks/env_speed.py [--seconds 10] [--json] [--own-step]

An env step is one step of one env with all agents acting. The raw env is the
package's own env as its users step it: rware and lbforaging through gymnasium with
a tuple of actions, predator-prey as MPE's simple_tag parallel env with the prey
acting (randomly) too. Random actions are drawn before timing, so only the envs are
timed, and raw and wrapped take turns every 100 steps so machine noise hits both alike.
Overhead is the wrapper's extra time per step, in % of the raw env's; negative when
the wrapped env is faster: the rware and LBF wrappers step FastWarehouse and
FastForaging (rware's and lbforaging's dynamics, faster), and predator-prey steps MPE's
world without PettingZoo's parallel wrapper. --own-step (`fast_step: false`) wraps
rware's and lbforaging's own classes and PettingZoo's wrapper instead, to time the
wrappers alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np

ENVS = [
    "rware-tiny-2ag-v2",
    "rware-tiny-4ag-v2",
    "Foraging-8x8-2p-2f-coop-v3",
    "Foraging-15x15-3p-4f-v3",
    "predator-prey-sparse",
]
CHUNK = 100  # steps of one side before the other's turn
N_ACTIONS = 1000  # pre-drawn random joint actions, cycled


def random_actions(spaces: dict, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    columns = {aid: rng.integers(space.n, size=N_ACTIONS).tolist() for aid, space in spaces.items()}
    return [{aid: columns[aid][t] for aid in spaces} for t in range(N_ACTIONS)]


def raw_stepper(name: str):
    """A function stepping the raw env n times (resetting at episode ends)."""
    import gymnasium as gym

    if name == "predator-prey-sparse":
        from mpe2 import simple_tag_v3

        env = simple_tag_v3.parallel_env(continuous_actions=False)
        env.reset(seed=0)
        actions = itertools.cycle(random_actions({a: env.action_space(a) for a in env.agents}))

        def step(n):
            for _ in range(n):
                _, _, term, trunc, _ = env.step(next(actions))
                if any(term.values()) or any(trunc.values()):
                    env.reset()

        return step

    import lbforaging  # noqa: F401  (registers the ids with gymnasium)
    import rware  # noqa: F401

    env = gym.make(name, disable_env_checker=True)
    env.reset(seed=0)
    spaces = dict(enumerate(env.action_space.spaces))
    actions = itertools.cycle([tuple(a.values()) for a in random_actions(spaces)])

    def step(n):
        for _ in range(n):
            _, _, done, truncated, _ = env.step(next(actions))
            if done or truncated:
                env.reset()

    return step


def wrapped_stepper(name: str, env_config: dict):
    from rllib_seac import make_env

    env = make_env(name, env_config)
    env.reset(seed=0)
    spaces = {aid: env.get_action_space(aid) for aid in env.possible_agents}
    actions = itertools.cycle(random_actions(spaces))

    def step(n):
        for _ in range(n):
            _, _, term, trunc, _ = env.step(next(actions))
            if term["__all__"] or trunc["__all__"]:
                env.reset()

    return step


def measure(name: str, seconds: float, env_config: dict) -> dict:
    steppers = {"raw": raw_stepper(name), "wrapped": wrapped_stepper(name, env_config)}
    elapsed = dict.fromkeys(steppers, 0.0)
    for step in steppers.values():
        step(CHUNK)  # warm-up, not timed
    rounds = 0
    while sum(elapsed.values()) < seconds:
        for kind, step in steppers.items():
            start = time.perf_counter()
            step(CHUNK)
            elapsed[kind] += time.perf_counter() - start
        rounds += 1
    rate = {kind: rounds * CHUNK / elapsed[kind] for kind in steppers}
    return {
        "env": name,
        "raw_steps_per_s": round(rate["raw"]),
        "wrapped_steps_per_s": round(rate["wrapped"]),
        "overhead_pct": round(100 * (rate["raw"] / rate["wrapped"] - 1), 1),
        "wrapped_over_raw_speed": round(rate["wrapped"] / rate["raw"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="Time per env, both sides together."
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument(
        "--own-step",
        action="store_true",
        help="wrap rware's and lbforaging's own classes and PettingZoo's parallel wrapper",
    )
    args = parser.parse_args()
    env_config = {"fast_step": not args.own_step}
    rows = [measure(name, args.seconds, env_config) for name in ENVS]
    if args.json:
        settings = {"seconds_per_env": args.seconds, "env_config": env_config}
        print(json.dumps({**settings, "envs": rows}))
        return
    print(
        f"{'env':<28} {'raw steps/s':>12} {'wrapped steps/s':>16} {'overhead':>9} "
        f"{'wrapped/raw':>12}"
    )
    for row in rows:
        print(
            f"{row['env']:<28} {row['raw_steps_per_s']:>12,} "
            f"{row['wrapped_steps_per_s']:>16,} {row['overhead_pct']:>8.1f}% "
            f"{row['wrapped_over_raw_speed']:>11.2f}x"
        )


if __name__ == "__main__":
    main()
