"""Does the authors' importance weight pi_i / (pi_k + 1e-7) move SEAC's LBF plateau?

    python benchmarks/investigations/is_epsilon.py [--seeds 3] [--env-steps 1000000]
        [--out results/is-epsilon]

Trains SEAC (`seac_target="authors"`, as the plateau table in docs/learning.md) on
Foraging-8x8-2p-2f-v3 with the paper's episode limit of 25, N seeds with this
package's IS weight pi_i / pi_k and N with the authors' pi_i / (pi_k + 1e-7), two
processes at a time, and prints the mean training return per tenth of the env steps
(100k-step windows of 1M; each
iteration's mean over the episodes that ended in it, averaged over the window), mean ±
std over seeds. The authors' weight is a learner subclass that overrides
`importance_weights` and nothing else, so that variant trains through autograd's
step (the fused step serves only the stock loss).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rllib_seac.seac.learner import SEACTorchLearner

ENV = "Foraging-8x8-2p-2f-v3"
EPISODE_LIMIT = 25
WINDOWS = 10  # tenths of the budget: 100k-step windows of 1M
AUTHORS_EPSILON = 1e-7
VARIANTS = ("ours", "authors")


def authors_importance_weights(logp, behaviour_logp, clip=None):
    """pi_i(a|o) / (pi_k(a|o) + 1e-7), detached, as the authors' SEAC computes it."""
    weights = torch.exp(logp.detach()) / (torch.exp(behaviour_logp) + AUTHORS_EPSILON)
    return weights if clip is None else weights.clamp(max=clip)


class AuthorsISWeightLearner(SEACTorchLearner):
    importance_weights = staticmethod(authors_importance_weights)


def run_trial(variant: str, seed: int, env_steps: int, out: Path) -> None:
    """One trial, outside Tune: (env steps, mean return) per iteration as JSON lines."""
    import ray

    import rllib_seac
    from rllib_seac import SEACConfig

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    rllib_seac.register([ENV])
    config = (
        SEACConfig()
        .environment(ENV, env_config={"max_episode_steps": EPISODE_LIMIT})
        .training(seac_target="authors")
        .debugging(seed=seed)
    )
    if variant == "authors":
        config.learners(learner_class=AuthorsISWeightLearner)
    algo = config.build_algo()
    steps = 0
    with (out / f"{variant}-seed{seed}.jsonl").open("w") as f:
        while steps < env_steps:
            result = algo.train()["env_runners"]
            steps = int(result["num_env_steps_sampled_lifetime"])
            f.write(json.dumps([steps, result.get("episode_return_mean")]) + "\n")
    algo.stop()
    ray.shutdown()


def windows(path: Path, env_steps: int) -> list[float]:
    """The mean return in each tenth of the env steps (iterations with an episode end)."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    per_window = [[] for _ in range(WINDOWS)]
    for steps, value in rows:
        index = min((steps - 1) * WINDOWS // env_steps, WINDOWS - 1)
        if value is not None and np.isfinite(value):
            per_window[index].append(value)
    return [float(np.mean(values)) for values in per_window]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--env-steps", type=int, default=1_000_000)
    parser.add_argument("--out", default="results/is-epsilon")
    parser.add_argument("--trial", nargs=2, metavar=("VARIANT", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.trial:
        run_trial(args.trial[0], int(args.trial[1]), args.env_steps, out)
        return
    start = time.perf_counter()
    queue = [(v, s) for s in range(args.seeds) for v in VARIANTS]
    running: list[subprocess.Popen] = []
    while queue or running:
        running = [p for p in running if p.poll() is None]
        while queue and len(running) < 2:
            variant, seed = queue.pop(0)
            command = [sys.executable, __file__, "--trial", variant, str(seed)]
            command += ["--env-steps", str(args.env_steps), "--out", str(out)]
            running.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        time.sleep(5)
    width = args.env_steps // WINDOWS
    columns = [f"{i * width:,}-{(i + 1) * width:,}" for i in range(WINDOWS)]
    print("| IS weight | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for variant in VARIANTS:
        trials = np.array(
            [windows(out / f"{variant}-seed{s}.jsonl", args.env_steps) for s in range(args.seeds)]
        )
        cells = [f"{m:.3f}" for m in trials.mean(axis=0)[:-1]]
        cells.append(f"{trials[:, -1].mean():.3f} ± {trials[:, -1].std():.3f}")
        print(f"| {variant} ({args.seeds} seeds) | " + " | ".join(cells) + " |")
    print(f"\nwall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
