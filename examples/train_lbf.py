"""The main job: SEAC and IAC side by side on level-based foraging, learning within minutes.

    python examples/train_lbf.py [--env-steps 300000] [--seed 0] [--out results/train_lbf]

Trains SEAC (seac_lambda=1) and IAC (seac_lambda=0, independent A2C) at the same time,
one Ray actor (one CPU) each, on Foraging-8x8-2p-2f-v3 with the paper's episode limit
of 25 steps (App. A.2): 2 agents must load 2 foods, some only together; a solved
episode returns 1 summed over agents. Prints a progress line per 20k env steps, writes
progress.csv, learning_curve.png and each algorithm's checkpoint under --out, and ends
with one line saying at how many env steps each first reached a return of 0.5.

Each algorithm's results are also written as a Tune trial's (trials/SEAC/ and
trials/IAC/: params.json, result.json and TensorBoard events), so that
`rllib plot results/train_lbf --out fig.png` and `tensorboard --logdir results/train_lbf`
read them.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rllib_seac import SEACConfig, SEACConfigError  # noqa: E402
from rllib_seac.analysis.plotting import flatten  # noqa: E402

ENV = "Foraging-8x8-2p-2f-v3"
EPISODE_LIMIT = 25  # the paper's, App. A.2 (lbforaging's default is 50)
VARIANTS = {"SEAC": 1.0, "IAC": 0.0}  # name -> seac_lambda
THRESHOLD = 0.5
PRINT_EVERY = 10  # iterations of 2,000 env steps


def config_for(seac_lambda: float, seed: int) -> SEACConfig:
    return (
        SEACConfig()
        .environment(ENV, env_config={"max_episode_steps": EPISODE_LIMIT})
        .training(seac_lambda=seac_lambda)
        .debugging(seed=seed)
    )


def numbers(result: dict) -> dict:
    """The numbers of a result (nested as it is), without its config."""
    out = {}
    for key, value in result.items():
        if isinstance(value, dict) and key != "config":
            if inner := numbers(value):
                out[key] = inner
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
        elif hasattr(value, "item") and getattr(value, "size", None) == 1:  # numpy
            out[key] = value.item()
    return out


class Trainer:
    """One algorithm in its own process (a Ray actor with one CPU), writing its results
    as a Tune trial does: params.json, result.json (a line per iteration) and
    TensorBoard events (under ray/tune/, as `rllib train` writes them)."""

    def __init__(self, config: SEACConfig, trial_dir: str, params: dict):
        from tensorboardX import SummaryWriter

        from rllib_seac._rllib_internals import set_algorithm_log_dir_parent

        # RLlib would leave an empty dated directory in ~/ray_results.
        self.log_dir = tempfile.mkdtemp(prefix="rllib_seac_")
        set_algorithm_log_dir_parent(self.log_dir)
        self.algo = config.build_algo()
        trial = Path(trial_dir)
        trial.mkdir(parents=True, exist_ok=True)
        (trial / "params.json").write_text(json.dumps(params, indent=1) + "\n")
        self.results = (trial / "result.json").open("w")
        self.events = SummaryWriter(str(trial))

    def train(self) -> tuple[int, float]:
        """One iteration: (env steps so far, mean return of the episodes that ended in it)."""
        result = numbers(self.algo.train())
        self.results.write(json.dumps(result) + "\n")
        self.results.flush()
        steps = result["num_env_steps_sampled_lifetime"]
        for key, value in flatten(result).items():
            if math.isfinite(value):
                self.events.add_scalar(f"ray/tune/{key}", value, global_step=steps)
        runners = result["env_runners"]
        return steps, runners.get("episode_return_mean", float("nan"))

    def save_and_stop(self, path: str) -> str:
        checkpoint = self.algo.save_to_path(path)
        self.algo.stop()
        self.results.close()
        self.events.close()
        shutil.rmtree(self.log_dir, ignore_errors=True)
        return checkpoint


def params_of(name: str, seed: int) -> dict:
    """What `rllib plot` labels a trial by (SEAC, IAC) and checks across seeds."""
    return {
        "env": ENV,
        "env_config": {"max_episode_steps": EPISODE_LIMIT},
        "seac_lambda": VARIANTS[name],
        "seed": seed,
    }


def first_crossing(rows: list[dict], name: str) -> int | None:
    """Env steps of the first iteration whose mean return reached THRESHOLD."""
    for row in rows:
        if row["algorithm"] == name and row["episode_return_mean"] >= THRESHOLD:
            return row["env_steps"]
    return None


def verdict(rows: list[dict], budget: int) -> str:
    parts = []
    for name in VARIANTS:
        steps = first_crossing(rows, name)
        if steps is not None:
            parts.append(f"{name} reached {THRESHOLD} at {steps:,} env steps")
        else:
            best = max(r["episode_return_mean"] for r in rows if r["algorithm"] == name)
            parts.append(f"{name} not yet (best {best:.2f} in {budget:,} env steps)")
    return ", ".join(parts)


def plot(rows: list[dict], path: Path, seed: int) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in VARIANTS:
        own = [r for r in rows if r["algorithm"] == name]
        ax.plot([r["env_steps"] for r in own], [r["episode_return_mean"] for r in own], label=name)
    ax.axhline(THRESHOLD, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return (sum over agents)")
    ax.set_title(f"{ENV}, episode limit {EPISODE_LIMIT}, seed {seed}")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-steps", type=int, default=300_000, help="Budget per algorithm.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/train_lbf")
    args = parser.parse_args()
    if args.env_steps < 1:
        parser.error(f"--env-steps must be >= 1, got {args.env_steps}.")
    configs = {}
    for name, seac_lambda in VARIANTS.items():
        configs[name] = config_for(seac_lambda, args.seed)
        try:  # every setting checked before Ray starts
            configs[name].validate()
        except SEACConfigError as e:
            parser.error(str(e))
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    import ray

    from rllib_seac.local_ray import init_local_ray

    print(f"SEAC and IAC on {ENV} (episode limit {EPISODE_LIMIT}), {args.env_steps:,} env steps")
    print("starting Ray and both algorithms ...", flush=True)
    start = time.perf_counter()
    init_local_ray(num_cpus=len(VARIANTS))
    actor = ray.remote(num_cpus=1)(Trainer)
    trainers = {
        name: actor.remote(config, str(out / "trials" / name), params_of(name, args.seed))
        for name, config in configs.items()
    }
    rows, iteration, steps = [], 0, 0
    while steps < args.env_steps:
        iteration += 1
        # Both step at once; an error in either is raised here.
        results = dict(zip(trainers, ray.get([t.train.remote() for t in trainers.values()])))
        elapsed = time.perf_counter() - start
        for name, (steps, ret) in results.items():
            rows.append(
                {
                    "algorithm": name,
                    "iteration": iteration,
                    "env_steps": int(steps),
                    "episode_return_mean": round(float(ret), 4),
                    "seconds": round(elapsed, 1),
                }
            )
        steps = min(int(s) for s, _ in results.values())
        if iteration % PRINT_EVERY == 0 or steps >= args.env_steps:
            returns = "   ".join(f"{name} return {ret:4.2f}" for name, (_, ret) in results.items())
            print(f"{steps:>9,} env steps   {returns}   {elapsed:5.0f} s", flush=True)
    checkpoints = ray.get(
        [t.save_and_stop.remote(str(out / name.lower())) for name, t in trainers.items()]
    )
    ray.shutdown()

    with open(out / "progress.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / "learning_curve.png", args.seed)
    print(f"results: {out}/progress.csv, {out}/learning_curve.png, checkpoints {checkpoints}")
    print(f"trials (rllib plot, tensorboard --logdir): {out}/trials")
    print(f"wall time {time.perf_counter() - start:.0f} s")
    print(f"Verdict: {verdict(rows, args.env_steps)}.")


if __name__ == "__main__":
    main()
