"""`rllib train`: experiments from a YAML file or from flags, run through Ray Tune."""

from __future__ import annotations

import logging
import os
import shlex
import socket
from pathlib import Path

from rllib_seac.cli.common import (
    UsageError,
    check_at_least,
    import_user_modules,
    note,
    parse_json_object,
)
from rllib_seac.cli.experiments import (
    CONFIG_ALIASES,
    LOCAL_MODE_HELP,
    SHARED_POLICY,
    Experiment,
    Overrides,
    experiment,
    load_file,
)
from rllib_seac.cli.parser import DEFAULT_CHECKPOINT_FREQ, EXAMPLE_CONFIG, EXAMPLE_STOP

DEFAULT_STORAGE = "results"
# RAY_ADDRESS values that name no host to probe.
LOCAL_ADDRESSES = ("auto", "local")
CLUSTER_PROBE_TIMEOUT_S = 5
# Exit status of a run ended by Ctrl-C (128 + SIGINT), its checkpoints saved.
INTERRUPTED = 130
# Tune's status of a trial that has met its stop criteria.
FINISHED = "TERMINATED"


def train(args) -> int:
    experiments = _experiments(args)
    if args.ray_address:
        os.environ["RAY_ADDRESS"] = args.ray_address
    if not args.dry_run:
        _check_cluster_answers()
    import rllib_seac

    rllib_seac.register({exp.env for exp in experiments})
    for exp in experiments:
        validate(exp)
    if args.dry_run:
        for exp in experiments:
            print(
                f"{exp.name}: run={exp.run} env={exp.env} stop={exp.stop} "
                f"config={exp.config} grid={exp.grid} num_samples={exp.num_samples}"
            )
        return 0
    if args.resume:
        for exp in experiments:
            _check_resumable(exp)
    from rllib_seac.local_ray import reap_orphaned_agents, use_session_auth_token

    # Ray's token for this run only: no ~/.ray/auth_token and no notice about it.
    use_session_auth_token()
    # What a killed earlier run's local Ray left behind (its agents), before this one.
    reap_orphaned_agents()
    failed = 0
    for exp in experiments:
        code = _run(exp, args, _loggers(args, exp))
        if code == INTERRUPTED:
            return INTERRUPTED
        failed = failed or code
    return 1 if failed else 0


def _experiments(args) -> list[Experiment]:
    """The experiments of the file, or of --algo and --env, with the flags applied."""
    if args.local_mode:
        raise UsageError(LOCAL_MODE_HELP)
    if args.framework not in (None, "torch"):
        raise UsageError(
            f"--framework {args.framework} is not supported; Ray 2.60's API stack runs torch."
        )
    check_at_least(args.checkpoint_freq, 0, "--checkpoint-freq")
    check_at_least(args.keep_checkpoints_num, 1, "--keep-checkpoints-num")
    check_at_least(args.num_samples, 1, "--num-samples")
    check_at_least(args.max_failures, -1, "--max-failures")
    import_user_modules(args.imports)
    checkpoint = {
        key: value
        for key, value in (
            ("checkpoint_frequency", args.checkpoint_freq),
            ("num_to_keep", args.keep_checkpoints_num),
            ("checkpoint_score_attribute", args.checkpoint_score_attr),
            ("checkpoint_at_end", True if args.checkpoint_at_end else None),
        )
        if value is not None
    }
    config = parse_json_object(args.config, "--config", EXAMPLE_CONFIG)
    if flag_config := _rllib_flag_config(args):
        config = {**(config or {}), **flag_config}
    overrides = Overrides(
        env=args.env,
        stop=parse_json_object(args.stop, "--stop", EXAMPLE_STOP),
        config=config,
        num_samples=args.num_samples,
        checkpoint=checkpoint,
        storage_path=args.storage_path,
        max_failures=args.max_failures,
    )
    if args.path is not None:
        if args.algo:
            raise UsageError("--algo is for a run without a file; the file names its 'run'.")
        experiments = load_file(Path(args.path), overrides)
    elif args.algo and args.env:
        name = f"{args.algo.lower()}-{args.env.replace(':', '-').replace('/', '-')}"
        experiments = [experiment(name, {"run": args.algo}, overrides)]
    else:
        raise UsageError(
            "give a file (rllib train file FILE.yaml) or both --algo and --env "
            "(rllib train --algo SEAC --env rware-tiny-2ag-v2)."
        )
    flag_stop = {
        key: value
        for key, value in (
            ("env_runners/episode_return_mean", args.stop_reward),
            ("training_iteration", args.stop_iters),
            ("num_env_steps_sampled_lifetime", args.stop_timesteps),
        )
        if value is not None
    }
    for exp in experiments:
        exp.env = _with_import(exp.env, args.imports)
        # With the file's (or --stop's) criteria: a trial stops at the first one met.
        exp.stop.update(flag_stop)
    return experiments


