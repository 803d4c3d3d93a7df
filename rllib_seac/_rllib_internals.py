"""Every use of a private part of RLlib, Ray Tune or Ray, in one place.

Each function wraps one internal behind a small, documented interface: what RLlib
does there and why the public API is not enough. `tests/test_rllib_internals.py`
checks each one so that an RLlib upgrade that changes it fails loudly, naming it.
"""

from __future__ import annotations

# The keys RLlib 2.60 passes to `ray.util.log_once` for notices that do not apply to
# this package's algorithms: "you are on the new API stack, set api_stack(...) for
# the old one" (SEAC, SEQL and SE-PPO have no old-stack version), and the deprecation
# of RLModuleConfig, which RLModule.__init__ itself constructs for every module
# (nothing a user can change).
OUR_ALGORITHMS = ("SEAC", "SEQL", "SEPPO")
RLMODULE_CONFIG_NOTICE = "RLModule(config=[RLModuleConfig object])"
NOTICES_NOT_FOR_OUR_ALGORITHMS = (
    *(f"{name}_on_new_api_stack" for name in OUR_ALGORITHMS),
    RLMODULE_CONFIG_NOTICE,
)


def mark_notices_not_for_our_algorithms_shown() -> None:
    """Marks RLlib's once-per-process notices that do not apply to this package's
    algorithms as already shown, so they never print. Call at import in every module
    that validates one of their configs or builds an RLModule."""
    from ray.util import log_once

    for key in NOTICES_NOT_FOR_OUR_ALGORITHMS:
        log_once(key)


def set_algorithm_log_dir_parent(path: str) -> None:
    """Where an Algorithm built outside Tune (`config.build_algo()`) makes its log
    directory. Ray 2.60's Trainable makes an (empty, for SEAC) dated directory under
    `ray.tune.trainable.trainable.DEFAULT_STORAGE_PATH` (~/ray_results), with no
    argument to move it; this sets that module global for this process."""
    import ray.tune.trainable.trainable as trainable_module

    trainable_module.DEFAULT_STORAGE_PATH = str(path)


def reload_ray_auth_settings() -> None:
    """Makes this process see RAY_AUTH_MODE / RAY_AUTH_TOKEN set after `import ray`.
    Ray reads its settings into a cached config at import; Ray's own code that turns
    token authentication on refreshes it the same way
    (ray._private.authentication.authentication_token_setup._enable_token_auth)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def config_attribute(key: str) -> str:
    """The AlgorithmConfig attribute that `update_from_dict` sets for `key`.

    `update_from_dict` renames a few keys (num_workers -> num_env_runners, framework
    -> framework_str, lambda -> lambda_, ...) with the private
    `AlgorithmConfig._translate_special_keys`; the CLI needs the same name to tell a
    typo (an attribute no config has) from a real key, since `update_from_dict` sets
    even unknown attributes silently.
    """
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    return AlgorithmConfig._translate_special_keys(key, warn_deprecated=False)


def registered_env_creator(name: str):
    """The creator given to `ray.tune.register_env(name, ...)`, or None.

    Ray has no public lookup of a registered env: RLlib itself reads the private
    `ray.tune.registry._global_registry`, which is what this does.
    """
    from ray.tune.registry import ENV_CREATOR, _global_registry

    if _global_registry.contains(ENV_CREATOR, name):
        return _global_registry.get(ENV_CREATOR, name)
    return None


# --- Learner: the direct update path (rllib_seac.seac.learner.SEACTorchLearner.update) ---
# RLlib's `Learner.update` wraps every gradient step in a minibatch iterator, Ray
# gauges and ~20 metric logs, a sixth of a 20-sample A2C step. SEAC's direct path
# keeps RLlib's step and counters but does that bookkeeping once per report; these
# are the parts of `Learner.update` it repeats.


def training_data_batch(training_data):
    """The batch of a `TrainingData` (what LearnerGroup sends to a remote learner),
    its object refs resolved: what `Learner.update` does first with it."""
    training_data.solve_refs()
    return training_data.batch


def count_weights_update(learner) -> None:
    """Advances `Learner._weights_seq_no`, the version number RLlib gives the
    weights (sent with them to env runners, logged as WEIGHTS_SEQ_NO), as
    `Learner.update` does once per update."""
    learner._weights_seq_no += 1


def weights_seq_no(learner) -> int:
    """The learner's current `_weights_seq_no`."""
    return learner._weights_seq_no


def count_steps_trained_in_ray_metrics(learner, env_steps: int, module_steps: int) -> None:
    """Ray's own (Prometheus) counters of trained steps, which `Learner.update`
    increments: `_metrics_all_modules_num_env_steps_trained` and
    `_metrics_all_modules_num_module_steps_trained`."""
    learner._metrics_all_modules_num_env_steps_trained.inc(value=env_steps)
    learner._metrics_all_modules_num_module_steps_trained.inc(value=module_steps)


def torch_learner_customises_optimizer_step(learner) -> bool:
    """Whether a TorchLearner steps its optimizers other than plainly: grad scalers
    (`_grad_scalers`), LR scheduler classes (`_lr_scheduler_classes`) or a
    torch.compile'd update (`_torch_compile_complete_update`), all set in
    `TorchLearner.__init__`/`build` from private config fields. SEAC's
    hand-written gradient step covers only the plain case."""
    return (
        learner._grad_scalers is not None
        or learner._lr_scheduler_classes is not None
        or learner._torch_compile_complete_update
    )


# --- Algorithm: the in-process weight copy ---


