"""The size of a SEQL checkpoint with `store_buffer_in_checkpoints=True`, by how full
its replay buffers are: bytes on disk per stored env step and per agent transition.

    python benchmarks/investigations/seql_checkpoint_size.py
        [--envs Foraging-8x8-2p-2f-v3 rware-tiny-2ag-v2]
        [--steps 2000 20000] [--json]

For each env, one SEQL (SEQLConfig's defaults; LBF with the paper's 25-step
episodes, rware with its own 500) steps its in-process loop without learning (the
buffers' content, not the networks, is what grows) and saves a checkpoint each time
its buffers hold the next of `--steps` env steps. Bytes per env step is the slope
between the first and the last checkpoint (the networks, Adam state and config are
the same in both), per agent transition that divided by the agents; next to it the
bytes the buffers take in memory per env step, and the slope carried to a full
buffer of 1e6 steps (the default capacity).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ENV_CONFIGS = {"Foraging-8x8-2p-2f-v3": {"max_episode_steps": 25}}
FULL_BUFFER = 1_000_000
CHUNK = 1000  # env steps per train(): the fills are rounded up to it


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(env: str, steps: list[int], tmp: Path) -> dict:
    from rllib_seac import SEQLConfig
    from rllib_seac.seql.algorithm import COMPONENT_IN_PROCESS_LOOP

    config = (
        SEQLConfig()
        .environment(env, env_config=ENV_CONFIGS.get(env, {}))
        # No update: learning starts past the last checkpoint.
        .training(
            store_buffer_in_checkpoints=True,
            num_steps_sampled_before_learning_starts=max(steps) + 1,
        )
        .reporting(min_sample_timesteps_per_iteration=CHUNK)
        .debugging(seed=0)
    )
    checkpoints = []
    algo = config.build_algo()
    try:
        for target in sorted(steps):
            while algo._loop is None or algo._loop.buffers.size < target:
                algo.train()
            path = Path(algo.save_to_path(str(tmp / f"{env}-{target}")))
            state = algo.get_state(components=COMPONENT_IN_PROCESS_LOOP)[COMPONENT_IN_PROCESS_LOOP]
            checkpoints.append(
                {
                    "env_steps_in_buffers": algo._loop.buffers.size,
                    "checkpoint_bytes": directory_bytes(path),
                    "next_obs_rows_kept": len(state["buffers"]["next_obs_rows"]),
                }
            )
        buffers = algo._loop.buffers
        n_agents = len(buffers.obs)
        columns = (buffers.obs, buffers.next_obs, buffers.actions, buffers.rewards)
        memory_per_step = sum(a[:, 0].nbytes for a in (*columns, buffers.terminateds))
    finally:
        algo.stop()
    first, last = checkpoints[0], checkpoints[-1]
    per_step = (last["checkpoint_bytes"] - first["checkpoint_bytes"]) / (
        last["env_steps_in_buffers"] - first["env_steps_in_buffers"]
    )
    return {
        "env": env,
        "agents": n_agents,
        "obs_size": int(buffers.obs[0, 0].size),
        "checkpoints": checkpoints,
        "bytes_per_env_step": round(per_step, 1),
        "bytes_per_agent_transition": round(per_step / n_agents, 1),
        "memory_bytes_per_env_step": memory_per_step,
        "full_buffer_checkpoint_mb": round(
            (first["checkpoint_bytes"] + per_step * (FULL_BUFFER - first["env_steps_in_buffers"]))
            / 1e6,
            1,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["Foraging-8x8-2p-2f-v3", "rware-tiny-2ag-v2"])
    parser.add_argument("--steps", nargs="+", type=int, default=[2000, 20000])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if len(set(args.steps)) < 2:
        parser.error("--steps needs two or more different fills")

    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = [measure(env, args.steps, Path(tmp)) for env in args.envs]
    finally:
        ray.shutdown()
    command = "python benchmarks/investigations/seql_checkpoint_size.py " + " ".join(sys.argv[1:])
    if args.json:
        print(json.dumps({"command": command.strip(), "rows": rows}))
        return
    print(f"$ {command.strip()}")
    print(
        "| env | agents | obs | bytes / env step | bytes / agent transition | in memory "
        "/ env step | checkpoint of 1e6 steps |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['env']} | {r['agents']} | {r['obs_size']} | {r['bytes_per_env_step']:,} | "
            f"{r['bytes_per_agent_transition']:,} | {r['memory_bytes_per_env_step']:,} | "
            f"{r['full_buffer_checkpoint_mb']:,} MB |"
        )


if __name__ == "__main__":
    main()
