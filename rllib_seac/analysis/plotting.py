"""Figures from Tune's result files: the paper's learning curves (Figs. 3 to 5), SEAC's
importance weights (Fig. 6), best vs worst agent (Fig. 7), final return against
lambda (after Fig. 10) and the policies' entropy.

A run directory is any directory under which Tune wrote trial directories (each with
params.json and result.json, or progress.csv). The trials of one label (algorithm,
or a setting given by `label_by`) are the seeds: their curves are averaged on a
common grid of env steps, with one standard deviation shaded.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rllib_seac.analysis.labels import env_label, trial_algorithm

KINDS = ("returns", "is-weights", "agents", "lambda", "entropy")
STEPS = "num_env_steps_sampled_lifetime"
RETURN = "env_runners/episode_return_mean"
AGENT_RETURN = "env_runners/agent_episode_returns_mean/"
IS_WEIGHT = "is_weight_{}"  # learners/<module>/is_weight_{mean,min,max,q05,q95}
ENTROPY = "entropy"  # learners/<module>/entropy
# "Final" return: the mean over the last tenth of a trial's env steps.
FINAL_FRACTION = 0.1
FIGSIZE = (7.0, 4.5)  # inches; at DPI, a 700 x 450 PNG
DPI = 100
VARIANT_ORDER = ("SEAC", "IAC", "SNAC", "SEQL", "IQL", "SE-PPO", "IPPO")
# A function's repr in params.json ("<function f at 0x7f...>") differs per process.
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
STEPS_LABEL = "environment steps"
LONG_LABEL = 45  # characters: a legend with a longer label goes under the axes


class PlotError(ValueError):
    """Results that cannot be plotted as asked; the message says why."""


class NoResultsError(PlotError):
    """No results to plot (of the kind asked for); the message says where and why."""


class MixedSettingsError(PlotError):
    """Trials of one label that differ in a setting, so they are not seeds of one run."""


# Settings in which the seeds of one label may differ.
SEED_KEYS = ("seed",)


@dataclass
class Trial:
    path: Path
    settings: dict  # the trial's full config where result.json has it, else its params
    rows: list[dict]  # one flattened result ("a/b" keys) per iteration
    given: tuple = ()  # the settings the run gave this trial (params.json), flattened
    # Tune's name for the trial, which starts with the algorithm's: the directory's, or
    # for a campaign record (benchmarks/campaign.py) the name its trial.json keeps.
    tune_name: str = ""

    @property
    def env(self) -> str:
        return env_label(self.settings.get("env"))

    @property
    def algorithm(self) -> str:
        """SEAC, IAC, SNAC, SEQL, IQL, IPPO, "PPO (shared policy)", APPO, ..."""
        return trial_algorithm(self.settings, self.tune_name or self.path.name)

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(env steps, values) of the iterations that report `key` (episode metrics
        are missing until the first episode ends)."""
        points = [
            (row[STEPS], row[key])
            for row in self.rows
            if isinstance(row.get(key), (int, float)) and np.isfinite(row[key])
        ]
        steps, values = zip(*points) if points else ((), ())
        return np.asarray(steps, float), np.asarray(values, float)

    def keys_under(self, prefix: str) -> list[str]:
        return sorted({k[len(prefix) :] for row in self.rows for k in row if k.startswith(prefix)})


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def read_trial(path: Path) -> Trial | None:
    """A trial directory's results, or None if it has none yet."""
    settings = {}
    if (path / "params.json").is_file():
        settings = json.loads((path / "params.json").read_text())
    given = tuple(flatten(settings))
    if (path / "result.json").is_file():
        results = [json.loads(line) for line in (path / "result.json").open() if line.strip()]
        # Each result carries the trial's full config, defaults included.
        if results:
            settings = {**results[0].get("config", {}), **settings}
        rows = [flatten({k: v for k, v in r.items() if k != "config"}) for r in results]
    else:
        with (path / "progress.csv").open(newline="") as f:
            rows = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
    rows = [row for row in rows if isinstance(row.get(STEPS), (int, float))]
    record = path / "trial.json"
    tune_name = json.loads(record.read_text()).get("tune_trial", "") if record.is_file() else ""
    return Trial(path, flatten(settings), rows, given, tune_name) if rows else None


