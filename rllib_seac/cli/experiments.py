"""Tuned-example YAML: the schema, Ray 2.40's old-stack keys translated (one line
each), and the checks that run before Ray starts.

A file maps experiment names to {run, env, stop, config} and Tune's experiment
keys (num_samples, checkpoint_config, storage_path, max_failures). `rllib train
--algo` makes one experiment of the same form from flags.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rllib_seac.cli.common import UsageError, note

ENTRY_KEYS = (
    "run",
    "env",
    "stop",
    "config",
    "num_samples",
    "checkpoint_config",
    "storage_path",
    "max_failures",
)
# Ray 2.40's tune.run() keys of the old tuned examples -> what they became here.
OLD_ENTRY_KEYS = {
    "checkpoint_freq": "checkpoint_config.checkpoint_frequency",
    "checkpoint_at_end": "checkpoint_config.checkpoint_at_end",
    "keep_checkpoints_num": "checkpoint_config.num_to_keep",
    "checkpoint_score_attr": "checkpoint_config.checkpoint_score_attribute",
    "local_dir": "storage_path",
}
REFUSED_ENTRY_KEYS = {
    "resources_per_trial": "RLlib sizes each trial from its config: set num_env_runners, "
    "num_cpus_per_env_runner, num_learners or num_gpus_per_learner in config instead.",
}
CHECKPOINT_KEYS = (
    "checkpoint_frequency",
    "checkpoint_at_end",
    "num_to_keep",
    "checkpoint_score_attribute",
    "checkpoint_score_order",
)
# Old-stack config keys with a new-stack name.
CONFIG_RENAMES = {
    "num_workers": "num_env_runners",
    "num_envs_per_worker": "num_envs_per_env_runner",
    "num_cpus_per_worker": "num_cpus_per_env_runner",
    "num_gpus_per_worker": "num_gpus_per_env_runner",
    "custom_resources_per_worker": "custom_resources_per_env_runner",
    "num_cpus_for_driver": "num_cpus_for_main_process",
    "evaluation_num_workers": "evaluation_num_env_runners",
    "num_gpus": "num_gpus_per_learner",
    "sgd_minibatch_size": "minibatch_size",
    "num_sgd_iter": "num_epochs",
    "ignore_worker_failures": "ignore_env_runner_failures",
    "recreate_failed_workers": "restart_failed_env_runners",
}
# Switches of the new API stack: always on here.
NEW_STACK_SWITCHES = (
    "_enable_new_api_stack",
    "enable_rl_module_and_learner",
    "enable_env_runner_and_connector_v2",
)
# Old-stack config keys with no meaning on the new stack.
REFUSED_CONFIG_KEYS = {
    "horizon": "episodes end where the env ends them: set its limit in env_config "
    "(e.g. max_episode_steps).",
    "soft_horizon": "episodes end where the env ends them.",
    "no_done_at_end": "the env's terminated/truncated flags decide.",
    "monitor": "write a video with `rllib render CHECKPOINT --out run.gif`.",
    "record_env": "write a video with `rllib render CHECKPOINT --out run.gif`.",
    "simple_optimizer": "it belongs to the old API stack's policies.",
    "observation_filter": "it belongs to the old API stack (use a connector).",
    "preprocessor_pref": "it belongs to the old API stack (use a connector).",
    "exploration_config": "new-stack modules explore through their own action distribution.",
}
# AlgorithmConfig keys that SEAC's update rule does not read.
SEAC_IGNORED = {
    "train_batch_size": "SEAC's batch is n_steps x num_envs_per_env_runner x "
    "max(1, num_env_runners) steps per agent.",
    "rollout_fragment_length": "SEAC's rollouts are n_steps long.",
    "minibatch_size": "SEAC takes one gradient step per n-step batch.",
    "num_epochs": "SEAC takes one gradient step per n-step batch.",
    "model_config": "SEAC's module takes hidden_sizes (e.g. hidden_sizes: [64, 64]).",
}
# model.X of the old ModelV2 config -> the new stack's DefaultModelConfig.X (RLlib's
# own modules) or SEAC's setting.
MODEL_KEYS = ("fcnet_hiddens", "fcnet_activation", "vf_share_layers", "free_log_std")
SEAC_MODEL_KEYS = {"fcnet_hiddens": "hidden_sizes"}
# update_from_dict keys that are not attribute names (others: config_attribute()).
CONFIG_ALIASES = {"multiagent", "_model_config"}
# Old result keys -> the new stack's.
STOP_RENAMES = {
    "timesteps_total": "num_env_steps_sampled_lifetime",
    "num_env_steps_sampled": "num_env_steps_sampled_lifetime",
    "episodes_total": "env_runners/num_episodes_lifetime",
    **{
        f"{prefix}episode_{old}_{stat}": f"env_runners/episode_{new}_{stat}"
        for prefix in ("", "sampler_results/", "env_runners/")
        for old, new in (("reward", "return"), ("len", "len"))
        for stat in ("mean", "max", "min")
        if not (prefix == "env_runners/" and old == "len")
    },
}
# What every result of SEAC and of RLlib's algorithms holds (Tune adds the first six).
REPORTED_KEYS = (
    "training_iteration",
    "time_total_s",
    "time_this_iter_s",
    "time_since_restore",
    "iterations_since_restore",
    "timestamp",
    "num_env_steps_sampled_lifetime",
    "env_runners/num_env_steps_sampled_lifetime",
    "env_runners/episode_return_mean",
    "env_runners/episode_return_max",
    "env_runners/episode_return_min",
    "env_runners/episode_len_mean",
    "env_runners/num_episodes_lifetime",
)
REPORTED_PREFIXES = (
    "env_runners/agent_episode_returns_mean/",
    "env_runners/module_episode_returns_mean/",
    "learners/",
)
# CLI keys, not AlgorithmConfig attributes, for algorithms other than this package's.
SHARED_POLICY = "shared_policy"
LOCAL_MODE_HELP = (
    "--local-mode does not exist on Ray 2.60 (ray.init(local_mode=True) raises): to "
    "debug in one process, set config num_env_runners: 0 (sampling in the trial's "
    "process) and run the algorithm in a script with config.build_algo().train()."
)


@dataclass
class Experiment:
    name: str
    run: str
    env: str
    stop: dict
    config: dict  # Plain settings, translated.
    grid: dict = field(default_factory=dict)  # Setting -> values of its `grid_search`.
    num_samples: int = 1
    checkpoint: dict = field(default_factory=dict)  # tune.CheckpointConfig kwargs.
    storage_path: str | None = None
    max_failures: int = 0


@dataclass
class Overrides:
    """What the command line replaces in every experiment (None: keep the file's)."""

    env: str | None = None
    stop: dict | None = None
    config: dict | None = None
    num_samples: int | None = None
    checkpoint: dict = field(default_factory=dict)
    storage_path: str | None = None
    max_failures: int | None = None


# Values a YAML file may expand to through its aliases (&a, *a): far more than any
# experiment file holds, far fewer than an alias bomb's billions.
MAX_YAML_VALUES = 100_000


def load_file(path: Path, overrides: Overrides) -> list[Experiment]:
    import yaml

    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(
            f"{path} is not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start}): "
            "save it as UTF-8."
        ) from None
    try:
        data = _read_yaml(text, path)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or e
        raise UsageError(f"{path} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{path} must map experiment names to {{run, env, stop, config}}.")
    return [experiment(str(name), entry, overrides) for name, entry in data.items()]


def _read_yaml(text: str, path: Path):
    """yaml.safe_load, refusing a key given twice in one mapping (YAML keeps the last
    silently) and aliases that expand to more than MAX_YAML_VALUES values."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if key in seen:
                    what = "experiment" if node is self._root else "key"
                    raise UsageError(
                        f"{path}: {what} {key!r} is given twice (lines {seen[key]} and "
                        f"{line}); YAML would keep only the last."
                    )
                seen[key] = line
            return super().construct_mapping(node, deep)

    loader = Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        if _expanded_size(root) > MAX_YAML_VALUES:
            raise UsageError(
                f"{path}: its aliases (*name) expand to more than {MAX_YAML_VALUES:,} "
                "values; write the experiments out."
            )
        loader._root = root
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _expanded_size(root) -> int:
    """Values in the document once every alias is replaced by what it names (aliases
    share nodes, so this counts each node once per path to it)."""
    sizes: dict[int, int] = {}
    order, stack = [], [root]
    while stack:  # post-order without recursion: an alias bomb nests deeply
        node = stack.pop()
        if id(node) in sizes:
            continue
        sizes[id(node)] = 0
        order.append(node)
        for child in _children(node):
            stack.append(child)
    for node in reversed(order):
        total = 1 + sum(sizes[id(child)] for child in _children(node))
        sizes[id(node)] = min(total, MAX_YAML_VALUES + 1)
    return sizes[id(root)]


def _children(node) -> list:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_name(name: str) -> None:
    """An experiment's name is its run's folder under the storage path."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or ".." in name:
        raise UsageError(
            f"experiment name {name!r} must be a plain folder name (no '/', '\\' or '..'): "
            "it names the run's folder under the storage path."
        )


def check_storage_path(path: str) -> None:
    """A local --storage-path (or storage_path) must be a directory this user can
    write, or one that can be made: checked before Ray starts."""
    if "://" in path:
        return  # a URI (s3://, gs://, ...): its file system answers when Tune writes
    target = Path(path).expanduser().absolute()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == target else f"is under a file ({existing})"
        raise UsageError(f"storage path {path} {where}: give a directory.")
    try:  # a folder made and removed where the run's folders will go
        os.rmdir(tempfile.mkdtemp(prefix=".rllib-write-check-", dir=existing))
    except OSError as e:
        raise UsageError(
            f"storage path {path}: cannot write in {existing} ({e.strerror or e})."
        ) from None


def experiment(name: str, entry, overrides: Overrides) -> Experiment:
    """One experiment from its YAML entry (or flags), old keys translated."""

    def fail(msg):
        raise UsageError(f"experiment {name!r}: {msg}")

    check_name(name)
    if not isinstance(entry, dict):
        fail("must be a mapping with keys run, env, stop, config.")
    entry = dict(entry)
    for key in [k for k in entry if k in OLD_ENTRY_KEYS]:
        note(f"experiment {name!r}: {key} -> {OLD_ENTRY_KEYS[key]}")
        new = OLD_ENTRY_KEYS[key]
        if new.startswith("checkpoint_config."):
            entry.setdefault("checkpoint_config", {})[new.split(".", 1)[1]] = entry.pop(key)
        else:
            entry[new] = entry.pop(key)
    for key, reason in REFUSED_ENTRY_KEYS.items():
        if key in entry:
            fail(f"{key} has no meaning here: {reason}")
    if unknown := sorted(set(entry) - set(ENTRY_KEYS), key=str):
        fail(f"unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(ENTRY_KEYS)}.")
    if "run" not in entry:
        fail("missing 'run' (the algorithm, e.g. run: SEAC or run: PPO).")
    config = entry.get("config") or {}
    stop = entry.get("stop") or {}
    if not isinstance(stop, dict) or not isinstance(config, dict):
        fail("'stop' and 'config' must be mappings.")
    config = dict(config)
    if "env" in config:  # Ray 2.40's examples also put the env in the config.
        note(f"experiment {name!r}: config.env -> env")
        entry.setdefault("env", config.pop("env"))
    if overrides.env is not None and not overrides.env.strip():
        raise UsageError("--env is empty: give an env name, or MODULE:CALLABLE.")
    env = overrides.env or entry.get("env")
    if not env:
        fail("missing 'env' (e.g. env: rware-tiny-2ag-v2).")
    # Merged before the grid split, so --config can also replace or add a grid_search.
    config = {**config, **(overrides.config or {})}
    stop = check_stop(overrides.stop if overrides.stop is not None else stop, name)
    checkpoint = {**_checkpoint_config(entry.get("checkpoint_config"), fail)}
    checkpoint.update(overrides.checkpoint)
    if attr := checkpoint.get("checkpoint_score_attribute"):
        checkpoint["checkpoint_score_attribute"] = reported_metric(
            attr, f"experiment {name!r}: checkpoint score attribute"
        )
    num_samples = overrides.num_samples or entry.get("num_samples", 1)
    if not isinstance(num_samples, int) or num_samples < 1:
        fail(f"num_samples must be an integer >= 1, got {num_samples!r}.")
    max_failures = overrides.max_failures
    if max_failures is None:
        max_failures = entry.get("max_failures", 0)
    if not isinstance(max_failures, int) or max_failures < -1:
        fail(f"max_failures must be an integer >= -1 (-1: no limit), got {max_failures!r}.")
    storage_path = overrides.storage_path or entry.get("storage_path")
    if storage_path is not None:
        check_storage_path(str(storage_path))
    plain, grid = {}, {}
    for key, value in translate_config(name, str(entry["run"]), config).items():
        if isinstance(value, dict) and "grid_search" in value:
            if not isinstance(value["grid_search"], list) or not value["grid_search"]:
                fail(f"config.{key}: grid_search needs a non-empty list of values.")
            grid[key] = value["grid_search"]
        else:
            plain[key] = value
    return Experiment(
        name=name,
        run=str(entry["run"]),
        env=str(env),
        stop=stop,
        config=plain,
        grid=grid,
        num_samples=num_samples,
        checkpoint=checkpoint,
        storage_path=storage_path,
        max_failures=max_failures,
    )


def _checkpoint_config(value, fail) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail(f"checkpoint_config must be a mapping of {', '.join(CHECKPOINT_KEYS)}.")
    if unknown := sorted(set(value) - set(CHECKPOINT_KEYS), key=str):
        fail(
            f"unknown checkpoint_config key(s) {', '.join(map(str, unknown))}; allowed: "
            f"{', '.join(CHECKPOINT_KEYS)}."
        )
    frequency = value.get("checkpoint_frequency", 0)
    if not _is_int(frequency) or frequency < 0:
        fail(f"checkpoint_frequency must be an integer >= 0 (0: at the end), got {frequency!r}.")
    keep = value.get("num_to_keep")
    if keep is not None and not (_is_int(keep) and keep >= 1):
        fail(f"num_to_keep must be an integer >= 1 (or null: keep all), got {keep!r}.")
    if not isinstance(value.get("checkpoint_at_end", True), bool):
        fail(f"checkpoint_at_end must be true or false, got {value['checkpoint_at_end']!r}.")
    if value.get("checkpoint_score_order", "max") not in ("max", "min"):
        fail(f"checkpoint_score_order must be max or min, got {value['checkpoint_score_order']!r}.")
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def translate_config(name: str, run: str, config: dict) -> dict:
    """Ray 2.40's old-stack config keys -> the new stack's, one note line each; keys
    with no meaning here refused."""
    is_seac = run == "SEAC"

    def fail(msg):
        raise UsageError(f"experiment {name!r}: {msg}")

    out = {}
    for key, value in config.items():
        if key in CONFIG_RENAMES:
            new = CONFIG_RENAMES[key]
            if is_seac and new in SEAC_IGNORED:
                fail(
                    f"config key {key!r} ({new} on the new stack) has no meaning for SEAC: "
                    f"{SEAC_IGNORED[new]}"
                )
            note(f"experiment {name!r}: {key} -> {new}")
            out[new] = value
        elif key == "framework":
            if value != "torch":
                fail(f"framework: {value} is not supported; Ray 2.60's API stack runs torch.")
            note(f"experiment {name!r}: framework: torch (the only framework) dropped")
        elif key in NEW_STACK_SWITCHES:
            if value is not True:
                fail(f"{key}: {value}: the old API stack is not supported (new stack only).")
            note(f"experiment {name!r}: {key}: true dropped (the new stack is always on)")
        elif key in REFUSED_CONFIG_KEYS:
            fail(
                f"config key {key!r} has no meaning on the new API stack: "
                f"{REFUSED_CONFIG_KEYS[key]}"
            )
        elif is_seac and key in SEAC_IGNORED:
            fail(f"config key {key!r} has no meaning for SEAC: {SEAC_IGNORED[key]}")
        elif key == "model":
            out.update(_translate_model(name, is_seac, value, fail))
        elif key == "model_config" and not is_seac:
            # The new stack's name; AlgorithmConfig's dict form calls it _model_config.
            out["_model_config"] = value
        else:
            out[key] = value
    return out


def _translate_model(name: str, is_seac: bool, model, fail) -> dict:
    if not isinstance(model, dict):
        fail(f"model must be a mapping, got {model!r}.")
    allowed = SEAC_MODEL_KEYS if is_seac else MODEL_KEYS
    if unknown := sorted(set(model) - set(allowed), key=str):
        fail(
            f"model.{unknown[0]} has no meaning for this algorithm's module on the new "
            f"API stack; model keys translated: {', '.join(allowed)}."
        )
    if is_seac:
        for key in model:
            note(f"experiment {name!r}: model.{key} -> {SEAC_MODEL_KEYS[key]}")
        return {SEAC_MODEL_KEYS[key]: value for key, value in model.items()}
    for key in model:
        note(f"experiment {name!r}: model.{key} -> model_config.{key}")
    return {"_model_config": dict(model)}


def reported_metric(key: str, where: str) -> str:
    """`key` (an old name translated, one note line) if results report it, else refused."""
    sign, bare = ("min-", key[4:]) if key.startswith("min-") else ("", key)
    if bare in STOP_RENAMES:
        note(f"{where}: {bare} -> {STOP_RENAMES[bare]}")
        bare = STOP_RENAMES[bare]
    if bare not in REPORTED_KEYS and not bare.startswith(REPORTED_PREFIXES):
        raise UsageError(
            f"{where}: no result reports {bare!r}, so it would never fire; use one of "
            f"{', '.join(REPORTED_KEYS)} (or a key under {', '.join(REPORTED_PREFIXES)})."
        )
    return sign + bare


def check_stop(stop: dict, name: str) -> dict:
    """Flat result keys ("env_runners/episode_return_mean") with number values, old
    names translated; a key no result reports is refused (Tune would never fire it)."""
    out = {}
    where = f"experiment {name!r}: stop"
    for key, value in stop.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = "nest keys as 'a/b'" if isinstance(value, dict) else "e.g. 100"
            raise UsageError(f"{where}: {key!r} must be a number, got {value!r} ({hint}).")
        out[reported_metric(str(key), where)] = value
    return out