def local_learner(learner_group):
    """The Learner of a local LearnerGroup (`LearnerGroup._learner`): SEAC copies
    its weights into the env runner in place, or ships them as one flat array,
    instead of RLlib's state-dict round trip."""
    return learner_group._learner


def rllib_env_id_and_creator(env_specifier, config):
    """RLlib's `Algorithm._get_env_id_and_creator`: (env id, creator) of
    `config.env`, looked up in Tune's registry or gymnasium's. `Algorithm.setup`
    calls this protected static method to check the env; SEAC overrides it to also
    take a plain function of the env config (what `rllib_seac.make_env` accepts)
    and hands everything else to RLlib's own lookup, through this function."""
    from ray.rllib.algorithms.algorithm import Algorithm

    return Algorithm._get_env_id_and_creator(env_specifier, config)


# --- EnvRunner and Checkpointable: SEAC's env runner implements get_state itself ---


def env_runner_seed(env_runner) -> int | None:
    """`EnvRunner._seed`: the seed RLlib's EnvRunner.__init__ derives for this
    runner (config.seed + worker index, +1e6 for evaluation runners), None
    unseeded. SEAC seeds its envs and action streams from it, as RLlib's own env
    runners do; there is no public accessor."""
    return env_runner._seed


def checkpoint_component_wanted(checkpointable, name: str, components, not_components) -> bool:
    """`Checkpointable._check_component`: whether `get_state(components=...,
    not_components=...)` asks for component `name`. RLlib's own Checkpointables
    (EnvRunners, Learners) call this protected helper in their `get_state`; SEAC's
    env runner implements `get_state` the same way."""
    return checkpointable._check_component(name, components, not_components)


def checkpoint_subcomponents(checkpointable, name: str, components):
    """`Checkpointable._get_subcomponents`: the parts of `components` below
    component `name` ("rl_module/agent_0" -> "agent_0"), or None for all."""
    return checkpointable._get_subcomponents(name, components)


# --- Learner: the minibatch iterator (rllib_seac.seppo.learner.SEPPOTorchLearner) ---


class ReplacesMinibatchIterator:
    """Mixin for a Learner that walks the train batch in its own minibatches.

    `Learner.update` gets its minibatches from the private
    `Learner._create_iterator_if_necessary`, which runs the learner connector on the
    episodes and wraps the train batch in RLlib's `MiniBatchCyclicIterator` (each
    module's batch walked and shuffled on its own). With this mixin, when RLlib made
    that iterator, the learner's `minibatch_iterator(batch, num_epochs=,
    minibatch_size=, shuffle_batch_per_epoch=, num_total_minibatches=)` gets the same
    batch and settings (its private attributes) and returns the iterator to use
    instead; it returns None to keep RLlib's.
    """

    def _create_iterator_if_necessary(self, **kwargs):
        from ray.rllib.utils.minibatch_utils import MiniBatchCyclicIterator

        iterator = super()._create_iterator_if_necessary(**kwargs)
        if type(iterator) is not MiniBatchCyclicIterator:
            return iterator
        replacement = self.minibatch_iterator(
            iterator._batch,
            num_epochs=iterator._num_epochs,
            minibatch_size=iterator._minibatch_size,
            shuffle_batch_per_epoch=iterator._shuffle_batch_per_epoch,
            num_total_minibatches=iterator._num_total_minibatches,
        )
        return iterator if replacement is None else replacement

    def minibatch_iterator(self, batch, **settings):
        return None


# --- Tune: a resumed run's stop criteria (rllib_seac.cli.run_control) ---


def set_trial_stop(trial, stop: dict) -> None:
    """Replaces a Tune trial's stop criteria. A resumed run restores each trial's
    criteria, and the run's Stopper, from its saved state, so a new `--stop` would
    not apply; `Trial.should_stop` reads this dict at every result."""
    trial.stopping_criterion = dict(stop)


def result_meets_stop(result: dict, stop: dict) -> bool:
    """Whether a trial's result meets `stop` as Tune judges it after each result
    (`Trial.should_stop` on the result flattened with "/"). Tune marks a finished
    trial's last result "done", which `should_stop` takes as met whatever the
    criteria, so that flag is left out here."""
    from ray.tune.experiment import Trial
    from ray.tune.result import DONE
    from ray.tune.utils import flatten_dict

    judge = Trial("stop-criteria", stub=True, stopping_criterion=dict(stop))
    return judge.should_stop(flatten_dict({k: v for k, v in result.items() if k != DONE}))


# --- A checkpoint's env-step counter (rllib_seac.analysis.protocol) ---

# How RLlib 2.60's MetricsLogger names a nested stat in its saved state.
METRICS_STATE_KEY_SEPARATOR = "--"


def checkpoint_env_steps(checkpoint) -> int | None:
    """The env steps an Algorithm had sampled when `checkpoint` was saved, or None if
    it does not say. Tune puts no checkpoint name in a class trainable's results, so
    the snapshot itself is read: RLlib saves its MetricsLogger's stats in
    algorithm_state.pkl, the lifetime counter as a "lifetime_sum" under the flattened
    key of (env_runners, num_env_steps_sampled_lifetime). Read as data
    (`checkpoints.read_pickle`), never by running the pickle."""
    from pathlib import Path

    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    from rllib_seac.checkpoints import read_pickle

    file = Path(checkpoint) / "algorithm_state.pkl"
    if not file.is_file():
        return None
    state = read_pickle(file, "algorithm state")
    key = METRICS_STATE_KEY_SEPARATOR.join((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME))
    try:
        return int(state["metrics_logger"]["stats"][key]["lifetime_sum"])
    except (KeyError, TypeError):
        return None