def load_trials(run_dirs) -> list[Trial]:
    """Every trial with results under the run directories."""
    trials = {}
    for run_dir in map(Path, run_dirs):
        if not run_dir.is_dir():
            raise NoResultsError(f"no such run directory: {run_dir}")
        paths = {p.parent for name in ("result.json", "progress.csv") for p in run_dir.rglob(name)}
        found = [t for t in map(read_trial, sorted(paths)) if t]
        if not found:
            raise NoResultsError(
                f"no results in {run_dir}: no trial directory under it has a non-empty "
                "result.json or progress.csv (is it a Tune run's storage directory?)"
            )
        trials.update((t.path.resolve(), t) for t in found)
    return list(trials.values())


def trial_label(trial: Trial, label_by: str | None = None) -> str:
    """The algorithm's name; or the setting `label_by` names; or, for several (keys
    joined by commas), the algorithm's name and those of them the trial has."""
    if label_by is None:
        return trial.algorithm
    keys = [key.strip() for key in label_by.split(",")]
    if len(keys) == 1:
        return f"{keys[0]}={_setting(trial.settings.get(keys[0], 'unset'))}"
    given = [f"{key}={_setting(trial.settings[key])}" for key in keys if key in trial.settings]
    return ": ".join([trial.algorithm, ", ".join(given)] if given else [trial.algorithm])


def _setting(value) -> str:
    # 1/3 as 0.3333, not 0.3333333333333333; 0.0003 and 1.0 as they are.
    return f"{value:.4g}" if isinstance(value, float) and round(value, 4) != value else str(value)


def group_trials(trials: list[Trial], label_by: str | None = None) -> dict[str, list[Trial]]:
    """Label -> its trials, SEAC, IAC, SNAC first; the env joins the label when the
    trials span several envs."""
    several_envs = len({t.env for t in trials}) > 1
    groups: dict[str, list[Trial]] = {}
    for t in trials:
        label = trial_label(t, label_by)
        groups.setdefault(f"{label}, {t.env}" if several_envs else label, []).append(t)

    def order(label):
        head = label.split(",")[0]
        return (VARIANT_ORDER.index(head) if head in VARIANT_ORDER else len(VARIANT_ORDER), label)

    if label_by is None:
        for label, group in groups.items():
            check_seeds_of_one_setting(label, group)
    return {label: groups[label] for label in sorted(groups, key=order)}


def check_seeds_of_one_setting(label: str, group: list[Trial]) -> None:
    """Refuses to average trials as seeds when a setting their runs gave differs."""
    keys = sorted({k for t in group for k in t.given} - set(SEED_KEYS))
    for key in keys:
        values: dict[str, int] = {}
        for t in group:
            value = ADDRESS.sub("", repr(t.settings.get(key, "unset")))
            values[value] = values.get(value, 0) + 1
        if len(values) > 1:
            counts = ", ".join(f"{v} in {n}" for v, n in values.items())
            raise MixedSettingsError(
                f"the {label} trials differ in {key} ({counts} trial(s)), so they are not "
                f"seeds of one setting: give --label-by {key} for a line per value"
            )


def final_value(steps: np.ndarray, values: np.ndarray) -> float:
    """The mean of `values` over the last FINAL_FRACTION of the env steps."""
    return float(values[steps >= steps[-1] * (1 - FINAL_FRACTION)].mean())


def final_return(trial: Trial) -> float | None:
    steps, values = trial.series(RETURN)
    return final_value(steps, values) if len(steps) else None


def on_common_grid(curves: list[tuple[np.ndarray, np.ndarray]], label: str):
    """(grid, values [curve, grid]): the curves interpolated on their env steps within
    the range every one of them covers (the same steps when their runs match)."""
    start, end = max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves)
    if start > end:
        raise NoResultsError(f"the {label} trials share no range of env steps to average over")
    grid = np.unique(np.concatenate([x[(x >= start) & (x <= end)] for x, _ in curves]))
    return grid, np.stack([np.interp(grid, x, y) for x, y in curves])


