"""Where the time of one SEAC update goes, in the default mode (one process).

    python benchmarks/time_split.py [--env rware-tiny-2ag-v2] [--iterations 20]
        [--env-config '{"fast_step": false}'] [--json]

Table 2 settings; one update = 4 envs x 5 steps = 20 env steps and one gradient
step. Wall-clock timers wrap the env batch's step, the batched inference, the
rollout, the learner's update and the weight copy to the env runner during
`--iterations` train() calls (after one warm-up call); "other" is the rest of
train() (RLlib's iteration and metrics). The learner's update is then split on a
batch of the same shape (medians): for the fused step (a CPU learner) the batch's
columns, the bootstrap values V(o_{t+1}), the loss terms and their gradients with
respect to the networks' outputs, clipping, Adam, and the rest (the MLPs' forward
and backward).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time

import torch


def time_calls(cls, name: str, key: str, totals: collections.Counter) -> None:
    """Adds the wall time of every call of cls.name to totals[key]."""
    method = getattr(cls, name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    setattr(cls, name, timed)


def learner_parts(algo, repeats: int = 200) -> dict[str, float]:
    """Median ms of each part of the learner's update, on one sampled batch.

    The fused step (the default learner on the CPU): see the module docstring.
    Autograd's step where that step does not apply: loss, zeroing + backward,
    clipping, Adam.
    """
    from rllib_seac._rllib_internals import local_learner
    from rllib_seac.seac.algorithm import _train_batches

    learner = local_learner(algo.learner_group)
    batch = _train_batches(algo._sample(), 1)[0]
    times = collections.defaultdict(list)

    def timed(name, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        times[name].append(time.perf_counter() - start)
        return out

    step = learner._fused_step(batch)
    if step is not None:
        parts = {
            "_stream_data": "batch",
            "_bootstrap_values": "bootstrap_values",
            "_loss_terms": "loss_terms",
        }
        flat = step._flat
        for method, name in (("clip", "clip"), ("step", "adam")):
            original = getattr(flat, method)
            setattr(flat, method, lambda *a, _f=original, _n=name, **k: timed(_n, _f, *a, **k))
        for method, name in parts.items():
            original = getattr(step, method)
            setattr(step, method, lambda *a, _f=original, _n=name, **k: timed(_n, _f, *a, **k))
        batches = [batch.policy_batches[mid] for mid in learner._module_ids]
        for _ in range(repeats):
            timed("step", step, batches, learner._raise_non_finite)
        for method in parts:
            delattr(step, method)
        for method in ("clip", "step"):
            delattr(flat, method)
        steps = times.pop("step")
        named = [*parts.values(), "clip", "adam"]
        times["forward_and_backward"] = [
            t - sum(times[n][i] for n in named) for i, t in enumerate(steps)
        ]
    else:
        for _ in range(repeats):
            tensors = {
                mid: {col: torch.from_numpy(module_batch[col]) for col in module_batch.keys()}
                for mid, module_batch in batch.policy_batches.items()
            }
            losses = timed("loss", learner.compute_losses, fwd_out={}, batch=tensors)
            grads = timed("zero_grad_and_backward", learner.compute_gradients, losses)
            grads = timed("clip", learner.postprocess_gradients, grads)
            timed("adam", learner.apply_gradients, grads)
    return {name: statistics.median(ts[10:]) * 1e3 for name, ts in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="rware-tiny-2ag-v2")
    parser.add_argument("--iterations", type=int, default=20, help="timed train() calls")
    parser.add_argument("--env-config", type=json.loads, default={}, help="JSON env config")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    import ray

    from rllib_seac import SEACConfig
    from rllib_seac.envs import env_batch
    from rllib_seac.seac import algorithm, learner, rollouts

    totals = collections.Counter()
    time_calls(env_batch.EnvBatch, "step", "env_steps", totals)
    time_calls(rollouts.RolloutCollector, "_act", "inference", totals)
    time_calls(rollouts.RolloutCollector, "collect", "rollout", totals)
    time_calls(learner.SEACTorchLearner, "update", "learner_update", totals)
    time_calls(algorithm.SEAC, "_sync_weights", "weight_copy", totals)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = (
        SEACConfig()
        .environment(args.env, env_config=args.env_config)
        .debugging(seed=0, log_level="ERROR")
    )
    algo = config.build_algo()
    algo.train()  # warm-up
    totals.clear()
    start = time.perf_counter()
    for _ in range(args.iterations):
        algo.train()
    total = time.perf_counter() - start
    updates = args.iterations * config.updates_per_iteration
    env_steps_per_update = config.num_envs_per_env_runner * config.n_steps
    ms = {key: value / updates * 1e3 for key, value in totals.items()}
    split = {
        "env_steps": ms["env_steps"],
        "inference": ms["inference"],
        "rollout_bookkeeping": ms["rollout"] - ms["env_steps"] - ms["inference"],
        "learner_update": ms["learner_update"],
        "weight_copy": ms["weight_copy"],
        "other": total / updates * 1e3 - ms["rollout"] - ms["learner_update"] - ms["weight_copy"],
        "total": total / updates * 1e3,
    }
    parts = learner_parts(algo)
    algo.stop()
    ray.shutdown()

    figures = {
        "env": args.env,
        "env_config": args.env_config,
        "ms_per_update": {k: round(v, 3) for k, v in split.items()},
        "env_steps_per_s": round(updates * env_steps_per_update / total),
        "learner_update_parts_ms": {k: round(v, 3) for k, v in parts.items()},
        "command": "python " + " ".join(sys.argv),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:24s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
