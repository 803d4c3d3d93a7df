"""`rllib train`: experiments from a YAML file or from flags, run through Ray Tune."""

from __future__ import annotations

import os
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
SINGLE_AGENT_BUFFERS = ("EpisodeReplayBuffer", "PrioritizedEpisodeReplayBuffer")


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
    from rllib_seac.local_ray import use_session_auth_token

    # Ray's token for this run only: no ~/.ray/auth_token and no notice about it.
    use_session_auth_token()
    failed = sum(_run(exp, args.resume, args.verbose, _loggers(args, exp)) for exp in experiments)
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
        )
        if value is not None
    }
    overrides = Overrides(
        env=args.env,
        stop=parse_json_object(args.stop, "--stop", EXAMPLE_STOP),
        config=parse_json_object(args.config, "--config", EXAMPLE_CONFIG),
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
    for exp in experiments:
        exp.env = _with_import(exp.env, args.imports)
    return experiments


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
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.tune.registry import get_trainable_cls

    try:
        cls = get_trainable_cls(exp.run)
    except Exception:  # TuneError: unknown name
        raise UsageError(
            f"experiment {exp.name!r}: run: {exp.run} is not an algorithm Ray knows "
            "(e.g. SEAC, PPO, APPO, IMPALA, DQN)."
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise UsageError(f"experiment {exp.name!r}: run: {exp.run} is not an RLlib algorithm.")
    return cls.get_default_config()


def _manages_agents(config) -> bool:
    """Whether the algorithm maps agents to modules itself (this package's do, with
    their `shared_policy` setting); RLlib's own get one module per agent from here."""
    return hasattr(config, SHARED_POLICY)


def _multi_agent(exp: Experiment, env_config: dict, shared: bool) -> dict | None:
    """`multiagent` settings for an RLlib algorithm on a multi-agent env: one module
    per agent id of the env (IPPO for PPO), or one module all agents share."""
    import gymnasium as gym

    from rllib_seac.agent_modules import default_grouping
    from rllib_seac.envs import make_env

    try:
        env = make_env(exp.env, env_config)
    except ValueError:
        if exp.env in gym.registry:
            return None  # a single-agent gymnasium env (rware's own ids are ours first)
        raise
    try:
        agents = list(getattr(env, "possible_agents", None) or [])
    finally:
        env.close()
    if not agents:
        return None
    return default_grouping(agents, shared)


def trial_settings(exp: Experiment, point: dict) -> dict:
    """The config keys of one trial: the experiment's, one grid point, and for RLlib's
    algorithms on a multi-agent env the module of each agent."""
    settings = {**exp.config, **point}
    defaults = algorithm_config(exp)
    if _manages_agents(defaults):
        return settings
    shared = bool(settings.pop(SHARED_POLICY, False))
    multi_agent = _multi_agent(exp, settings.get("env_config") or {}, shared)
    if not multi_agent:
        return settings
    settings["multiagent"] = multi_agent
    # Off-policy algorithms (DQN, SAC) default to a single-agent episode buffer,
    # which cannot hold multi-agent episodes; RLlib has a multi-agent twin of each.
    buffer = {**(getattr(defaults, "replay_buffer_config", None) or {})}
    buffer.update(settings.get("replay_buffer_config") or {})
    if buffer.get("type") in SINGLE_AGENT_BUFFERS:
        settings["replay_buffer_config"] = {**buffer, "type": f"MultiAgent{buffer['type']}"}
    return settings


def validate(exp: Experiment) -> None:
    """Fails before Ray starts trials: unknown keys, and every grid value checked
    on its own (the other grid settings at their first value)."""
    from rllib_seac._rllib_internals import config_attribute

    defaults = algorithm_config(exp)
    # update_from_dict sets even unknown attributes, so a typo would be silently ignored.
    for key in [*exp.config, *exp.grid]:
        known = key in CONFIG_ALIASES or hasattr(defaults, config_attribute(str(key)))
        if not known and key != SHARED_POLICY:
            raise UsageError(f"experiment {exp.name!r}: unknown config key {key!r}.")
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


def _grid_points(exp: Experiment) -> list[dict]:
    """Each grid value once, the other grid settings at their first value."""
    first = {key: values[0] for key, values in exp.grid.items()}
    return [first] + [{**first, k: v} for k, values in exp.grid.items() for v in values[1:]]


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
                raise UsageError(
                    f"experiment {exp.name!r}{where}: each {exp.run} trial asks for "
                    f"{need[kind]:g} {kind}s (num_env_runners={config.num_env_runners}, "
                    f"num_learners={config.num_learners}) but Ray has {have.get(kind, 0):g} "
                    "here: lower num_env_runners, or set num_learners: 0 to learn in the "
                    "trial's own process."
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
    if args.wandb_project:
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise UsageError(
                "--wandb-project needs wandb: pip install 'rllib-seac[wandb]'"
            ) from None
        from ray.air.integrations.wandb import WandbLoggerCallback

        # Tune's W&B logging actor gets only WANDB_API_KEY from this process's env:
        # wandb's own WANDB_MODE (offline) and WANDB_DIR are passed on here.
        wandb_env = {"mode": "WANDB_MODE", "dir": "WANDB_DIR"}
        init = {key: os.environ[var] for key, var in wandb_env.items() if var in os.environ}
        callbacks.append(WandbLoggerCallback(project=args.wandb_project, group=exp.name, **init))
    if args.mlflow_tracking_uri:
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise UsageError(
                "--mlflow-tracking-uri needs mlflow: pip install 'rllib-seac[mlflow]'"
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


def _run(exp: Experiment, resume: bool, verbose: int, callbacks: list) -> int:
    """Runs (or resumes) one experiment through Tune; returns the number of errored trials."""
    # Read by Tune when it runs: without it, Ray 2.60 ignores `progress_reporter`.
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    from ray import tune

    from rllib_seac.cli.progress import ReturnReporter, print_summary
    from rllib_seac.seac.config import SEACConfig

    _check_trials_fit(exp)
    # Only the file's settings: the algorithm fills in its defaults.
    param_space = {"env": exp.env, **trial_settings(exp, {})}
    param_space.update({key: tune.grid_search(values) for key, values in exp.grid.items()})
    if resume:
        # Tune keeps the run's stop criteria and settings; trials continue from
        # their last checkpoints, errored ones too.
        tuner = tune.Tuner.restore(
            _run_dir(exp),
            trainable=exp.run,
            resume_unfinished=True,
            resume_errored=True,
            param_space=param_space,
        )
    else:
        run_config = tune.RunConfig(
            name=exp.name,
            storage_path=_storage(exp),
            stop=exp.stop,
            checkpoint_config=_checkpoint_config(exp),
            failure_config=tune.FailureConfig(max_failures=exp.max_failures),
            progress_reporter=ReturnReporter(every_result=verbose >= 1),
            callbacks=callbacks,
            # 3 (-vv) also prints each full result.
            verbose=3 if verbose >= 2 else 2,
        )
        tuner = tune.Tuner(
            exp.run,
            param_space=param_space,
            tune_config=tune.TuneConfig(num_samples=exp.num_samples),
            run_config=run_config,
        )
    results = tuner.fit()
    print_summary(exp.name, results, isinstance(algorithm_config(exp), SEACConfig))
    return results.num_errors
