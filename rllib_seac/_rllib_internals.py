"""Every use of a private part of RLlib, Ray Tune or Ray, in one place.

Each function wraps one internal behind a small, documented interface: what RLlib
does there and why the public API is not enough. `tests/test_rllib_internals.py`
checks each one so that an RLlib upgrade that changes it fails loudly, naming it.
"""

from __future__ import annotations

# --- Learner: the direct update path (rllib_seac.learner.SEACTorchLearner.update) ---
# RLlib's `Learner.update` wraps every gradient step in a minibatch iterator, Ray
# gauges and ~20 metric logs, a sixth of a 20-sample A2C step. SEAC's direct path
# keeps RLlib's step and counters but does that bookkeeping once per report; these
# are the parts of `Learner.update` it repeats.


def training_data_batch(training_data):
    """The batch of a `TrainingData` (what LearnerGroup sends to a remote learner),
    its object refs resolved: what `Learner.update` does first with it."""
    training_data.solve_refs()
    return training_data.batch


def torch_learner_update(learner, batch: dict):
    """`TorchLearner._update`: one gradient step (forward, losses, gradients,
    postprocessing, optimizer steps) on a {module_id: {column: tensor}} batch;
    returns (fwd_out, loss_per_module, metrics). No public API runs one step
    without the minibatch iterator."""
    return learner._update(batch)


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
