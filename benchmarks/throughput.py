"""End-to-end env steps/s of SEAC (sampling + learning), measured in one run.

    python benchmarks/throughput.py [--env rware-tiny-2ag-v2] [--seconds 30] [--json]
        [--num-env-runners R] [--overlap-sampling] [--env-processes P]
        [--env-config '{"fast_step": false}']
    python benchmarks/throughput.py --scaling [--seconds 20]
    python benchmarks/throughput.py --fused-vs-autograd [--env rware-tiny-4ag-v2]
    python benchmarks/throughput.py --fast-vs-own-step [--env Foraging-15x15-3p-4f-v3]

Default: SEAC and IAC with Table 2 settings (4 envs, 5-step rollouts, 64x64
networks, Adam), their ratio, and the raw env (random actions, one process): the
env as trained (for rware, FastWarehouse) and, for rware, rware's own step.
--fused-vs-autograd: SEAC with the fused step (`fused_update="auto"`, the default) and
with autograd's step (`"off"`): what the fused step is worth end to end.
--fast-vs-own-step: SEAC on the env as trained (`fast_step`, the default: FastWarehouse,
FastForaging, or predator-prey's direct world step) and with `fast_step: false`
(rware's or lbforaging's own class, PettingZoo's parallel wrapper): what the faster env
step is worth end to end.
--scaling: SEAC with Table 2's 4 envs stepped in the driver, in 1 or 2 forked env
worker processes, or in 1, 2 and 4 remote env runners; "overlapped" variants
collect the next rollout while the learner steps (`overlap_sampling`).
The variants alternate iteration by iteration, so machine noise hits all alike.
An env step is one step of one env with all agents acting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def raw_env_steps_per_s(env_name: str, seconds: float, env_config: dict) -> float:
    from rllib_seac import make_env

    env = make_env(env_name, env_config)
    rng = np.random.default_rng(0)
    n_actions = env.get_action_space(env.possible_agents[0]).n
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        actions = {aid: int(rng.integers(n_actions)) for aid in env.possible_agents}
        _, _, term, trunc, _ = env.step(actions)
        steps += 1
        if term["__all__"] or trunc["__all__"]:
            env.reset()
    return steps / (time.perf_counter() - start)


def raw_figures(args) -> dict:
    """The env as trained and, for rware stepped by FastWarehouse, rware's own step."""
    figures = {
        "raw_env_steps_per_s_one_process": raw_env_steps_per_s(
            args.env, args.raw_seconds, args.env_config
        )
    }
    if args.env.startswith("rware") and args.env_config.get("fast_step", True):
        own = raw_env_steps_per_s(
            args.env, args.raw_seconds, {**args.env_config, "fast_step": False}
        )
        figures["raw_rware_own_step_steps_per_s_one_process"] = own
    return {key: round(value, 1) for key, value in figures.items()}


def build(
    env_name,
    seac_lambda=1.0,
    runners=0,
    envs_per_runner=4,
    env_processes=0,
    env_config=None,
    **training,
):
    from rllib_seac import SEACConfig

    config = (
        SEACConfig()
        .environment(env_name, env_config=env_config or {})
        .training(seac_lambda=seac_lambda, **training)
        .env_runners(
            num_env_runners=runners,
            num_envs_per_env_runner=envs_per_runner,
            num_env_processes_per_env_runner=env_processes,
        )
        .debugging(seed=0, log_level="ERROR")
    )
    return config.build_algo()


def rates(algos: dict, seconds: float) -> dict[str, float]:
    """Env steps/s of each algorithm, their train() calls interleaved."""

    def env_steps(result) -> int:
        return int(result["env_runners"]["num_env_steps_sampled_lifetime"])

    steps = {name: env_steps(algo.train()) for name, algo in algos.items()}  # warm-up
    start_steps, elapsed = dict(steps), dict.fromkeys(algos, 0.0)
    while min(elapsed.values()) < seconds:
        for name, algo in algos.items():
            t = time.perf_counter()
            steps[name] = env_steps(algo.train())
            elapsed[name] += time.perf_counter() - t
    for algo in algos.values():
        algo.stop()
    return {name: (steps[name] - start_steps[name]) / elapsed[name] for name in algos}


