"""The progress table Tune prints while trials run, and the end summary.

Ray 2.60's default output engine ignores a custom reporter; `train` sets
RAY_AIR_NEW_OUTPUT=0 (as RLlib's own example runner does) so this one is used.
"""

from __future__ import annotations

import time
from pathlib import Path

from ray.tune import ProgressReporter

RETURN = "env_runners/episode_return_mean"
STEPS = "num_env_steps_sampled_lifetime"
# trial, status, iter, env steps, env steps/s, return, wall time: 82 columns.
HEADER = f"{'trial':<26} {'status':<10} {'iter':>6} {'env steps':>11} {'steps/s':>8} "
HEADER += f"{'return':>9} {'time':>8}"
REPORT_INTERVAL_S = 30


def flat_get(result: dict, key: str):
    """`result["a"]["b"]` for key "a/b" (Tune's trial results are nested)."""
    for part in key.split("/"):
        if not isinstance(result, dict) or part not in result:
            return None
        result = result[part]
    return result


def wall_time(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(name: str, status: str, result: dict) -> str:
    steps = result.get(STEPS) or 0
    elapsed = result.get("time_total_s") or 0.0
    ret = flat_get(result, RETURN)
    return (
        f"{name[:26]:<26} {status[:10]:<10} {result.get('training_iteration', 0):>6} "
        f"{steps:>11,.0f} {steps / elapsed if elapsed else 0:>8,.0f} "
        f"{'-' if ret is None else f'{ret:.2f}':>9} {wall_time(elapsed):>8}"
    )


class ReturnReporter(ProgressReporter):
    """Per trial: iteration, env steps, env steps/s, mean episode return, wall time.

    Prints a table every REPORT_INTERVAL_S seconds (with `every_result`: on each new
    result) and once at the end.
    """

    def __init__(self, every_result: bool = False):
        self._every_result = every_result
        self._last_time = 0.0
        self._last_seen: dict = {}

    def should_report(self, trials, done: bool = False) -> bool:
        seen = {
            t.trial_id: (t.status, (t.last_result or {}).get("training_iteration")) for t in trials
        }
        changed = seen != self._last_seen
        due = self._every_result or time.monotonic() - self._last_time >= REPORT_INTERVAL_S
        if done or (changed and due):
            self._last_seen = seen
            self._last_time = time.monotonic()
            return True
        return False

    def report(self, trials, done: bool, *sys_info) -> None:
        lines = [HEADER]
        lines += [progress_line(str(t), t.status, t.last_result or {}) for t in trials]
        print("\n".join(lines), flush=True)


def print_summary(name: str, results, evaluable: bool) -> None:
    """Each trial's status, best return, last checkpoint and how to evaluate it."""
    print(f"\n{name}: results in {results.experiment_path}")
    for result in results:
        metrics = result.metrics or {}
        status = f"ERROR {error_line(result.error)}" if result.error else "ok"
        best = _best_return(result)
        best_text = "n/a" if best is None else f"{best:.2f}"
        print(
            f"  {Path(result.path).name}: {status}, best episode_return_mean={best_text}, "
            f"env_steps={metrics.get(STEPS, 0):.0f}"
        )
        if result.checkpoint is not None:
            print(f"    last checkpoint: {result.checkpoint.path}")
            if evaluable:
                print(f"    evaluate: rllib evaluate {result.checkpoint.path}")


def _best_return(result) -> float | None:
    frame = result.metrics_dataframe
    if frame is None or RETURN not in frame:
        return None
    best = frame[RETURN].max()
    return None if best != best else float(best)  # NaN: no episode ended yet


def error_line(error: BaseException) -> str:
    """The error a trial stopped on, as one line: Ray wraps a remote error, with its
    traceback, once per actor it passed through."""
    from ray.exceptions import RayTaskError

    while isinstance(error, RayTaskError) and error.cause is not None:
        error = error.cause
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
