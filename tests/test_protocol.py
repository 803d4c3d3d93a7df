"""The paper's protocol over kept snapshots: best per seed, then mean ± std over seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rllib_seac import SEACConfig
from rllib_seac.analysis import evaluation, protocol

LBF = "Foraging-8x8-2p-2f-v3"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Two trials (SEAC and IAC, seed 0) as Tune leaves them: params.json and two
    checkpoint_* snapshots each."""
    run = tmp_path_factory.mktemp("run")
    for lam in (1.0, 0.0):
        trial = run / f"SEAC_{LBF}_{int(lam)}"
        trial.mkdir()
        params = {"env": LBF, "env_config": {"max_episode_steps": 25}, "seac_lambda": lam}
        (trial / "params.json").write_text(json.dumps({**params, "seed": 0}))
        config = (
            SEACConfig()
            .environment(LBF, env_config={"max_episode_steps": 25})
            .training(seac_lambda=lam, updates_per_iteration=5)
            .debugging(seed=0)
        )
        algo = config.build_algo()
        try:
            for i in range(2):
                algo.train()
                algo.save_to_path(str(trial / f"checkpoint_{i:06d}"))
        finally:
            algo.stop()
    return run


def test_each_snapshot_is_evaluated_and_the_best_per_seed_counts(run_dir):
    trials = [protocol.evaluate_trial(t, episodes=4) for t in protocol.find_trials(run_dir)]
    assert sorted(t.algorithm for t in trials) == ["IAC", "SEAC"]
    for trial in trials:
        assert [e["snapshot"] for e in trial.evaluations] == [
            "checkpoint_000000",
            "checkpoint_000001",
        ]
        means = [
            np.mean(evaluation.evaluate(run_dir / trial.trial / e["snapshot"], 4, 0).total_returns)
            for e in trial.evaluations
        ]
        assert [e["mean"] for e in trial.evaluations] == pytest.approx(means)
        assert trial.best == pytest.approx(max(means))
        assert trial.last == pytest.approx(np.mean(means))
    text = protocol.table(trials)
    assert text.splitlines()[2].startswith("| IAC | 1 | 2 | ")


def test_snapshots_evaluated_before_are_read_not_run_again(run_dir, monkeypatch):
    first = [protocol.evaluate_trial(t, episodes=4) for t in protocol.find_trials(run_dir)]

    def refuse(*args, **kwargs):
        raise AssertionError("evaluated again")

    monkeypatch.setattr(evaluation, "evaluate", refuse)
    again = [protocol.evaluate_trial(t, episodes=4) for t in protocol.find_trials(run_dir)]
    assert [t.evaluations for t in again] == [t.evaluations for t in first]
    with pytest.raises(AssertionError, match="evaluated again"):  # another episode count
        protocol.evaluate_trial(protocol.find_trials(run_dir)[0], episodes=5)


def test_a_campaign_record_is_read_from_its_snapshots(tmp_path):
    for seed, means in ((0, [1.0, 3.0, 2.0, 2.0, 2.0]), (1, [5.0, 1.0, 1.0, 1.0])):
        trial = tmp_path / f"SEAC-seed{seed}"
        trial.mkdir()
        (trial / "params.json").write_text(json.dumps({"env": LBF, "seed": seed}))
        snapshots = [
            {
                "env_steps": (i + 1) * 1000,
                "algorithm": "SEAC",
                "episodes": 100,
                "total_return": {"mean": m, "std": 0.5},
            }
            for i, m in enumerate(means)
        ]
        (trial / "snapshots.json").write_text(json.dumps(snapshots))
    trials = [protocol.evaluate_trial(t) for t in protocol.find_trials(tmp_path)]
    assert [(t.seed, t.best, t.last) for t in trials] == [(0, 3.0, 2.0), (1, 5.0, 1.0)]
    row = protocol.table(trials).splitlines()[2]
    assert row == "| SEAC | 2 | 4-5 | 4.00 ± 1.00 | 1.50 ± 0.50 |"


def test_rllib_evaluate_best_of_snapshots_prints_table_1s_figures(run_dir, capsys):
    from rllib_seac.cli import main

    assert main(["evaluate", str(run_dir), "--best-of-snapshots", "--episodes", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    trials = [protocol.evaluate_trial(t, episodes=4) for t in protocol.find_trials(run_dir)]
    assert out[-4:] == protocol.table(trials).splitlines()
    assert sum("2 snapshots, best" in line for line in out) == 2


def test_a_directory_without_snapshots_is_refused_in_one_line(tmp_path, capsys):
    from rllib_seac.cli import main

    assert main(["evaluate", str(tmp_path), "--best-of-snapshots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no trial with snapshots" in err[0]
