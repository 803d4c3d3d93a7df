"""What `rllib train` adds to Tune's run: a checkpoint of each running trial on
Ctrl-C, the stop criteria given to a resumed run, and a record of each trial's
restarts.
"""

from __future__ import annotations

import os
import signal
import threading

from ray.tune import Callback

from rllib_seac._rllib_internals import set_trial_stop

# The result key that makes Tune save a trial's checkpoint after this result.
SHOULD_CHECKPOINT = "should_checkpoint"
RUNNING = "RUNNING"


class RunControl(Callback):
    """On the first Ctrl-C, asks each running trial for a checkpoint at its next
    result, then ends the run as Tune does on Ctrl-C (trials stay resumable). A second
    Ctrl-C ends the run at once, without those checkpoints.

    With `stop` (a resumed run), gives every trial these stop criteria: Tune would
    keep those saved with the run.

    Records each trial's restarts after a failure (with the checkpoint it restarts
    from), the checkpoint each resumed trial continues from, and each interrupt
    checkpoint, for the end summary.
    """

    def __init__(self, stop: dict | None = None, evaluations: dict | None = None):
        self.stop = stop
        # Trial id -> the mean return of its latest evaluation, for the progress table.
        self.evaluations = {} if evaluations is None else evaluations
        self.interrupted = False
        self.restarts: dict[str, list[tuple[str, str | None]]] = {}  # id -> (error, ckpt)
        self.resumed_from: dict[str, str] = {}
        self.interrupt_checkpoints: dict[str, str] = {}
        self._waiting: set[str] | None = None
        self._tune_handler = None
        self._ended = False

    def __getstate__(self):
        # Tune pickles its run config (callbacks included) with the run's state.
        state = self.__dict__.copy()
        state["_tune_handler"] = None
        return state

    def setup(self, **info) -> None:
        # Tune has installed its own SIGINT handler by now; ours goes in front of it.
        if threading.current_thread() is threading.main_thread():
            self._tune_handler = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        if self.interrupted:  # the second Ctrl-C: Tune's own handling, now
            self._end_run()
            return
        self.interrupted = True
        print(
            "\nrllib: interrupted: saving a checkpoint of each running trial after its "
            "current iteration (Ctrl-C again to stop now without it)",
            flush=True,
        )

    def _end_run(self) -> None:
        """Ends the run as Ctrl-C ends a Tune run: its state saved, trials resumable."""
        if self._ended or self._tune_handler is None:
            return
        self._ended = True
        signal.signal(signal.SIGINT, self._tune_handler)
        os.kill(os.getpid(), signal.SIGINT)

    def on_step_begin(self, iteration, trials, **info) -> None:
        if self.stop is not None:
            for trial in trials:
                set_trial_stop(trial, self.stop)
        if not self.interrupted or self._ended:
            return
        running = {t.trial_id for t in trials if t.status == RUNNING}
        if self._waiting is None:
            self._waiting = running
        self._waiting &= running
        if not self._waiting:
            self._end_run()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        evaluated = (result.get("evaluation") or {}).get("env_runners") or {}
        if "episode_return_mean" in evaluated:
            self.evaluations[trial.trial_id] = evaluated["episode_return_mean"]
        if self.interrupted and self._waiting and trial.trial_id in self._waiting:
            result[SHOULD_CHECKPOINT] = True

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info) -> None:
        if self.interrupted and self._waiting and trial.trial_id in self._waiting:
            self.interrupt_checkpoints[trial.trial_id] = checkpoint.path
            self._waiting.discard(trial.trial_id)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        # A trial that starts with a checkpoint is a resumed one.
        if trial.checkpoint is not None and trial.trial_id not in self.restarts:
            self.resumed_from.setdefault(trial.trial_id, trial.checkpoint.path)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        from rllib_seac.cli.progress import error_line

        checkpoint = trial.checkpoint.path if trial.checkpoint is not None else None
        try:
            error = trial.get_pickled_error()
        except Exception:  # an error file Tune could not write or read back
            error = None
        reason = error_line(error) if error is not None else "a failure"
        self.restarts.setdefault(trial.trial_id, []).append((reason, checkpoint))

    def on_experiment_end(self, trials, **info) -> None:
        if not self._ended and self._tune_handler is not None:
            signal.signal(signal.SIGINT, self._tune_handler)
