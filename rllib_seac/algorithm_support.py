"""What SEAC's and SEQL's Algorithm classes share: the same-agents check on restore
and the removal of the empty log folder Ray makes outside Tune."""

from __future__ import annotations

import os
import weakref

from rllib_seac.checkpoints import CheckpointError, saved_config_state


def remove_logdir_if_left_empty(algo) -> None:
    """Outside Tune (`config.build_algo()`), Ray's Trainable makes a folder
    ~/ray_results/<timestamp> that nothing writes into: removed at `stop()` (or at
    exit) if still empty. Under Tune it is the trial's folder, left alone."""
    logdir = algo.logdir if algo.trial_id == "default" else None
    algo._logdir_cleanup = weakref.finalize(algo, _remove_if_empty, logdir)


def _remove_if_empty(path) -> None:
    if path:
        try:
            os.rmdir(path)  # only an empty folder
        except OSError:
            pass


def check_same_agents(path, agent_ids: list[str]) -> None:
    """Refuses a checkpoint of other agents: RLlib would load the modules whose ids
    match and silently leave the others untrained."""
    config_state = saved_config_state(path)
    if config_state is None:  # not a whole-algorithm checkpoint on this machine
        return
    saved = list(config_state.get("agent_ids") or [])
    if saved != list(agent_ids):
        raise CheckpointError(
            f"cannot restore {path}: it was trained with {len(saved)} agents ({', '.join(saved)}), "
            f"this SEAC has {len(agent_ids)} ({', '.join(agent_ids)}). A checkpoint restores "
            "only into the same agents: SEAC.from_checkpoint(path) rebuilds its own env."
        )
