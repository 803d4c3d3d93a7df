"""`rllib evaluate` and `rllib render` read a checkpoint without running code from it.

On copies of a checkpoint committed under docs/results (written by RLlib's
save_to_path), with files replaced by pickles that would run a command if
unpickled: each is refused in one line, and the command never runs.
"""

import os
import pickle
import shutil
from pathlib import Path

import pytest

from rllib_seac.checkpoints import CONFIG_FILE, MODULES_DIR, CheckpointError, read_pickle
from rllib_seac.cli import main

COMMITTED = Path(__file__).resolve().parents[1] / "docs/results/rware-tiny-2ag-v2/IAC-seed0/best"
MODULE_STATE = MODULES_DIR / "agent_1" / "module_state.pkl"


class RunsCommand:
    """Unpickling this runs `touch PATH` (pickle calls os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def checkpoint(tmp_path):
    return Path(shutil.copytree(COMMITTED, tmp_path / "checkpoint"))


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_committed_checkpoint_evaluates_by_default_and_trusted_alike(capsys):
    outputs = []
    for flags in ([], ["--trust-checkpoint"]):
        code, out, _ = run_cli(capsys, "evaluate", COMMITTED, "--episodes", 1, "--seed", 0, *flags)
        assert code == 0
        outputs.append(out)
    assert "IAC on rware-tiny-2ag-v2, 1 episodes" in outputs[0]
    assert outputs[0] == outputs[1]  # the same weights, read as data or unpickled


@pytest.mark.parametrize("file", [MODULE_STATE, Path(CONFIG_FILE)], ids=["module", "config"])
@pytest.mark.parametrize("command", ["evaluate", "render"])
def test_a_pickle_that_runs_code_is_refused_and_does_not_run(
    checkpoint, tmp_path, capsys, file, command
):
    marker = tmp_path / "ran"
    (checkpoint / file).write_bytes(pickle.dumps(RunsCommand(marker)))
    extra = ["--out", tmp_path / "run.gif"] if command == "render" else []
    code, _, err = run_cli(capsys, command, checkpoint, *extra)
    assert code == 2
    assert err.startswith("rllib: error:") and len(err.strip().splitlines()) == 1, err
    assert str(checkpoint / file) in err or str(checkpoint) in err
    assert not marker.exists()


def test_read_pickle_names_no_module_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "state.pkl"
    path.write_bytes(pickle.dumps({"x": RunsCommand(marker)}))
    value = read_pickle(path)["x"]
    assert type(value).__module__ in ("posix", "os", "nt") and not marker.exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: b"", "is not a readable module state (it is empty)"),
        (lambda data: data[: len(data) // 2], "is not a readable module state"),
        (lambda data: b"not a pickle at all", "is not a readable module state"),
    ],
    ids=["empty", "truncated", "garbled"],
)
def test_a_damaged_module_file_is_one_line_naming_it(checkpoint, capsys, damage, message):
    path = checkpoint / MODULE_STATE
    path.write_bytes(damage(path.read_bytes()))
    code, _, err = run_cli(capsys, "evaluate", checkpoint, "--episodes", 1)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{path} {message}" in err


@pytest.mark.parametrize("damage", [b"", b"\x80\x04garbled"], ids=["empty", "garbled"])
def test_a_damaged_config_file_is_one_line_naming_it(checkpoint, capsys, damage):
    (checkpoint / CONFIG_FILE).write_bytes(damage)
    code, _, err = run_cli(capsys, "evaluate", checkpoint, "--episodes", 1)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{checkpoint / CONFIG_FILE} is not a readable checkpoint config" in err


def test_a_checkpoint_without_an_agents_module_is_refused(checkpoint, capsys):
    shutil.rmtree(checkpoint / MODULES_DIR / "agent_1")
    code, _, err = run_cli(capsys, "evaluate", checkpoint, "--episodes", 1)
    assert code == 2
    assert f"has no module for agent agent_1 ({MODULES_DIR / 'agent_1'} is missing)" in err


def test_weights_of_another_shape_are_refused(checkpoint, capsys):
    path = checkpoint / MODULE_STATE
    state = read_pickle(path)
    state["actor.0.weight"] = state["actor.0.weight"][:, :10]
    path.write_bytes(pickle.dumps(state))
    code, _, err = run_cli(capsys, "evaluate", checkpoint, "--episodes", 1)
    assert code == 2
    assert "actor.0.weight has shape (64, 10), the module built for the" in err


def _rewrite_config(checkpoint, **changes):
    """The checkpoint's config state with `changes` (read with pickle: our own file)."""
    path = checkpoint / CONFIG_FILE
    with open(path, "rb") as f:
        saved = pickle.load(f)
    saved["ctor_args_and_kwargs"][0][0].update(changes)
    path.write_bytes(pickle.dumps(saved))


def pairs(agent_id, episode=None, **kwargs):
    return "front" if agent_id == "agent_0" else "back"


def test_code_the_config_names_needs_trust(checkpoint, capsys):
    _rewrite_config(checkpoint, policy_mapping_fn=pairs)
    code, _, err = run_cli(capsys, "evaluate", checkpoint, "--episodes", 1)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "maps agents to modules with its own policy_mapping_fn (" in err
    assert "test_checkpoint_safety.pairs), which is code" in err
    assert "--trust-checkpoint" in err


def test_an_env_spec_needs_its_module_imported_or_trust(checkpoint, capsys):
    _rewrite_config(checkpoint, env="tests.user_envs:make_spread")
    code, _, err = run_cli(capsys, "evaluate", checkpoint, "--episodes", 1)
    assert code == 2
    assert "env tests.user_envs:make_spread imports and calls code from tests.user_envs" in err
    assert "--import tests.user_envs" in err


def test_python_api_raises_a_value_error(checkpoint):
    from rllib_seac.analysis.evaluation import evaluate

    (checkpoint / MODULE_STATE).write_bytes(b"")
    with pytest.raises(CheckpointError) as err:
        evaluate(checkpoint, episodes=1)
    assert isinstance(err.value, ValueError)
