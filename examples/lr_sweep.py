"""A learning-rate sweep of SEAC with Tune: lr x seed grid, one learning curve per lr.

    python examples/lr_sweep.py [--env Foraging-8x8-2p-2f-v3] [--env-steps 1000000]
        [--seeds 3] [--out results] [--max-concurrent-trials N]

Writes Tune's results and returns.png (mean ± std over seeds per lr) in the run
directory. The paper's lr is 3e-4 (Table 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ray import tune

import rllib_seac
from rllib_seac.plotting import plot

LRS = [1e-4, 3e-4, 1e-3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Foraging-8x8-2p-2f-v3")
    parser.add_argument("--env-steps", type=int, default=1_000_000, help="Budget per trial.")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="results", help="Tune's storage directory.")
    parser.add_argument(
        "--max-concurrent-trials",
        type=int,
        help="Trials at once (default: as many as the CPUs allow, one CPU per trial).",
    )
    args = parser.parse_args()

    rllib_seac.register([args.env])
    # The paper's LBF episode limit (App. A.2); other envs keep their own.
    env_config = {"max_episode_steps": 25} if args.env.startswith("Foraging") else {}
    tuner = tune.Tuner(
        "SEAC",
        param_space={
            "env": args.env,
            "env_config": env_config,
            "lr": tune.grid_search(LRS),
            "seed": tune.grid_search(list(range(args.seeds))),
        },
        tune_config=tune.TuneConfig(max_concurrent_trials=args.max_concurrent_trials),
        run_config=tune.RunConfig(
            name="lr-sweep",
            storage_path=str(Path(args.out).resolve()),
            stop={"num_env_steps_sampled_lifetime": args.env_steps},
        ),
    )
    run_dir = Path(tuner.fit().experiment_path)
    print(plot([run_dir], run_dir / "returns.png", label_by="lr"))


if __name__ == "__main__":
    main()