# RLlib's example-script flags that set a config key.
RLLIB_CONFIG_FLAGS = {
    "num_env_runners": 0,
    "num_envs_per_env_runner": 1,
    "num_learners": 0,
    "evaluation_interval": 0,
    "evaluation_duration": 1,
}


def _rllib_flag_config(args) -> dict:
    """The config keys RLlib's example-script flags give (--num-env-runners, ...)."""
    config = {}
    for key, low in RLLIB_CONFIG_FLAGS.items():
        value = getattr(args, key, None)
        check_at_least(value, low, f"--{key.replace('_', '-')}")
        if value is not None:
            config[key] = value
    check_at_least(args.stop_iters, 1, "--stop-iters")
    check_at_least(args.stop_timesteps, 1, "--stop-timesteps")
    return config


def _with_import(env: str, imports: list[str] | None) -> str:
    """An env registered by the one `--import` module, as a MODULE:NAME spec: stored
    in the checkpoint's config, it lets evaluate and render make the env again."""
    from rllib_seac._rllib_internals import registered_env_creator
    from rllib_seac.envs import env_names, is_env_spec

    if not imports or is_env_spec(env) or env in env_names() or not registered_env_creator(env):
        return env
    if len(imports) > 1:
        note(f"env {env}: with several --import modules, checkpoints do not record which one")
        return env
    note(f"env {env} -> {imports[0]}:{env} (so checkpoints find it again)")
    return f"{imports[0]}:{env}"


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


def algorithm_config(exp: Experiment):
    """The default config of the algorithm `exp.run` names (SEAC or any RLlib one)."""
    from rllib_seac.experiment_config import ExperimentConfigError
    from rllib_seac.experiment_config import algorithm_config as default_config

    try:
        return default_config(exp.run)
    except ExperimentConfigError as e:
        raise UsageError(f"experiment {exp.name!r}: {e}") from None


def trial_settings(exp: Experiment, point: dict) -> dict:
    """The config keys of one trial (see rllib_seac.experiment_config.trial_settings)."""
    from rllib_seac.experiment_config import trial_settings as settings_of_trial

    algorithm_config(exp)  # an unknown algorithm as a usage error
    return settings_of_trial(exp.run, exp.env, exp.config, point)


def validate(exp: Experiment) -> None:
    """Fails before Ray starts trials: unknown keys, and every grid value checked
    on its own (the other grid settings at their first value)."""
    from rllib_seac._rllib_internals import config_attribute

    defaults = algorithm_config(exp)
    # update_from_dict sets even unknown attributes, so a typo would be silently ignored.
    for key in [*exp.config, *exp.grid]:
        known = key in CONFIG_ALIASES or hasattr(defaults, config_attribute(str(key)))
        if not known and key != SHARED_POLICY:
            hint = _did_you_mean(key, defaults)
            raise UsageError(f"experiment {exp.name!r}: unknown config key {key!r}.{hint}")
    for point in _grid_points(exp):
        try:
            config = algorithm_config(exp).environment(exp.env)
            config.update_from_dict(trial_settings(exp, point)).validate()
        # SEACConfigError, AlgorithmConfig's own checks, wrong types, env creation (some
        # envs and RLlib's own checks assert, or index a setting of the wrong kind).
        except (ValueError, TypeError, AttributeError, AssertionError, KeyError) as e:
            where = f" (with {point})" if point else ""
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(f"experiment {exp.name!r}{where}: {message}") from None


def _did_you_mean(key, config) -> str:
    """ " Did you mean 'lambda_'?" for a near miss of one of the config's settings."""
    import difflib

    names = [n for n in vars(config) if not n.startswith("_")] + [SHARED_POLICY]
    close = difflib.get_close_matches(str(key), names, n=3, cutoff=0.75)
    return f" Did you mean {' or '.join(map(repr, close))}?" if close else ""


def _grid_points(exp: Experiment) -> list[dict]:
    from rllib_seac.experiment_config import grid_points

    return grid_points(exp.grid)


