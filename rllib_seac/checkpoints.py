"""Reading an RLlib checkpoint of this package: where it is, and the config it saved.

The one module that opens a checkpoint's files (the Algorithm's restore check, the
evaluation and rendering tools, the authors' weights import share it); it imports
nothing else of this package, so any of them can use it.

RLlib writes a checkpoint's config and modules with pickle, which can run any code
when read. `read_pickle` reads them without running any: it calls only an
allow-list of constructors (plain containers, numpy's array rebuilders), and every
other class or function the file names becomes an inert `StandIn` that keeps its
name and pickled data, without importing its module.
"""

from __future__ import annotations

import collections
import pickle
from pathlib import Path

import numpy as np
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


class StandIn:
    """An object of a class (or a call of a function) that a pickle named and
    `read_pickle` did not import: its pickled data, nothing else. The class itself
    keeps the pickled `__module__` and `__qualname__`."""

    dump_patches = False  # read by torch.load's source check of pickled modules

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            self.__dict__["_call"] = (args, kwargs)

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, __slots__ values)
            for part in state:
                self.__setstate__(part)
        elif isinstance(state, dict):
            self.__dict__.update(state)
        elif state is not None:
            self.__dict__["_state"] = state

    def __call__(self, *args, **kwargs):  # what a call of the pickled object returned
        return type(self)(*args, **kwargs)

    def __setitem__(self, key, value):
        self.__dict__.setdefault("_items", {})[key] = value

    def append(self, value):
        self.__dict__.setdefault("_list", []).append(value)

    def extend(self, values):
        self.__dict__.setdefault("_list", []).extend(values)


_stand_ins: dict[tuple[str, str], type] = {}


def stand_in(module: str, name: str) -> type:
    """The StandIn class of the pickled global `module.name` (one per name)."""
    key = (module, name)
    if key not in _stand_ins:
        _stand_ins[key] = type(name, (StandIn,), {"__module__": module, "__qualname__": name})
    return _stand_ins[key]


def global_name(value) -> str | None:
    """ "module.name" of a StandIn class (a class or function the pickle named), else None."""
    if isinstance(value, type) and issubclass(value, StandIn):
        return f"{value.__module__}.{value.__qualname__}"
    return None


def _numpy_globals() -> dict:
    import importlib

    found = {}
    for core in ("core", "_core"):  # numpy 1 and numpy 2
        for module, name in (
            ("numeric", "_frombuffer"),
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
        ):
            try:
                found[(f"numpy.{core}.{module}", name)] = getattr(
                    importlib.import_module(f"numpy._core.{module}"), name
                )
            except (ImportError, AttributeError):
                pass
    return found


# Constructors a pickle may call while `read_pickle` reads it: containers, and
# numpy's rebuilders of arrays, dtypes and scalars.
SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    **{(m, t.__name__): t for m in ("builtins", "__builtin__") for t in (dict, set, frozenset)},
    ("_codecs", "encode"): __import__("codecs").encode,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    **_numpy_globals(),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Calls only `allowed` globals; a global that `stand_in_ok(module, name)` accepts
    becomes a StandIn class, any other is refused (pickle.UnpicklingError)."""

    def __init__(self, file, *, allowed=None, stand_in_ok=lambda module, name: True, **kwargs):
        super().__init__(file, **kwargs)
        self._allowed = SAFE_GLOBALS if allowed is None else allowed
        self._stand_in_ok = stand_in_ok

    def find_class(self, module, name):
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if self._stand_in_ok(module, name):
            return stand_in(module, name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")


def read_pickle(path, what: str = "checkpoint file"):
    """The object pickled in `path`, read without running code (see RestrictedUnpickler);
    a file that is empty, truncated or not a pickle is a CheckpointError naming it."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f).load()
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    except Exception as e:  # EOFError, UnpicklingError, and what a garbled file raises
        reason = "it is empty" if path.stat().st_size == 0 else f"{type(e).__name__}: {e}"
        raise CheckpointError(f"{path} is not a readable {what} ({reason}).") from None