def seac_vs_iac(args) -> dict:
    settings = dict(
        runners=args.num_env_runners,
        envs_per_runner=4 // max(1, args.num_env_runners) if args.num_env_runners else 4,
        overlap_sampling=args.overlap_sampling,
        env_processes=args.env_processes,
        env_config=args.env_config,
    )
    algos = {name: build(args.env, lam, **settings) for name, lam in (("seac", 1.0), ("iac", 0.0))}
    rate = rates(algos, args.seconds)
    raw = raw_figures(args)
    return {
        "env": args.env,
        "env_config": args.env_config,
        "seac_env_steps_per_s": round(rate["seac"], 1),
        "iac_env_steps_per_s": round(rate["iac"], 1),
        "seac_over_iac_time": round(rate["iac"] / rate["seac"], 3),
        **raw,
        "seac_over_raw_env": round(rate["seac"] / raw["raw_env_steps_per_s_one_process"], 3),
        # The yardstick: rware's own Warehouse.step, random actions, one process.
        **(
            {"seac_over_raw_rware_own_step": round(rate["seac"] / own, 3)}
            if (own := raw.get("raw_rware_own_step_steps_per_s_one_process"))
            else {}
        ),
        "num_env_runners": args.num_env_runners,
        "overlap_sampling": args.overlap_sampling,
        "env_processes": args.env_processes,
    }


def one_against_another(args, variants: dict, ratio_key: str) -> dict:
    """SEAC in two variants (name -> `build` keyword arguments), alternating."""
    algos = {name: build(args.env, **kwargs) for name, kwargs in variants.items()}
    rate = rates(algos, args.seconds)
    first, second = variants
    return {
        "env": args.env,
        "env_config": args.env_config,
        **{f"seac_env_steps_per_s_{name}": round(r, 1) for name, r in rate.items()},
        ratio_key: round(rate[first] / rate[second], 3),
    }


def fused_vs_autograd(args) -> dict:
    variants = {
        mode: dict(env_config=args.env_config, fused_update=update)
        for mode, update in (("fused", "auto"), ("autograd", "off"))
    }
    return one_against_another(args, variants, "fused_over_autograd")


def fast_vs_own_step(args) -> dict:
    variants = {
        name: dict(env_config={**args.env_config, "fast_step": fast})
        for name, fast in (("fast_step", True), ("own_step", False))
    }
    return one_against_another(args, variants, "fast_over_own_step")


def scaling(args) -> dict:
    variants = {
        "driver": dict(),
        "1_env_process_overlapped": dict(env_processes=1, overlap_sampling=True),
        "2_env_processes": dict(env_processes=2),
        "2_env_processes_overlapped": dict(env_processes=2, overlap_sampling=True),
    }
    for runners in (1, 2, 4):
        variants[f"{runners}_runners_overlapped"] = dict(
            runners=runners, envs_per_runner=4 // runners, overlap_sampling=True
        )
    algos = {
        name: build(args.env, env_config=args.env_config, **kw) for name, kw in variants.items()
    }
    rate = rates(algos, args.seconds)
    return {
        "env": args.env,
        "env_config": args.env_config,
        **{f"seac_env_steps_per_s_{name}": round(r, 1) for name, r in rate.items()},
        **raw_figures(args),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="rware-tiny-2ag-v2")
    parser.add_argument("--seconds", type=float, default=30.0, help="timed seconds per variant")
    parser.add_argument("--raw-seconds", type=float, default=10.0, help="timed seconds per raw env")
    parser.add_argument("--num-env-runners", type=int, default=0, help="0: sample in the driver")
    parser.add_argument("--overlap-sampling", action="store_true")
    parser.add_argument("--env-processes", type=int, default=0, help="per env runner")
    parser.add_argument("--scaling", action="store_true", help="where the envs step, compared")
    parser.add_argument(
        "--fused-vs-autograd", action="store_true", help="the fused step against autograd's"
    )
    parser.add_argument(
        "--fast-vs-own-step",
        action="store_true",
        help="SEAC with the env's fast_step against fast_step false",
    )
    parser.add_argument(
        "--env-config",
        type=json.loads,
        default={},
        help="JSON env config, e.g. '{\"fast_step\": false}' for rware's own step",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    import ray

    # Logical CPUs for every variant's runners; only one variant runs at a time.
    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    if args.scaling:
        figures = scaling(args)
    elif args.fused_vs_autograd:
        figures = fused_vs_autograd(args)
    elif args.fast_vs_own_step:
        figures = fast_vs_own_step(args)
    else:
        figures = seac_vs_iac(args)
    ray.shutdown()
    figures["seconds_per_variant"] = args.seconds
    figures["settings"] = "Table 2: 4 envs in all, n_steps 5, 64x64 actor and critic, lr 3e-4"
    figures["command"] = "python " + " ".join(sys.argv)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:38s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
