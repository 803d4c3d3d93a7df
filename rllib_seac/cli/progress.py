"""The progress table Tune prints while trials run, and the end summary.

Ray 2.60's default output engine ignores a custom reporter; `train` sets
RAY_AIR_NEW_OUTPUT=0 (as RLlib's own example runner does) so this one is used.
"""

from __future__ import annotations

import time
from pathlib import Path

from ray.tune import ProgressReporter

RETURN = "env_runners/episode_return_mean"
EVAL_RETURN = "evaluation/env_runners/episode_return_mean"
STEPS = "num_env_steps_sampled_lifetime"
NAME_WIDTH = 12
VALUE_WIDTH = 12  # at most, for a setting that varies across trials
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


def trial_name(trial) -> str:
    """The algorithm and the trial's number in its run, e.g. SEAC_00003 (Tune's own
    name adds the env and the run's id, the same in every row)."""
    return f"{trial.trainable_name}_{str(trial.trial_id).rsplit('_', 1)[-1]}"


def _value_text(value) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text[:VALUE_WIDTH]


def varied_settings(trials) -> list[str]:
    """The settings a run's search space gave its trials that differ between them
    (a grid's values, a seed per trial), in the order of the search space."""
    keys: dict[str, set] = {}
    for t in trials:
        for key, value in (t.evaluated_params or {}).items():
            keys.setdefault(key, set()).add(repr(value))
    return [key for key, values in keys.items() if len(values) > 1]


def progress_table(trials, evaluations: dict | None = None) -> str:
    """One row per trial: its short name, the settings that vary across trials, its
    status, iteration, env steps, env steps/s, mean return, the mean return of its
    latest evaluation (`evaluations`: trial id -> return; the column once any trial
    has one), wall time."""
    evaluations = evaluations or {}
    varied = varied_settings(trials)
    widths = {
        key: max(len(key.rsplit("/", 1)[-1]), *(len(_value_text(v)) for v in _values(trials, key)))
        for key in varied
    }
    evaluated = any(t.trial_id in evaluations for t in trials)
    header = f"{'trial':<{NAME_WIDTH}} "
    header += "".join(f"{key.rsplit('/', 1)[-1]:>{widths[key]}} " for key in varied)
    header += f"{'status':<10} {'iter':>6} {'env steps':>11} {'steps/s':>8} {'return':>9} "
    header += f"{'eval':>9} " if evaluated else ""
    header += f"{'time':>8}"
    lines = [header]
    for t in trials:
        params = t.evaluated_params or {}
        cells = "".join(
            f"{_value_text(params[key]) if key in params else '-':>{widths[key]}} "
            for key in varied
        )
        evaluation = evaluations.get(t.trial_id) if evaluated else False
        lines.append(progress_line(trial_name(t), t.status, t.last_result or {}, cells, evaluation))
    return "\n".join(lines)


def _values(trials, key: str) -> list:
    return [t.evaluated_params[key] for t in trials if key in (t.evaluated_params or {})]


def _number(value) -> str:
    # NaN: no episode ended in the iteration (RLlib's PPO with episodes longer than
    # an iteration's steps per env).
    return "-" if value is None or value != value else f"{value:.2f}"


def progress_line(
    name: str, status: str, result: dict, settings: str = "", evaluation=False
) -> str:
    """`evaluation`: False for no eval column, else its value (None: not yet)."""
    steps = result.get(STEPS) or 0
    elapsed = result.get("time_total_s") or 0.0
    line = (
        f"{name[:NAME_WIDTH]:<{NAME_WIDTH}} {settings}{status[:10]:<10} "
        f"{result.get('training_iteration', 0):>6} "
        f"{steps:>11,.0f} {steps / elapsed if elapsed else 0:>8,.0f} "
        f"{_number(flat_get(result, RETURN)):>9} "
    )
    if evaluation is not False:
        line += f"{_number(evaluation):>9} "
    return line + f"{wall_time(elapsed):>8}"


class ReturnReporter(ProgressReporter):
    """Per trial: its short name and varied settings, iteration, env steps, env
    steps/s, mean episode return (and evaluation return), wall time.

    Prints a table every REPORT_INTERVAL_S seconds (with `every_result`: on each new
    result) and once at the end; `header` (e.g. the env's episode limit) above the
    first table; `evaluations`: trial id -> the mean return of its latest evaluation.
    """

    def __init__(self, every_result: bool = False, header: str = "", evaluations=None):
        self._every_result = every_result
        self._header = header
        self._last_time = 0.0
        self._last_seen: dict = {}
        # Trial id -> its latest evaluation's mean return (RunControl fills it in at
        # every result; a table sees only each trial's last one).
        self._evaluations: dict = {} if evaluations is None else evaluations

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
        if self._header:
            print(self._header, flush=True)
            self._header = ""
        for t in trials:
            value = flat_get(t.last_result or {}, EVAL_RETURN)
            if value is not None:
                self._evaluations[t.trial_id] = value
        print(progress_table(trials, self._evaluations), flush=True)


def print_summary(name: str, results, evaluable: bool, control=None) -> None:
    """Each trial's status, best return, last checkpoint and how to evaluate it; with
    the run's `RunControl`, the checkpoints a trial restarted or resumed from, and
    those saved on Ctrl-C."""
    print(f"\n{name}: results in {results.experiment_path}")
    for result in results:
        metrics = result.metrics or {}
        trial_id = metrics.get("trial_id")
        if result.error:
            status = f"ERROR {error_line(result.error)}"
        elif control is not None and control.interrupted and not metrics.get("done"):
            status = f"interrupted at iteration {metrics.get('training_iteration', 0)}"
        else:
            status = "ok"
        best = _best_return(result)
        best_text = "n/a" if best is None else f"{best:.2f}"
        print(
            f"  {Path(result.path).name}: {status}, best episode_return_mean={best_text}, "
            f"env_steps={metrics.get(STEPS, 0):.0f}"
        )
        if control is not None:
            if trial_id in control.interrupt_checkpoints:
                saved = control.interrupt_checkpoints[trial_id]
                print(f"    checkpoint saved on interrupt: {saved}")
            if trial_id in control.resumed_from:
                print(f"    resumed from {control.resumed_from[trial_id]}")
            for n, (reason, checkpoint) in enumerate(control.restarts.get(trial_id, []), 1):
                start = f"from {checkpoint}" if checkpoint else "from the start (no checkpoint)"
                print(f"    restart {n} after {reason}: {start}")
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
