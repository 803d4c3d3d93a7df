"""A sweep of one SEAC setting with Tune: setting x seed grid, then the figures.

    python examples/sweep.py --setting seac_lambda|lr [--values 0.0 0.5 1.0]
        [--env Foraging-8x8-2p-2f-v3] [--env-steps 1000000] [--seeds 3]
        [--out results] [--max-concurrent-trials N]

--setting seac_lambda is the sweep of tuned_configs/lbf-8x8-2p-2f-lambda-sweep.yaml
(the paper's App. B, Fig. 10), --setting lr a learning-rate sweep around Table 2's
3e-4. On level-based foraging the episodes end after the paper's 25 steps (App. A.2).
Writes Tune's results and returns.png (mean ± std over seeds per value) in the run
directory, and for seac_lambda also lambda.png (final return against lambda).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ray import tune

import rllib_seac
from rllib_seac.analysis.plotting import plot

# The values each setting is swept over unless --values says otherwise.
DEFAULT_VALUES = {
    "seac_lambda": [0.0, 0.3, 0.5, 0.9, 1.0],
    "lr": [1e-4, 3e-4, 1e-3],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", required=True, choices=sorted(DEFAULT_VALUES))
    parser.add_argument("--values", type=float, nargs="+", help="Default: see DEFAULT_VALUES.")
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
    values = args.values or DEFAULT_VALUES[args.setting]
    # The settings' own checks, before Ray starts: one line naming the bad value.
    for value in values:
        try:
            config = rllib_seac.SEACConfig().environment(args.env)
            config.update_from_dict({args.setting: value}).validate()
        except rllib_seac.SEACConfigError as e:
            parser.error(str(e))

    rllib_seac.register([args.env])  # the "SEAC" trainable and the env name
    # The paper's LBF episode limit (App. A.2); other envs keep their own.
    env_config = {"max_episode_steps": 25} if args.env.startswith("Foraging") else {}
    tuner = tune.Tuner(
        "SEAC",
        param_space={
            "env": args.env,
            "env_config": env_config,
            args.setting: tune.grid_search(values),
            "seed": tune.grid_search(list(range(args.seeds))),
        },
        tune_config=tune.TuneConfig(max_concurrent_trials=args.max_concurrent_trials),
        run_config=tune.RunConfig(
            name=f"{args.setting.replace('_', '-')}-sweep",
            storage_path=str(Path(args.out).resolve()),
            stop={"num_env_steps_sampled_lifetime": args.env_steps},
        ),
    )
    run_dir = Path(tuner.fit().experiment_path)
    if args.setting == "seac_lambda":
        print(plot([run_dir], run_dir / "lambda.png", kind="lambda"))
    print(plot([run_dir], run_dir / "returns.png", label_by=args.setting))


if __name__ == "__main__":
    main()
