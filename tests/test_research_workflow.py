"""`rllib evaluate`, `rllib render` and `rllib plot` on a tiny real checkpoint and Tune run."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from ray import tune

import rllib_seac
from rllib_seac import SEACConfig, make_env
from rllib_seac.analysis.labels import variant_name
from rllib_seac.analysis.plotting import (
    DPI,
    FIGSIZE,
    KINDS,
    _plot_returns,
    flatten,
    group_trials,
    load_trials,
    mean_entropy,
)
from rllib_seac.analysis.rendering import use_headless_gl
from rllib_seac.cli import main
from tests.envs_for_tests import SpacesEnv

LBF = "Foraging-8x8-2p-2f-v3"
LBF_CONFIG = {"max_episode_steps": 25}
UPDATES = 5  # per iteration: 100 env steps


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    config = (
        SEACConfig()
        .environment(LBF, env_config=LBF_CONFIG)
        .training(updates_per_iteration=UPDATES)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        algo.train()
        algo.train()
        return algo.save_to_path(str(tmp_path_factory.mktemp("checkpoint")))
    finally:
        algo.stop()


@pytest.fixture(scope="module")
def tune_run(tmp_path_factory):
    """A Tune run of two trials, SEAC and IAC, two iterations each."""
    rllib_seac.register([LBF])
    tuner = tune.Tuner(
        "SEAC",
        param_space={
            "env": LBF,
            "env_config": LBF_CONFIG,
            "updates_per_iteration": UPDATES,
            "seac_lambda": tune.grid_search([0.0, 1.0]),
            "seed": 0,
        },
        run_config=tune.RunConfig(
            name="run",
            storage_path=str(tmp_path_factory.mktemp("tune")),
            stop={"training_iteration": 2},
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
            verbose=0,
        ),
    )
    results = tuner.fit()
    assert results.num_errors == 0
    return results


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- evaluate ------------------------------------------------------------------


def test_evaluate_prints_table_1_format(checkpoint, capsys):
    code, out, _ = run_cli(capsys, "evaluate", checkpoint, "--episodes", 3, "--seed", 0)
    assert code == 0
    assert out.startswith(f"SEAC on {LBF}, 3 episodes with stochastic policies")
    assert re.search(r"^total return +\d+\.\d\d ± \d+\.\d\d$", out, re.M)
    for agent in ("agent_0", "agent_1"):
        assert re.search(rf"^{agent} +\d+\.\d\d ± \d+\.\d\d$", out, re.M)


def test_evaluate_json_sums_agents_and_repeats_with_a_seed(checkpoint, capsys):
    runs = []
    for _ in range(2):
        code, out, _ = run_cli(
            capsys, "evaluate", checkpoint, "--episodes", 3, "--seed", 7, "--json"
        )
        assert code == 0
        runs.append(json.loads(out))
    first, second = runs
    assert first["episode_total_returns"] == second["episode_total_returns"]
    assert first["episodes"] == 3 and first["algorithm"] == "SEAC" and first["env"] == LBF
    totals = first["episode_total_returns"]
    assert first["total_return"]["mean"] == pytest.approx(np.mean(totals))
    assert first["total_return"]["std"] == pytest.approx(np.std(totals))
    agent_means = sum(a["mean"] for a in first["agent_returns"].values())
    assert agent_means == pytest.approx(np.mean(totals))


def test_evaluate_a_tune_trial_uses_its_latest_checkpoint(tune_run, capsys):
    trial_dir = tune_run[0].path
    code, out, _ = run_cli(capsys, "evaluate", trial_dir, "--episodes", 1, "--json")
    assert code == 0
    assert json.loads(out)["checkpoint"] == f"{trial_dir}/checkpoint_000000"


# --- render --------------------------------------------------------------------


@pytest.mark.parametrize(
    "env, config",
    [("rware-tiny-2ag-v2", {}), (LBF, LBF_CONFIG), ("predator-prey-sparse", {})],
)
def test_envs_give_rgb_array_frames_headless(env, config):
    use_headless_gl()
    instance = make_env(env, {**config, "render_mode": "rgb_array"})
    try:
        instance.reset(seed=0)
        frame = instance.render()
    finally:
        instance.close()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[0] > 100 and frame.shape[1] > 100


def test_render_writes_an_animated_gif(checkpoint, tmp_path, capsys):
    gif = tmp_path / "run.gif"
    args = ["render", checkpoint, "--out", gif, "--max-steps", 6, "--seed", 0]
    code, out, _ = run_cli(capsys, *args)
    assert code == 0
    # The reset's frame and one per step; GIF merges repeated frames.
    assert f"{gif}: 7 frames, 1 episode(s)" in out
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames > 1
        assert image.size[0] > 100 and image.size[1] > 100


def test_render_an_env_that_cannot_render(tmp_path, capsys):
    algo = SEACConfig().environment(SpacesEnv).training(updates_per_iteration=1).build_algo()
    try:
        path = algo.save_to_path(str(tmp_path / "checkpoint"))
    finally:
        algo.stop()
    # The env is a class: made from the module the user imports.
    args = ["render", path, "--out", tmp_path / "run.gif", "--import", "tests.envs_for_tests"]
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert err.strip() == (
        "rllib: error: env SpacesEnv cannot render: with render_mode='rgb_array' its "
        "render() returned NoneType, not an image."
    )
    assert not (tmp_path / "run.gif").exists()


# --- plot ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_plot_each_kind(tune_run, tmp_path, capsys, kind):
    png = tmp_path / f"{kind}.png"
    code, out, _ = run_cli(capsys, "plot", tune_run.experiment_path, "--out", png, "--kind", kind)
    assert code == 0 and out.strip() == f"wrote {png}"
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.size == (FIGSIZE[0] * DPI, FIGSIZE[1] * DPI)


def test_trials_are_labelled_by_algorithm_or_a_setting(tune_run):
    trials = load_trials([tune_run.experiment_path])
    assert sorted(group_trials(trials)) == ["IAC", "SEAC"]
    assert sorted(group_trials(trials, "seac_lambda")) == ["seac_lambda=0.0", "seac_lambda=1.0"]
    # Settings the trial was not given come from its full config in result.json.
    assert list(group_trials(trials, "lr")) == ["lr=0.0003"]
    # Several settings: the algorithm, and the settings each trial has.
    assert sorted(group_trials(trials, "seac_lambda, lr, no_such_setting")) == [
        "IAC: seac_lambda=0.0, lr=0.0003",
        "SEAC: seac_lambda=1.0, lr=0.0003",
    ]


def test_a_label_shows_a_long_float_to_four_digits(tune_run, tmp_path):
    seac = next(r for r in tune_run if r.config["seac_lambda"] == 1.0)
    copy_trial(seac.path, tmp_path / "run" / "third", params={"seac_lambda": 1 / 3})
    (trial,) = load_trials([tmp_path / "run"])
    assert list(group_trials([trial], "seac_lambda")) == ["seac_lambda=0.3333"]


AGENTS = ("agent_0", "agent_1")


def test_entropy_is_the_mean_over_a_trials_agents(tune_run):
    seac = next(r for r in tune_run if r.config["seac_lambda"] == 1.0)
    results = [json.loads(line) for line in Path(seac.path, "result.json").open()]
    (trial,) = load_trials([seac.path])
    steps, entropy = mean_entropy(trial)
    assert list(steps) == [r["num_env_steps_sampled_lifetime"] for r in results]
    by_hand = [np.mean([r["learners"][a]["entropy"] for a in AGENTS]) for r in results]
    assert list(entropy) == pytest.approx(by_hand)


def copy_trial(trial_path, to, *, params=None, iterations=None):
    """A copy of a real trial directory with its params.json changed, and its
    result.json cut to its first `iterations` lines."""
    shutil.copytree(trial_path, to)
    lines = (to / "result.json").read_text().splitlines()[:iterations]
    (to / "result.json").write_text("\n".join(lines) + "\n")
    given = json.loads((to / "params.json").read_text())
    (to / "params.json").write_text(json.dumps({**given, **(params or {})}))
    return to


def test_runs_of_different_lengths_are_each_drawn_over_their_own_range(tune_run, tmp_path):
    from matplotlib.figure import Figure

    seac = next(r for r in tune_run if r.config["seac_lambda"] == 1.0)
    copy_trial(seac.path, tmp_path / "run" / "long", params={"seed": 0})
    copy_trial(seac.path, tmp_path / "run" / "short", params={"seed": 1}, iterations=1)
    trials = load_trials([tmp_path / "run"])
    ax = Figure().add_subplot()
    _plot_returns(ax, trials, None)
    mean, rest = ax.get_lines()
    # The mean stops where the short run ends, and says so; the long run goes on.
    assert mean.get_label() == "SEAC (n=2, mean to 100 steps (shortest run))"
    assert list(mean.get_xdata()) == [100]
    assert list(rest.get_xdata()) == [100, 200]


def test_trials_that_differ_in_a_setting_are_not_averaged_as_seeds(tune_run, tmp_path, capsys):
    seac = next(r for r in tune_run if r.config["seac_lambda"] == 1.0)
    copy_trial(seac.path, tmp_path / "run" / "a", params={"seed": 0})
    copy_trial(seac.path, tmp_path / "run" / "b", params={"seed": 1, "lr": 0.001})
    code, _, err = run_cli(capsys, "plot", tmp_path / "run", "--out", tmp_path / "f.png")
    assert code == 2
    assert err == (
        "rllib: error: the SEAC trials differ in lr (0.0003 in 1, 0.001 in 1 trial(s)), so "
        "they are not seeds of one setting: give --label-by lr for a line per value\n"
    )
    args = ["plot", tmp_path / "run", "--out", tmp_path / "f.png", "--label-by", "lr"]
    assert run_cli(capsys, *args)[0] == 0


def test_variant_names():
    assert variant_name({}) == "SEAC"
    assert variant_name({"seac_lambda": 0.0}) == "IAC"
    assert variant_name({"seac_lambda": 0.5}) == "SEAC"
    assert variant_name({"shared_policy": True, "seac_lambda": 0.0}) == "SNAC"


def test_results_hold_the_research_metrics(tune_run):
    """What TensorBoard shows through Tune's loggers, for each agent."""
    seac = next(r for r in tune_run if r.config["seac_lambda"] == 1.0)
    last = flatten(json.loads(Path(seac.path, "result.json").read_text().splitlines()[-1]))
    for agent in ("agent_0", "agent_1"):
        assert f"env_runners/agent_episode_returns_mean/{agent}" in last
        for stat in (
            "policy_loss",
            "value_loss",
            "entropy",
            "is_weight_mean",
            "is_weight_min",
            "is_weight_max",
        ):
            assert np.isfinite(last[f"learners/{agent}/{stat}"]), stat
    assert (
        last["env_runners/num_env_steps_sampled_lifetime_throughput/throughput_since_last_reduce"]
        > 0
    )


