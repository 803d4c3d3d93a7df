"""The argument parser of `rllib`. Imports nothing heavy: `rllib --help` stays quick.

rllib train file FILE.yaml [run options]   (or: rllib train -f FILE.yaml)
rllib train --algo SEAC --env ENV [--config JSON] [--stop JSON] [run options]
rllib evaluate CHECKPOINT [--episodes 100] [--seed S] [--json] [--import MODULE]
rllib evaluate RUN_DIR --best-of-snapshots [--episodes 100]   (the paper's Table 1 protocol)
rllib render CHECKPOINT --out run.gif [--episodes 1] [--max-steps N] [--fps 10] [--seed S]
rllib plot RUN_DIR... --out fig.png [--kind returns|is-weights|agents|lambda] [--label-by KEY]
rllib import-authors DIR --env rware-small-4ag-v2 --out CKPT
"""

from __future__ import annotations

import argparse

EXAMPLE_STOP = '{"training_iteration": 1}'
EXAMPLE_CONFIG = '{"updates_per_iteration": 2}'
# Iterations between checkpoints: 200k env steps with SEAC's defaults, about 0.6 MB
# per checkpoint of 2 agents, so an 80M-step run keeps ~230 MB and loses at most minutes.
DEFAULT_CHECKPOINT_FREQ = 100
CHECKPOINT_HELP = (
    "Checkpoint directory (what algo.save_to_path wrote), or a Tune trial directory "
    "(its latest checkpoint_*)."
)
# Tune's verbosity without -v: the progress table only (2: also a line per result,
# 3: each full result), as RLlib's --verbose sets it.
DEFAULT_VERBOSITY = 1
IMPORT_HELP = (
    "Module to import first, e.g. my_pkg.envs: one whose import registers your envs "
    "with ray.tune.register_env (repeatable). Training stores it in the env name "
    "(MODULE:ENV); evaluate and render make such an env only with --import MODULE "
    "(or --trust-checkpoint)."
)


