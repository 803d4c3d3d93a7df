"""End-to-end env steps/s of SEQL and IQL next to SEAC's, in one run.

    python benchmarks/seql_throughput.py [--envs rware-tiny-2ag-v2 Foraging-8x8-2p-2f-v3]
        [--seconds 30] [--json]

Per env: SEAC (Table 2: 4 envs, 5-step rollouts, one A2C update per rollout), SEQL
and IQL (the authors' settings: one env, one DQN update of batch 128 per env step),
their train() calls interleaved so machine noise hits all alike (benchmarks/
throughput.py's `build` and `rates`). Foraging-* envs get the paper's limit of 25
steps. An env step is one step of one env with all agents acting.
"""

from __future__ import annotations

import argparse
import json
import sys

from throughput import build, rates

LBF_EPISODE_LIMIT = 25
# Iterations of 200 env steps, so a few fit in the measured time (SEQLConfig: 1000).
SEQL_STEPS_PER_ITERATION = 200


def build_seql(env_name: str, env_config: dict, share: bool):
    from rllib_seac import SEQLConfig

    config = (
        SEQLConfig()
        .environment(env_name, env_config=env_config)
        .training(share_experience=share)
        .reporting(min_sample_timesteps_per_iteration=SEQL_STEPS_PER_ITERATION)
        .debugging(seed=0, log_level="ERROR")
    )
    return config.build_algo()


def measure(env_name: str, seconds: float) -> dict:
    env_config = {"max_episode_steps": LBF_EPISODE_LIMIT} if env_name.startswith("Foraging") else {}
    algos = {
        "SEAC": build(env_name, env_config=env_config),
        "SEQL": build_seql(env_name, env_config, share=True),
        "IQL": build_seql(env_name, env_config, share=False),
    }
    rate = rates(algos, seconds)
    return {
        "env": env_name,
        "env_config": env_config,
        **{f"{name.lower()}_env_steps_per_s": round(r, 1) for name, r in rate.items()},
        "seac_over_seql": round(rate["SEAC"] / rate["SEQL"], 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["rware-tiny-2ag-v2", "Foraging-8x8-2p-2f-v3"])
    parser.add_argument("--seconds", type=float, default=30, help="Measured time per algorithm.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    results = [measure(env, args.seconds) for env in args.envs]
    ray.shutdown()
    for r in results:
        print(json.dumps(r) if args.json else r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
