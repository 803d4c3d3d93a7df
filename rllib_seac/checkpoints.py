"""Reading an RLlib checkpoint of this package: where it is, and the config it saved.

The one module that opens a checkpoint's files (the Algorithm's restore check, the
evaluation and rendering tools, the authors' weights import share it); it imports
nothing else of this package, so any of them can use it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_LEARNER_GROUP, COMPONENT_RL_MODULE
from ray.rllib.utils.checkpoints import Checkpointable

# The file `Algorithm.save_to_path` writes into a whole-algorithm checkpoint (RLlib
# names it in place, with no constant); component checkpoints have none.
CHECKPOINT_FILE = "rllib_checkpoint.json"
CONFIG_FILE = Checkpointable.CLASS_AND_CTOR_ARGS_FILE_NAME
MODULES_DIR = Path(COMPONENT_LEARNER_GROUP, COMPONENT_LEARNER, COMPONENT_RL_MODULE)


class CheckpointError(ValueError):
    """A path that is not a usable checkpoint, or whose env cannot be made."""


def find_checkpoint(path) -> Path:
    """`path` itself, or the latest checkpoint_* in it (a Tune trial directory).

    Absolute: RLlib reads checkpoints through pyarrow, which takes a relative path
    for a URI without a scheme.
    """
    path = Path(path).absolute()
    if not path.exists():
        raise CheckpointError(f"no such checkpoint: {path}")
    if (path / CHECKPOINT_FILE).is_file():
        return path
    in_trial = sorted(path.glob(f"checkpoint_*/{CHECKPOINT_FILE}"))
    if in_trial:
        return in_trial[-1].parent
    raise CheckpointError(
        f"{path} is not an RLlib checkpoint (no {CHECKPOINT_FILE} in it): give the "
        "directory algo.save_to_path() wrote, or a Tune trial directory with checkpoint_* "
        "in it."
    )


def saved_config_state(checkpoint) -> dict | None:
    """The AlgorithmConfig state (`config.get_state()`) an algorithm checkpoint was
    saved with, or None when `checkpoint` has no such file (a component checkpoint,
    or one on another machine's file system).

    The Algorithm's constructor arguments are pickled as ((config_state, ...), kwargs).
    """
    config_file = Path(checkpoint) / CONFIG_FILE
    if not config_file.is_file():
        return None
    with open(config_file, "rb") as f:
        (config_state, *_), _ = pickle.load(f)["ctor_args_and_kwargs"]
    return config_state


def saved_config(checkpoint):
    """The AlgorithmConfig an algorithm checkpoint was saved with."""
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    state = saved_config_state(checkpoint)
    if state is None:
        raise CheckpointError(f"{checkpoint} has no {CONFIG_FILE}: not an algorithm checkpoint")
    return AlgorithmConfig.from_state(state)