class _MoreVerbose(argparse.Action):
    """-v: one step above Tune's verbosity so far (DEFAULT_VERBOSITY when none)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, (getattr(namespace, self.dest, None) or 1) + 1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rllib", description="SEAC (and RLlib) on Ray Tune.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_evaluate(commands)
    _add_render(commands)
    _add_plot(commands)
    _add_import_authors(commands)
    return parser


def _imports(default=None) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False, argument_default=default)
    parent.add_argument(
        "--import", dest="imports", action="append", metavar="MODULE", help=IMPORT_HELP
    )
    return parent


def _checkpoint_options() -> argparse.ArgumentParser:
    """What `evaluate` and `render` both take: the checkpoint, the user's env
    modules and the seed of the episodes."""
    parent = _imports()
    parent.add_argument("checkpoint", help=CHECKPOINT_HELP)
    parent.add_argument("--seed", type=int, help="Seed of the first env reset and the actions.")
    parent.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="Read the checkpoint with RLlib's unpickling, which runs code the checkpoint "
        "names (a custom agent grouping, env class or RLModule). Without it, settings and "
        "weights are read as data only.",
    )
    return parent


def _run_options(default=None) -> argparse.ArgumentParser:
    """The options of both `train file` and `train --algo`. `train file` takes them
    with `default=argparse.SUPPRESS`, so that its unset options do not overwrite
    those given before `file` (`rllib train --stop ... file x.yaml`)."""
    parent = argparse.ArgumentParser(
        add_help=False, argument_default=default, parents=[_imports(default)]
    )
    experiment = parent.add_argument_group("experiment")
    experiment.add_argument(
        "--env", help="Env replacing the experiments' env: a name, or MODULE:CALLABLE."
    )
    experiment.add_argument(
        "--config",
        help="JSON settings merged into each experiment's config (replacing the file's "
        f"value of each key given), e.g. '{EXAMPLE_CONFIG}'.",
    )
    experiment.add_argument(
        "--stop", help=f"JSON stop criteria replacing the file's, e.g. '{EXAMPLE_STOP}'."
    )
    experiment.add_argument(
        "--framework", help="Deep-learning framework: torch (the only one on Ray 2.60's stack)."
    )
    experiment.add_argument(
        "--num-samples", type=int, metavar="N", help="Trials per grid point (Tune's num_samples)."
    )
    rllib = parent.add_argument_group(
        "RLlib's example-script flags (each sets its config key or stop criterion, "
        "over the file's and --config's)"
    )
    for flag, key in (
        ("--num-env-runners", "num_env_runners"),
        ("--num-envs-per-env-runner", "num_envs_per_env_runner"),
        ("--num-learners", "num_learners"),
        ("--evaluation-interval", "evaluation_interval"),
        ("--evaluation-duration", "evaluation_duration"),
    ):
        rllib.add_argument(flag, type=int, metavar="N", help=f"config {key}.")
    rllib.add_argument(
        "--stop-reward",
        type=float,
        metavar="R",
        help="Stop at this mean episode return (env_runners/episode_return_mean).",
    )
    rllib.add_argument(
        "--stop-iters", type=int, metavar="N", help="Stop after N iterations (training_iteration)."
    )
    rllib.add_argument(
        "--stop-timesteps",
        type=int,
        metavar="N",
        help="Stop after N env steps (num_env_steps_sampled_lifetime).",
    )
    run = parent.add_argument_group("run")
    run.add_argument(
        "--storage-path",
        help="Results directory (./results), or a URI such as s3://bucket/dir; on a "
        "multi-node cluster it must be reachable from every node.",
    )
    run.add_argument(
        "--checkpoint-freq",
        type=int,
        metavar="N",
        help=f"Checkpoint every N iterations ({DEFAULT_CHECKPOINT_FREQ}; 0: only at the end).",
    )
    run.add_argument(
        "--checkpoint-at-end",
        action="store_true",
        help="Checkpoint each trial when it ends (always done; accepted as RLlib's flag).",
    )
    run.add_argument(
        "--keep-checkpoints-num", type=int, metavar="N", help="Keep only N checkpoints per trial."
    )
    run.add_argument(
        "--checkpoint-score-attr",
        metavar="METRIC",
        help="Metric deciding which checkpoints to keep (highest first; prefix min- for "
        "lowest), e.g. env_runners/episode_return_mean.",
    )
    run.add_argument(
        "--max-failures",
        type=int,
        metavar="N",
        help="Restart a failed trial (its process or node died) from its last checkpoint "
        "up to N times (0; -1: without limit).",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="Continue the experiments' stopped runs in --storage-path from their last "
        "checkpoints (counters and optimizer state included). Finished trials stay done, "
        "unless stop criteria are given that one of them has not met: then they too "
        "continue, to those (a new leg).",
    )
    run.add_argument(
        "--ray-address",
        metavar="HOST:PORT",
        help="Ray cluster to run on (default: RAY_ADDRESS, or a new local Ray instance).",
    )
    run.add_argument(
        "--local-mode",
        action="store_true",
        help="Refused: Ray 2.60 has no local mode (see the message for what to use).",
    )
    run.add_argument("--dry-run", action="store_true", help="Check and print the experiments.")
    run.add_argument(
        "-v",
        dest="verbose",
        action=_MoreVerbose,
        help="-v: the progress table at each result and Tune's line per result; "
        "-vv: also each full result.",
    )
    run.add_argument(
        "--verbose",
        type=int,
        choices=range(4),
        metavar="{0,1,2,3}",
        help="Tune's verbosity, as RLlib's flag: 0 none, 1 the progress table (the "
        "default), 2 as -v, 3 as -vv.",
    )
    logging = parent.add_argument_group("logging (TensorBoard files are always written)")
    logging.add_argument(
        "--wandb-project",
        metavar="NAME",
        help="Log to Weights & Biases (pip install -e '.[wandb]' in the checkout).",
    )
    logging.add_argument(
        "--wandb-key",
        metavar="KEY",
        help="W&B API key (else WANDB_API_KEY or wandb login); logs to W&B, to "
        "--wandb-project or a project named after the experiment.",
    )
    logging.add_argument(
        "--mlflow-tracking-uri",
        metavar="URI",
        help="Log to MLflow, e.g. file:./mlruns (pip install -e '.[mlflow]' in the checkout).",
    )
    return parent


def _add_train(commands) -> None:
    handler = ("rllib_seac.cli.train", "train")
    train = commands.add_parser(
        "train",
        parents=[_run_options()],
        help="Train an algorithm (SEAC, or any RLlib registers: PPO, APPO, IMPALA, DQN, ...).",
        description="Train one experiment given by flags, or `rllib train file FILE.yaml`.",
    )
    train.add_argument(
        "--algo", "--run", dest="algo", help="Algorithm, e.g. SEAC or PPO (needs --env)."
    )
    train.add_argument(
        "-f",
        "--config-file",
        dest="path",
        metavar="FILE",
        help="YAML file, as `rllib train file FILE` (Ray 2.40's `rllib train -f FILE`).",
    )
    train.set_defaults(handler=handler, path=None, verbose=DEFAULT_VERBOSITY)
    sources = train.add_subparsers(dest="source", metavar="SOURCE")
    file = sources.add_parser(
        "file",
        parents=[_run_options(argparse.SUPPRESS)],
        help="Run the experiments of a tuned-example YAML file.",
        description="Run the experiments of a tuned-example YAML file (Ray 2.40's format, "
        "old-stack keys translated).",
    )
    file.add_argument("path", help="YAML file: {name: {run, env, stop, config, ...}, ...}.")
    file.set_defaults(handler=handler)


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        parents=[_checkpoint_options()],
        help="Run a checkpoint's agents for full episodes; mean ± std of the returns.",
        description="Runs the agents' stochastic policies (SEAC, as the paper's evaluation, "
        "App. B, and SE-PPO or RLlib's PPO; SEQL/IQL: greedy, epsilon = 0) in the "
        "checkpoint's env and prints the total return (summed over agents) as mean ± std "
        "over episodes, and each agent's return.",
    )
    evaluate.add_argument("--episodes", type=int, default=100, help="Episodes to run (100).")
    evaluate.add_argument("--json", action="store_true", help="Print the results as JSON.")
    evaluate.add_argument(
        "--best-of-snapshots",
        action="store_true",
        help="CHECKPOINT is a run directory: evaluate every kept snapshot (checkpoint_*) of "
        "every trial (a campaign record's evaluated snapshots are read), take the best "
        "per seed and report mean ± std over seeds, as the paper's Table 1 does, beside "
        "the mean of each seed's last three snapshots. Evaluations are kept in each "
        "trial's snapshot_evaluations.json (seed: --seed, default 0).",
    )
    evaluate.set_defaults(handler=("rllib_seac.cli.evaluate", "evaluate"))


def _add_render(commands) -> None:
    render = commands.add_parser(
        "render",
        parents=[_checkpoint_options()],
        help="Write an animated GIF of a checkpoint's agents.",
        description="Runs the agents' policies (as `evaluate`) in the checkpoint's env, made "
        "with render_mode='rgb_array', and writes the frames as a GIF. Works without a "
        "display: pyglet-drawn envs (rware, lbforaging) render through EGL.",
    )
    render.add_argument("--out", required=True, help="GIF file to write, e.g. run.gif.")
    render.add_argument("--episodes", type=int, default=1, help="Episodes to record (1).")
    render.add_argument("--max-steps", type=int, help="Cut each episode after N steps.")
    render.add_argument("--fps", type=float, default=10, help="Frames per second (10).")
    render.set_defaults(handler=("rllib_seac.cli.evaluate", "render"))


def _add_plot(commands) -> None:
    kinds = ("returns", "is-weights", "agents", "lambda", "entropy")  # analysis.plotting.KINDS
    plot = commands.add_parser(
        "plot",
        help="Plot learning curves and more from Tune run directories.",
        description="Reads every Tune trial (result.json or progress.csv) under the run "
        "directories and plots the mean over seeds with one standard deviation shaded, one "
        "line per algorithm (SEAC; IAC: seac_lambda 0; SNAC: shared_policy; SEQL, IQL; "
        "RLlib's own by name: IPPO for PPO with a module per agent, 'PPO (shared policy)', "
        "APPO, ...), different algorithms side by side. Kinds: "
        "returns (Figs. 3-5), is-weights (SEAC's importance weights, Fig. 6), agents "
        "(best vs worst agent, Fig. 7), lambda (final return against seac_lambda), entropy "
        "(the policies' entropy, mean over agents: a collapsing policy shows there).",
    )
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="Tune run directories.")
    plot.add_argument("--out", required=True, help="Figure file: .png, .pdf or .svg.")
    plot.add_argument("--kind", choices=kinds, default="returns", help="What to plot (returns).")
    plot.add_argument(
        "--label-by",
        metavar="KEY[,KEY...]",
        help="Group trials by this setting (e.g. lr), or by several (lr,entropy_coeff), "
        "instead of by algorithm; needed to plot trials that differ in a setting other "
        "than the seed.",
    )
    plot.add_argument("--title", help="Figure title (default: what is plotted, and the env).")
    plot.set_defaults(handler=("rllib_seac.cli.evaluate", "plot"))


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
    command.set_defaults(handler=("rllib_seac.cli.evaluate", "import_authors"))