def _mean_std_line(ax, curves, label, **style):
    """The mean ± std over the env steps all curves cover; where runs are longer than
    the shortest, each goes on as a thin line of its own, and the legend says where
    the mean stops."""
    grid, ys = on_common_grid(curves, label)
    mean, std = ys.mean(0), ys.std(0)
    # A single common step (a one-iteration run) is drawn as a point.
    marker = "o" if len(grid) == 1 else None
    longer = [(x, y) for x, y in curves if x[-1] > grid[-1]]
    cut = f", mean to {grid[-1]:,.0f} steps (shortest run)" if longer else ""
    (line,) = ax.plot(grid, mean, label=f"{label} (n={len(curves)}{cut})", marker=marker, **style)
    ax.fill_between(grid, mean - std, mean + std, alpha=0.2, color=line.get_color())
    for x, y in longer:
        rest = x >= grid[-1]
        ax.plot(x[rest], y[rest], color=line.get_color(), linewidth=0.8, alpha=0.6)
    return line


def _plot_returns(ax, trials, label_by):
    drawn = 0
    for label, group in group_trials(trials, label_by).items():
        curves = [c for c in (t.series(RETURN) for t in group) if len(c[0])]
        if curves:
            _mean_std_line(ax, curves, label)
            drawn += 1
    if not drawn:
        raise NoResultsError(f"no episode returns ({RETURN}): no episode ended in these trials")
    ax.set_ylabel("episode return (sum over agents)")
    return "Training returns (mean ± std over seeds)"