def _check_trials_fit(exp: Experiment) -> None:
    """Refuses a trial that asks for more CPUs or GPUs than Ray has here: Tune would
    wait for them forever, warning once a minute. A cluster that RAY_ADDRESS names
    may autoscale, so its trials are left to Tune."""
    import ray
    from ray.tune.registry import get_trainable_cls

    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS", "") not in ("", "local"):
            return
        ray.init()  # as Tune's fit() would; the check needs Ray's count of this machine
    have = ray.cluster_resources()
    for point in _grid_points(exp):
        config = algorithm_config(exp).environment(exp.env)
        config.update_from_dict(trial_settings(exp, point))
        need = get_trainable_cls(exp.run).default_resource_request(config).required_resources
        for kind in ("CPU", "GPU"):
            if need.get(kind, 0) > have.get(kind, 0):
                where = f" (with {point})" if point else ""
                remedy = "lower num_env_runners"
                if config.num_learners:
                    remedy += ", or set num_learners: 0 to learn in the trial's own process"
                raise UsageError(
                    f"experiment {exp.name!r}{where}: each {exp.run} trial asks for "
                    f"{need[kind]:g} {kind}s (num_env_runners={config.num_env_runners}, "
                    f"num_learners={config.num_learners}) but Ray has {have.get(kind, 0):g} "
                    f"here: {remedy}."
                )


def _storage(exp: Experiment) -> str:
    # Absolute for Tune; a URI (s3://, gs://, ...) stays as given.
    path = exp.storage_path or DEFAULT_STORAGE
    return path if "://" in path else str(Path(path).resolve())


def _run_dir(exp: Experiment) -> str:
    return f"{_storage(exp).rstrip('/')}/{exp.name}"


def _check_resumable(exp: Experiment) -> None:
    from ray import tune

    if not tune.Tuner.can_restore(_run_dir(exp)):
        raise UsageError(
            f"experiment {exp.name!r}: no run to resume at {_run_dir(exp)} "
            "(start it without --resume, or give its --storage-path)."
        )


def _loggers(args, exp: Experiment) -> list:
    """W&B and MLflow callbacks when asked for (Tune writes TensorBoard files anyway)."""
    callbacks = []
    if args.wandb_project or args.wandb_key:
        flag = "--wandb-project" if args.wandb_project else "--wandb-key"
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise UsageError(
                f"{flag} needs wandb: pip install -e '.[wandb]' (in the rllib-seac checkout)"
            ) from None
        from ray.air.integrations.wandb import WandbLoggerCallback

        # Tune's W&B logging actor gets only WANDB_API_KEY from this process's env:
        # wandb's own WANDB_MODE (offline) and WANDB_DIR are passed on here.
        wandb_env = {"mode": "WANDB_MODE", "dir": "WANDB_DIR"}
        init = {key: os.environ[var] for key, var in wandb_env.items() if var in os.environ}
        if args.wandb_key:
            init["api_key"] = args.wandb_key
        project = args.wandb_project or exp.name
        callbacks.append(WandbLoggerCallback(project=project, group=exp.name, **init))
    if args.mlflow_tracking_uri:
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise UsageError(
                "--mlflow-tracking-uri needs mlflow: pip install -e '.[mlflow]' (in the "
                "rllib-seac checkout)"
            ) from None
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        callbacks.append(
            MLflowLoggerCallback(tracking_uri=args.mlflow_tracking_uri, experiment_name=exp.name)
        )
    return callbacks


def _checkpoint_config(exp: Experiment):
    from ray import tune

    settings = {"checkpoint_frequency": DEFAULT_CHECKPOINT_FREQ, "checkpoint_at_end": True}
    settings.update(exp.checkpoint)
    attr = settings.get("checkpoint_score_attribute")
    if attr and attr.startswith("min-"):  # Ray 2.40's form of "lowest is best"
        settings["checkpoint_score_attribute"] = attr[4:]
        settings["checkpoint_score_order"] = "min"
    return tune.CheckpointConfig(**settings)


