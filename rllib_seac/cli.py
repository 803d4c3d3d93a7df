"""`rllib` / `rllib-seac` command line: run classic RLlib tuned-example YAML files with SEAC,
then evaluate, render and plot the results.

rllib train file tuned_configs/rware.yaml [--stop JSON] [--config JSON] [--storage-path DIR]
                 [--checkpoint-freq N] [--resume] [-v]
rllib evaluate CHECKPOINT [--episodes 100] [--seed S] [--json]
rllib render CHECKPOINT --out run.gif [--episodes 1] [--max-steps N] [--fps 10] [--seed S]
rllib plot RUN_DIR... --out fig.png [--kind returns|is-weights|agents|lambda] [--label-by KEY]
rllib import-authors DIR --env rware-small-4ag-v2 --out CKPT
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

SUPPORTED_RUNS = ("SEAC", "SEQL")
ENTRY_KEYS = ("run", "env", "stop", "config")
# update_from_dict keys that are not attribute names (others go through _translate_special_keys).
CONFIG_ALIASES = {"multiagent"}
STEPS_KEY = "num_env_steps_sampled_lifetime"
EXAMPLE_STOP = '{"training_iteration": 1}'
EXAMPLE_CONFIG = '{"updates_per_iteration": 2}'
CHECKPOINT_HELP = (
    "Checkpoint directory (what algo.save_to_path wrote), or a Tune trial directory "
    "(its latest checkpoint_*)."
)
PLOT_FORMATS = (".png", ".pdf", ".svg")
# Iterations between checkpoints: 200k env steps with the defaults, about 0.6 MB per
# checkpoint of 2 agents, so an 80M-step run keeps ~230 MB and loses at most minutes.
DEFAULT_CHECKPOINT_FREQ = 100
# RAY_ADDRESS values that name no host to probe.
LOCAL_ADDRESSES = ("auto", "local")
CLUSTER_PROBE_TIMEOUT_S = 5


class UsageError(Exception):
    """Bad input: printed as one line on stderr, exit code 2."""


@dataclass
class Experiment:
    name: str
    env: str
    stop: dict
    config: dict  # Plain settings.
    grid: dict  # Setting -> values of its `grid_search`.
    run: str = "SEAC"  # The registered algorithm, one of SUPPORTED_RUNS.


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"rllib: error: {e}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rllib", description="SEAC on Ray RLlib.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser("train", help="Train an algorithm.")
    sources = train.add_subparsers(dest="source", required=True, metavar="SOURCE")
    file = sources.add_parser("file", help="Run the experiments of a tuned-example YAML file.")
    file.add_argument("path", help="YAML file: {name: {run: SEAC, env, stop, config}, ...}.")
    file.add_argument(
        "--stop", help=f"JSON stop criteria replacing the file's, e.g. '{EXAMPLE_STOP}'."
    )
    file.add_argument(
        "--config",
        help="JSON settings merged into each experiment's config (replacing the file's "
        f"value of each key given), e.g. '{EXAMPLE_CONFIG}'.",
    )
    file.add_argument(
        "--storage-path",
        default="results",
        help="Results directory (./results), or a URI such as s3://bucket/dir; on a "
        "multi-node cluster it must be reachable from every node.",
    )
    file.add_argument(
        "--checkpoint-freq",
        type=int,
        default=DEFAULT_CHECKPOINT_FREQ,
        metavar="N",
        help=f"Checkpoint every N iterations ({DEFAULT_CHECKPOINT_FREQ}; 0: only at the end).",
    )
    file.add_argument(
        "--resume",
        action="store_true",
        help="Continue the file's stopped runs in --storage-path from their last "
        "checkpoints (counters and optimizer state included); finished trials stay done.",
    )
    file.add_argument("--dry-run", action="store_true", help="Check the file and print it, no run.")
    file.add_argument("-v", "--verbose", action="store_true", help="Print each iteration's result.")
    file.set_defaults(func=_train_file)
    _add_evaluate(commands)
    _add_render(commands)
    _add_plot(commands)
    _add_import_authors(commands)
    return parser


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="Run a checkpoint's agents for full episodes; mean ± std of the returns.",
        description="Runs the agents' stochastic policies (SEAC, as the paper's evaluation, "
        "App. B; SEQL/IQL: greedy, epsilon = 0) in the checkpoint's env and prints the "
        "total return (summed over agents) as mean ± std over episodes, and each agent's "
        "return.",
    )
    evaluate.add_argument("checkpoint", help=CHECKPOINT_HELP)
    evaluate.add_argument("--episodes", type=int, default=100, help="Episodes to run (100).")
    evaluate.add_argument("--seed", type=int, help="Seed of the first env reset and the actions.")
    evaluate.add_argument("--json", action="store_true", help="Print the results as JSON.")
    evaluate.set_defaults(func=_evaluate)


def _add_render(commands) -> None:
    render = commands.add_parser(
        "render",
        help="Write an animated GIF of a checkpoint's agents.",
        description="Runs the agents' policies (as `evaluate`) in the checkpoint's env, made "
        "with render_mode='rgb_array', and writes the frames as a GIF. Works without a "
        "display: pyglet-drawn envs (rware, lbforaging) render through EGL.",
    )
    render.add_argument("checkpoint", help=CHECKPOINT_HELP)
    render.add_argument("--out", required=True, help="GIF file to write, e.g. run.gif.")
    render.add_argument("--episodes", type=int, default=1, help="Episodes to record (1).")
    render.add_argument("--max-steps", type=int, help="Cut each episode after N steps.")
    render.add_argument("--fps", type=float, default=10, help="Frames per second (10).")
    render.add_argument("--seed", type=int, help="Seed of the first env reset and the actions.")
    render.set_defaults(func=_render)


def _add_plot(commands) -> None:
    from rllib_seac.plotting import KINDS  # numpy only: --help stays fast

    plot = commands.add_parser(
        "plot",
        help="Plot learning curves and more from Tune run directories.",
        description="Reads every Tune trial (result.json or progress.csv) under the run "
        "directories and plots the mean over seeds with one standard deviation shaded, one "
        "line per algorithm (SEAC; IAC: seac_lambda 0; SNAC: shared_policy). Kinds: "
        "returns (Figs. 3-5), is-weights (SEAC's importance weights, Fig. 6), agents "
        "(best vs worst agent, Fig. 7), lambda (final return against seac_lambda).",
    )
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="Tune run directories.")
    plot.add_argument("--out", required=True, help="Figure file: .png, .pdf or .svg.")
    plot.add_argument("--kind", choices=KINDS, default="returns", help="What to plot (returns).")
    plot.add_argument(
        "--label-by",
        metavar="KEY",
        help="Group trials by this setting (e.g. lr) instead of by algorithm; needed to "
        "plot trials that differ in a setting other than the seed.",
    )
    plot.add_argument("--title", help="Figure title (default: what is plotted, and the env).")
    plot.set_defaults(func=_plot)


def _add_import_authors(commands) -> None:
    command = commands.add_parser(
        "import-authors",
        help="Turn the authors' pretrained SEAC agents into a checkpoint.",
        description="Reads DIR/agent0/models.pt, agent1/... as saved by the authors' code "
        "(uoe-agents/seac, e.g. seac/pretrained/rware-small-4ag) without that code, and "
        "writes an rllib-seac checkpoint for ENV that evaluate, render and "
        "SEAC.from_checkpoint take.",
    )
    command.add_argument("directory", metavar="DIR", help="Directory holding agent0/, agent1/, ...")
    command.add_argument(
        "--env", required=True, help="Env the agents act in, e.g. rware-small-4ag-v2."
    )
    command.add_argument("--out", required=True, help="Checkpoint directory to write.")
    command.set_defaults(func=_import_authors)


def _import_authors(args) -> int:
    from rllib_seac.authors_import import import_authors_agents
    from rllib_seac.evaluation import CheckpointError

    try:
        path = import_authors_agents(args.directory, args.env, args.out)
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    print(f"wrote {path}")
    return 0


def _train_file(args) -> int:
    _check_at_least(args.checkpoint_freq, 0, "--checkpoint-freq")
    experiments = _load_experiments(
        Path(args.path),
        _parse_stop(args.stop),
        _parse_json_object(args.config, "--config", EXAMPLE_CONFIG),
    )
    if not args.dry_run:
        _check_cluster_answers()
    # Imported here so `--help` and file errors stay fast.
    import rllib_seac

    rllib_seac.register({exp.env for exp in experiments})
    for exp in experiments:
        _validate(exp)
    if args.dry_run:
        for exp in experiments:
            print(f"{exp.name}: env={exp.env} stop={exp.stop} config={exp.config} grid={exp.grid}")
        return 0
    storage = _storage(args.storage_path)
    if args.resume:
        for exp in experiments:
            _check_resumable(exp, storage)
    failed = sum(
        _run(exp, storage, args.checkpoint_freq, args.resume, args.verbose) for exp in experiments
    )
    return 1 if failed else 0


def _storage(path: str) -> str:
    # Absolute for Tune; a URI (s3://, gs://, ...) stays as given.
    return path if "://" in path else str(Path(path).resolve())


def _run_dir(exp: Experiment, storage: str) -> str:
    return f"{storage.rstrip('/')}/{exp.name}"


def _check_resumable(exp: Experiment, storage: str) -> None:
    from ray import tune

    if not tune.Tuner.can_restore(_run_dir(exp, storage)):
        raise UsageError(
            f"experiment {exp.name!r}: no run to resume at {_run_dir(exp, storage)} "
            "(start it without --resume, or give its --storage-path)."
        )


def _check_cluster_answers() -> None:
    """Fails fast when RAY_ADDRESS names a cluster that does not answer: ray.init
    would retry for minutes."""
    address = os.environ.get("RAY_ADDRESS", "")
    if not address or address in LOCAL_ADDRESSES:
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"RAY_ADDRESS={address} is not HOST:PORT (or auto, local).")
    try:
        socket.create_connection((host, int(port)), timeout=CLUSTER_PROBE_TIMEOUT_S).close()
    except OSError as e:
        reason = e.strerror or str(e)
        raise UsageError(
            f"no Ray cluster answers at RAY_ADDRESS={address} ({reason}): start it with "
            "`ray start --head` on that host, or unset RAY_ADDRESS to run on this machine."
        ) from None


def _evaluate(args) -> int:
    _check_at_least(args.episodes, 1, "--episodes")
    _check_at_least(args.seed, 0, "--seed")
    from rllib_seac.evaluation import CheckpointError, evaluate

    try:
        result = evaluate(args.checkpoint, args.episodes, args.seed)
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.report())
    return 0


def _render(args) -> int:
    _check_at_least(args.episodes, 1, "--episodes")
    _check_at_least(args.seed, 0, "--seed")
    if args.max_steps is not None:
        _check_at_least(args.max_steps, 1, "--max-steps")
    if not args.fps > 0:
        raise UsageError(f"--fps must be > 0, got {args.fps}.")
    if Path(args.out).suffix.lower() != ".gif":
        raise UsageError(f"--out must name a .gif file, got {args.out}.")
    from rllib_seac.evaluation import CheckpointError
    from rllib_seac.rendering import RenderError, render_gif

    try:
        frames = render_gif(
            args.checkpoint,
            args.out,
            episodes=args.episodes,
            max_steps=args.max_steps,
            fps=args.fps,
            seed=args.seed,
        )
    except (CheckpointError, RenderError) as e:
        raise UsageError(str(e)) from None
    print(f"wrote {args.out}: {frames} frames, {args.episodes} episode(s)")
    return 0


def _plot(args) -> int:
    if Path(args.out).suffix.lower() not in PLOT_FORMATS:
        raise UsageError(f"--out must end in {', '.join(PLOT_FORMATS)}, got {args.out}.")
    from rllib_seac.plotting import PlotError, plot

    try:
        out = plot(args.run_dirs, args.out, args.kind, args.label_by, args.title)
    except PlotError as e:
        raise UsageError(str(e)) from None
    print(f"wrote {out}")
    return 0


def _check_at_least(value: int | None, low: int, option: str) -> None:
    if value is not None and value < low:
        raise UsageError(f"{option} must be >= {low}, got {value}.")


def _parse_stop(text: str | None) -> dict | None:
    stop = _parse_json_object(text, "--stop", EXAMPLE_STOP)
    if stop is not None:
        _check_stop(stop, "--stop")
    return stop


def _parse_json_object(text: str | None, option: str, example: str) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{option} is not valid JSON ({e}): {text}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object like '{example}', got {text}")
    return value


def _check_stop(stop: dict, where: str) -> None:
    # Tune wants flat keys ("env_runners/episode_return_mean") with number values.
    for key, value in stop.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = "nest keys as 'a/b'" if isinstance(value, dict) else "e.g. 100"
            raise UsageError(f"{where}: {key!r} must be a number, got {value!r} ({hint}).")


def _load_experiments(
    path: Path, stop_override: dict | None, config_override: dict | None
) -> list[Experiment]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or e
        raise UsageError(f"{path} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{path} must map experiment names to {{run, env, stop, config}}.")
    return [
        _experiment(str(name), entry, stop_override, config_override)
        for name, entry in data.items()
    ]


def _experiment(
    name: str, entry, stop_override: dict | None, config_override: dict | None
) -> Experiment:
    def fail(msg):
        raise UsageError(f"experiment {name!r}: {msg}")

    if not isinstance(entry, dict):
        fail("must be a mapping with keys run, env, stop, config.")
    if unknown := sorted(set(entry) - set(ENTRY_KEYS)):
        fail(f"unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(ENTRY_KEYS)}.")
    if "run" not in entry:
        fail("missing 'run' (the algorithm, e.g. run: SEAC).")
    if entry["run"] not in SUPPORTED_RUNS:
        supported = ", ".join(SUPPORTED_RUNS)
        fail(f"run: {entry['run']} is not supported; supported algorithms: {supported}.")
    if not entry.get("env"):
        fail("missing 'env' (e.g. env: rware-tiny-2ag-v2).")
    stop = stop_override if stop_override is not None else entry.get("stop") or {}
    config = entry.get("config") or {}
    if not isinstance(stop, dict) or not isinstance(config, dict):
        fail("'stop' and 'config' must be mappings.")
    # Merged before the grid split, so --config can also replace or add a grid_search.
    config = {**config, **(config_override or {})}
    if stop_override is None:
        _check_stop(stop, f"experiment {name!r}: stop")
    plain, grid = {}, {}
    for key, value in config.items():
        if isinstance(value, dict) and "grid_search" in value:
            if not isinstance(value["grid_search"], list) or not value["grid_search"]:
                fail(f"config.{key}: grid_search needs a non-empty list of values.")
            grid[key] = value["grid_search"]
        else:
            plain[key] = value
    return Experiment(name, entry["env"], stop, plain, grid, entry["run"])


def _config_class(run: str):
    from rllib_seac import SEACConfig, SEQLConfig

    return {"SEAC": SEACConfig, "SEQL": SEQLConfig}[run]


def _build_config(exp: Experiment, overrides: dict | None = None):
    return (
        _config_class(exp.run)()
        .environment(exp.env)
        .update_from_dict({**exp.config, **(overrides or {})})
    )


def _validate(exp: Experiment) -> None:
    """Fails before Ray starts trials: unknown keys, and every grid value checked
    on its own (the other grid settings at their first value)."""
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    # update_from_dict sets even unknown attributes, so a typo would be silently ignored.
    defaults = _config_class(exp.run)()
    for key in [*exp.config, *exp.grid]:
        attr = AlgorithmConfig._translate_special_keys(str(key), warn_deprecated=False)
        if key not in CONFIG_ALIASES and not hasattr(defaults, attr):
            raise UsageError(f"experiment {exp.name!r}: unknown config key {key!r}.")
    first = {key: values[0] for key, values in exp.grid.items()}
    points = [first] + [{**first, k: v} for k, values in exp.grid.items() for v in values[1:]]
    for point in points:
        try:
            _build_config(exp, point).validate()
        # SEACConfigError, AlgorithmConfig's own checks, wrong types, env creation.
        except (ValueError, TypeError) as e:
            where = f" (with {point})" if point else ""
            raise UsageError(f"experiment {exp.name!r}{where}: {e}") from None


def _run(exp: Experiment, storage: str, checkpoint_freq: int, resume: bool, verbose: bool) -> int:
    """Runs (or resumes) one experiment through Tune; returns the number of errored trials."""
    from ray import tune

    # Only the file's settings: SEAC fills in its defaults, and Tune's trial
    # table stays short.
    param_space = {"env": exp.env, **exp.config}
    param_space.update({key: tune.grid_search(values) for key, values in exp.grid.items()})
    if resume:
        # Tune keeps the run's stop criteria and settings; trials continue from
        # their last checkpoints, errored ones too.
        tuner = tune.Tuner.restore(
            _run_dir(exp, storage),
            trainable=exp.run,
            resume_unfinished=True,
            resume_errored=True,
            param_space=param_space,
        )
    else:
        run_config = tune.RunConfig(
            name=exp.name,
            storage_path=storage,
            stop=exp.stop,
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_frequency=checkpoint_freq, checkpoint_at_end=True
            ),
            # Ray 2.60's output engine ignores `progress_reporter`; it shows SEAC's
            # `_progress_metrics` (return mean, env steps) per trial, each iteration at 2.
            verbose=2 if verbose else 1,
        )
        tuner = tune.Tuner(exp.run, param_space=param_space, run_config=run_config)
    results = tuner.fit()
    _print_summary(exp.name, results)
    return results.num_errors


def _print_summary(name: str, results) -> None:
    print(f"\n{name}: results in {results.experiment_path}")
    for result in results:
        metrics = result.metrics or {}
        ret = metrics.get("env_runners", {}).get("episode_return_mean")
        status = f"ERROR {_error_line(result.error)}" if result.error else "ok"
        ret_text = "n/a" if ret is None else f"{ret:.2f}"
        print(
            f"  {Path(result.path).name}: {status}, episode_return_mean={ret_text}, "
            f"env_steps={metrics.get(STEPS_KEY, 0):.0f}"
        )


def _error_line(error: BaseException) -> str:
    """The error a trial stopped on, as one line: Ray wraps a remote error, with its
    traceback, once per actor it passed through."""
    from ray.exceptions import RayTaskError

    while isinstance(error, RayTaskError) and error.cause is not None:
        error = error.cause
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