# --- bad input -----------------------------------------------------------------


def test_plot_is_weights_of_iac_only(tune_run, tmp_path, capsys):
    iac = next(r for r in tune_run if r.config["seac_lambda"] == 0.0)
    code, _, err = run_cli(
        capsys, "plot", iac.path, "--out", tmp_path / "w.png", "--kind", "is-weights"
    )
    assert code == 2
    assert "no importance weights in these trials" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "no/such/checkpoint"], "no such checkpoint: "),
        (["render", "no/such/checkpoint", "--out", "run.gif"], "no such checkpoint: "),
        (["evaluate", "{empty}"], "is not an RLlib checkpoint (no rllib_checkpoint.json in it)"),
        (["evaluate", "{empty}", "--episodes", "0"], "--episodes must be >= 1, got 0."),
        (["render", "{empty}", "--out", "run.png"], "--out must name a .gif file"),
        (["plot", "{empty}", "--out", "fig.png"], "no results in "),
        (["plot", "no/such/dir", "--out", "fig.png"], "no such run directory: no/such/dir"),
        (["plot", "{empty}", "--out", "fig.jpg"], "--out must end in .png, .pdf, .svg"),
        # Checked before the checkpoint is read and before any frame is rendered.
        (["render", "{empty}", "--out", "{file}/run.gif"], "cannot write {file}/run.gif"),
        (["render", "{empty}", "--out", "/proc/run.gif"], "cannot write /proc/run.gif"),
        (["render", "{empty}", "--out", "{empty}.gif"], "{empty}.gif: it is a directory"),
        (["evaluate", "{empty}", "--seed", "-1"], "--seed must be >= 0, got -1."),
        (["render", "{empty}", "--out", "r.gif", "--seed", "-1"], "--seed must be >= 0, got -1."),
    ],
)
def test_bad_input_exits_2_with_one_message(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.gif").mkdir()
    (tmp_path / "file").write_text("")
    paths = {"empty": tmp_path / "empty", "file": tmp_path / "file"}
    message = message.format(**paths)
    code, out, err = run_cli(capsys, *[a.format(**paths) for a in args])
    assert code == 2 and not out
    assert message in err
    assert err.count("rllib: error:") == 1 and len(err.strip().splitlines()) == 1