def mean_entropy(trial: Trial) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, the policy entropy averaged over the trial's modules) of the
    iterations where every module reports one."""
    keys = [f"learners/{k}" for k in trial.keys_under("learners/") if k.endswith(f"/{ENTROPY}")]
    points = [
        (row[STEPS], np.mean([row[k] for k in keys]))
        for row in trial.rows
        if keys and all(isinstance(row.get(k), (int, float)) and np.isfinite(row[k]) for k in keys)
    ]
    steps, values = zip(*points) if points else ((), ())
    return np.asarray(steps, float), np.asarray(values, float)


def _plot_entropy(ax, trials, label_by):
    drawn = 0
    for label, group in group_trials(trials, label_by).items():
        curves = [c for c in map(mean_entropy, group) if len(c[0])]
        if curves:
            _mean_std_line(ax, curves, label)
            drawn += 1
    if not drawn:
        raise NoResultsError(
            f"no policy entropy (learners/<module>/{ENTROPY}) in these trials: their "
            "learners do not report one"
        )
    ax.set_ylabel("policy entropy (mean over agents)")
    return "Policy entropy (mean over agents; mean ± std over seeds)"


def _plot_is_weights(ax, trials, label_by):
    drawn = 0
    for label, group in group_trials(trials, label_by).items():
        modules = sorted(
            {k.split("/")[1] for t in group for k in t.rows[-1] if k.endswith("/is_weight_mean")}
        )
        for mid in modules:
            stats, ends = {}, set()
            for stat in ("mean", "q05", "q95"):
                curves = [t.series(f"learners/{mid}/{IS_WEIGHT.format(stat)}") for t in group]
                curves = [c for c in curves if len(c[0])]
                ends |= {x[-1] for x, _ in curves}
                stats[stat] = on_common_grid(curves, label)
            grid, means = stats["mean"]
            # Averaged over the steps all runs cover: say so when some run goes further.
            cut = f", to {grid[-1]:,.0f} steps (shortest run)" if len(ends) > 1 else ""
            (line,) = ax.plot(grid, means.mean(0), label=f"{label} {mid} (n={len(means)}{cut})")
            # The band holds the middle 90 % of an iteration's weights (mean over seeds).
            low, high = stats["q05"][1].mean(0), stats["q95"][1].mean(0)
            ax.fill_between(stats["q05"][0], low, high, alpha=0.15, color=line.get_color())
            drawn += 1
    if not drawn:
        raise NoResultsError(
            "no importance weights in these trials: only SEAC (lambda > 0, no shared "
            "policy) records them (learners/<agent>/is_weight_mean)"
        )
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    # Ratios: a log scale shows 0.5 and 2 alike.
    ax.set_yscale("log")
    ax.set_ylabel("importance weight π_i(a|o) / π_k(a|o)")
    return "SEAC importance weights (mean, 5th–95th percentile band per agent)"


def _plot_agents(ax, trials, label_by):
    drawn = 0
    for label, group in group_trials(trials, label_by).items():
        best, worst = [], []
        for t in group:
            curves = [t.series(AGENT_RETURN + aid) for aid in t.keys_under(AGENT_RETURN)]
            curves = [c for c in curves if len(c[0])]
            if curves:
                # Ranked by final return, as the paper's Fig. 7 compares them.
                ranked = sorted(curves, key=lambda c: final_value(*c))
                worst.append(ranked[0])
                best.append(ranked[-1])
        if best:
            line = _mean_std_line(ax, best, f"{label} best agent")
            _mean_std_line(
                ax, worst, f"{label} worst agent", color=line.get_color(), linestyle="--"
            )
            drawn += 1
    if not drawn:
        raise NoResultsError(
            f"no per-agent returns ({AGENT_RETURN}<agent>): no episode ended in these trials"
        )
    ax.set_ylabel("agent's episode return")
    return "Best vs worst agent (mean ± std over seeds)"


def _plot_lambda(ax, trials, label_by):
    by_env: dict[str, dict[float, list[float]]] = {}
    for t in trials:
        final = final_return(t)
        if t.algorithm not in ("SEAC", "IAC") or final is None:
            continue
        lam = float(t.settings.get("seac_lambda", 1.0))
        by_env.setdefault(t.env, {}).setdefault(lam, []).append(final)
    if not by_env:
        raise NoResultsError(
            "no SEAC or IAC trial with episode returns: `--kind lambda` plots the final "
            "return of each seac_lambda (SNAC trials are left out)"
        )
    for env, finals in sorted(by_env.items()):
        lams = sorted(finals)
        counts = sorted({len(v) for v in finals.values()})
        seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        ax.errorbar(
            lams,
            [np.mean(finals[lam]) for lam in lams],
            yerr=[np.std(finals[lam]) for lam in lams],
            marker="o",
            capsize=4,
            label=f"{env} (n={seeds} per λ)",
        )
    ax.set_xlabel("λ (weight of other agents' experience; 0 is IAC)")
    ax.xaxis.set_major_formatter("{x:g}")
    ax.set_ylabel(f"final return (last {FINAL_FRACTION:.0%} of steps)")
    return "Final training return against λ (mean ± std over seeds)"


PLOTTERS = {
    "returns": _plot_returns,
    "is-weights": _plot_is_weights,
    "agents": _plot_agents,
    "lambda": _plot_lambda,
    "entropy": _plot_entropy,
}


def plot_trials(
    trials: list[Trial],
    out,
    kind: str = "returns",
    label_by: str | None = None,
    title: str | None = None,
) -> Path:
    """Draws one figure of `kind` (see KINDS) from `trials` to the PNG `out`."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
    from matplotlib.ticker import EngFormatter

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="tight")
    ax = fig.add_subplot()
    ax.set_xlabel(STEPS_LABEL)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 200k, 1M
    what = PLOTTERS[kind](ax, trials, label_by)
    envs = ", ".join(sorted({t.env for t in trials}))
    ax.set_title(title or f"{what}\n{envs}", fontsize=10)
    ax.grid(alpha=0.3)
    if max(len(label) for label in ax.get_legend_handles_labels()[1]) > LONG_LABEL:
        # Long labels (several settings) would cover the curves: under the axes.
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    else:
        ax.legend(fontsize=8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    return out


def plot(run_dirs, out, kind: str = "returns", label_by: str | None = None, title=None) -> Path:
    """`plot_trials` on every trial under `run_dirs`."""
    return plot_trials(load_trials(run_dirs), out, kind, label_by, title)