def _run(exp: Experiment, args, callbacks: list) -> int:
    """Runs (or resumes) one experiment through Tune; returns the number of errored
    trials, or INTERRUPTED after Ctrl-C."""
    # Read by Tune when it runs: without it, Ray 2.60 ignores `progress_reporter`.
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    from ray import tune

    from rllib_seac.cli.progress import ReturnReporter, print_summary
    from rllib_seac.cli.run_control import RunControl
    from rllib_seac.seac.config import SEACConfig
    from rllib_seac.seppo import SEPPOConfig
    from rllib_seac.seql import SEQLConfig

    _check_trials_fit(exp)
    # Only the file's settings: the algorithm fills in its defaults.
    param_space = {"env": exp.env, **trial_settings(exp, {})}
    param_space.update({key: tune.grid_search(values) for key, values in exp.grid.items()})
    # A resumed run applies the stop criteria given now, not those it was started with.
    control = RunControl(stop=exp.stop if args.resume else None)
    run_settings = dict(
        stop=exp.stop,
        checkpoint_config=_checkpoint_config(exp),
        progress_reporter=ReturnReporter(
            every_result=args.verbose >= 2,
            header=_episode_limit_note(exp),
            evaluations=control.evaluations,
        ),
        callbacks=[*callbacks, control],
        # Tune's verbosity: 1 the table, 2 also a line per result, 3 each full result.
        verbose=args.verbose,
    )
    if args.resume:
        # Trials continue from their last checkpoints, errored ones too; finished
        # ones only for a new leg.
        resume = tune.ResumeConfig.ResumeType.RESUME
        skip = tune.ResumeConfig.ResumeType.SKIP
        finished = resume if _finished_trials_continue(exp, args) else skip
        analysis = tune.run(
            exp.run,
            config=param_space,
            name=exp.name,
            storage_path=_storage(exp),
            max_failures=exp.max_failures,
            resume_config=tune.ResumeConfig(errored=resume, finished=finished),
            raise_on_failed_trial=False,
            **run_settings,
        )
        results = tune.ResultGrid(analysis)
    else:
        run_config = tune.RunConfig(
            name=exp.name,
            storage_path=_storage(exp),
            failure_config=tune.FailureConfig(max_failures=exp.max_failures),
            **run_settings,
        )
        tuner = tune.Tuner(
            exp.run,
            param_space=param_space,
            tune_config=tune.TuneConfig(num_samples=exp.num_samples),
            run_config=run_config,
        )
        results = tuner.fit()
    # `rllib evaluate` reads this package's algorithms' checkpoints (and IPPO's, whose
    # config says it only per trial).
    evaluable = isinstance(algorithm_config(exp), (SEACConfig, SEQLConfig, SEPPOConfig))
    print_summary(exp.name, results, evaluable, control)
    if control.interrupted:
        print(f"\nResume with:\n  {_resume_command(args)}")
        return INTERRUPTED
    return results.num_errors


def _finished_trials_continue(exp: Experiment, args) -> bool:
    """Whether a resumed run restarts its finished trials: only when stop criteria are
    given now (a new leg)."""
    from ray import tune

    if not _stop_given(args):
        return False
    # Only the trials' states are read: Tune's warning about trials that have no
    # results yet (those still pending) says nothing here.
    analysis_logger = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = analysis_logger.level
    analysis_logger.setLevel(logging.ERROR)
    try:
        trials = tune.ExperimentAnalysis(_run_dir(exp)).trials
    finally:
        analysis_logger.setLevel(level)
    finished = [trial.last_result for trial in trials if trial.status == FINISHED]
    return finished_trials_continue(exp.name, finished, exp.stop)


def finished_trials_continue(name: str, last_results: list[dict], stop: dict) -> bool:
    """Whether finished trials with these last results continue to `stop`: when one
    of them has not met it. Tune checks a trial's stop after its next result, so a
    finished trial restarted for criteria it already meets would run one more
    iteration."""
    from rllib_seac._rllib_internals import result_meets_stop

    met = sum(result_meets_stop(result, stop) for result in last_results)
    if not met:
        return bool(last_results)
    if met == len(last_results):
        plural = "s" if met > 1 else ""
        note(f"{name}: {met} finished trial{plural} already met the stop: left as done")
        return False
    note(
        f"{name}: {met} of the {len(last_results)} finished trials already met the stop "
        "but run one more iteration (Tune restarts finished trials all or none)"
    )
    return True


def _stop_given(args) -> bool:
    """Whether the command line gives stop criteria (--stop or a --stop-* flag)."""
    flags = (args.stop, args.stop_reward, args.stop_iters, args.stop_timesteps)
    return any(flag is not None for flag in flags)


def _resume_command(args) -> str:
    """The command line this run was started with, and --resume (`args.prog` is a
    shell word or several, e.g. `python -m rllib_seac.cli`)."""
    argv = list(getattr(args, "argv", None) or [])
    if "--resume" not in argv:
        argv.append("--resume")
    return f"{getattr(args, 'prog', None) or 'rllib'} {shlex.join(argv)}"


def _episode_limit_note(exp: Experiment) -> str:
    """For lbforaging's ids: the episode limit the run's episodes end at."""
    from rllib_seac.envs.lbf import lbf_env_ids, lbf_episode_limit

    if exp.env not in lbf_env_ids():
        return ""
    if "env_config" in exp.grid:
        return f"{exp.env}: episode limit per trial (env_config max_episode_steps)"
    limit, given = lbf_episode_limit(exp.env, exp.config.get("env_config"))
    if given:
        return f"{exp.env}: episodes end after {limit} steps (env_config max_episode_steps)"
    return (
        f"{exp.env}: episodes end after {limit} steps (lbforaging's default limit; the "
        "paper's is 25: config env_config: {max_episode_steps: 25})"
    )
