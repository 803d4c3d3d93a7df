"""SEAC's lambda sweep from Python with Tune: lambda x seed grid, then the figures.

    python examples/lambda_sweep.py [--env-steps 1000000] [--seeds 3] [--out results]
        [--max-concurrent-trials N]

The sweep of tuned_configs/lbf-8x8-2p-2f-lambda-sweep.yaml (the paper's App. B,
Fig. 10) on Foraging-8x8-2p-2f-v3 with the paper's episode limit of 25. Writes Tune's
results and lambda.png (final return against lambda) and returns.png (one curve per
lambda) in the run directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ray import tune

import rllib_seac
from rllib_seac.plotting import plot

ENV = "Foraging-8x8-2p-2f-v3"
LAMBDAS = [0.0, 0.3, 0.5, 0.9, 1.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-steps", type=int, default=1_000_000, help="Budget per trial.")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="results", help="Tune's storage directory.")
    parser.add_argument(
        "--max-concurrent-trials",
        type=int,
        help="Trials at once (default: as many as the CPUs allow, one CPU per trial).",
    )
    args = parser.parse_args()

    rllib_seac.register([ENV])  # the "SEAC" trainable and the env name
    tuner = tune.Tuner(
        "SEAC",
        param_space={
            "env": ENV,
            "env_config": {"max_episode_steps": 25},  # the paper's LBF limit (App. A.2)
            "seac_lambda": tune.grid_search(LAMBDAS),
            "seed": tune.grid_search(list(range(args.seeds))),
        },
        tune_config=tune.TuneConfig(max_concurrent_trials=args.max_concurrent_trials),
        run_config=tune.RunConfig(
            name="lambda-sweep",
            storage_path=str(Path(args.out).resolve()),
            stop={"num_env_steps_sampled_lifetime": args.env_steps},
        ),
    )
    run_dir = Path(tuner.fit().experiment_path)
    print(plot([run_dir], run_dir / "lambda.png", kind="lambda"))
    print(plot([run_dir], run_dir / "returns.png", label_by="seac_lambda"))


if __name__ == "__main__":
    main()
