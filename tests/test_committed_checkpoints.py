"""The checkpoints committed with the long runs' records (docs/results/) restore and
train under this code: the next leg of a run continues from them, whatever changed
since they were written (env classes pickled in them included)."""

import json
from pathlib import Path

import pytest
from ray.rllib.algorithms import Algorithm

from rllib_seac import register_envs

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"


def _records_last_checkpoints() -> list[Path]:
    # One trial's last checkpoint per record (a record's trials ran on the same
    # commit); a record is a directory of trials, each with its legs.json.
    trials = [c.parent for c in RESULTS.rglob("checkpoint") if (c.parent / "legs.json").is_file()]
    records = sorted({trial.parent for trial in trials})
    return [sorted(record.glob("*/checkpoint"))[0] for record in records]


@pytest.mark.parametrize(
    "checkpoint",
    _records_last_checkpoints(),
    ids=lambda p: str(p.parent.relative_to(RESULTS)),
)
def test_a_records_last_checkpoint_trains_on(checkpoint):
    legs = json.loads((checkpoint.parent / "legs.json").read_text())
    env = json.loads((checkpoint.parent / "params.json").read_text())["env"]
    # RLlib's own algorithms (IPPO's PPO) find this package's envs by their registered
    # names, as a user's script registers them before restoring.
    register_envs([env])
    algo = Algorithm.from_checkpoint(str(checkpoint))
    try:
        result = algo.train()["env_runners"]
    finally:
        algo.stop()
    # The env-step counter came back with the weights, and the run went on from it.
    sampled = result["num_env_steps_sampled"]
    assert sampled > 0
    assert result["num_env_steps_sampled_lifetime"] == legs[-1]["end_steps"] + sampled
