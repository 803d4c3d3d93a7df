"""`rllib import-authors`: the authors' pickled agents (uoe-agents/seac) as a checkpoint.

The files are written here in their format: `torch.save({"model": Policy, "optimizer":
Adam})` of classes named and module-pathed like theirs (model.Policy, model.MLPBase,
distributions.Categorical), in torch's legacy format as their published files are.
Those modules are gone from sys.modules when the importer reads the files.
"""

import collections
import contextlib
import json
import re
import sys
import types
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from rllib_seac import SEAC
from rllib_seac.analysis.evaluation import AgentPolicies
from rllib_seac.checkpoints import CheckpointError
from rllib_seac.cli import main
from rllib_seac.seac.authors_import import import_authors_agents, read_authors_model

ENV = "rware-tiny-2ag-v2"  # 2 agents, 71 observation values, 5 actions
OBS_DIM, N_ACTIONS, HIDDEN = 71, 5, 8


class MLPBase(nn.Module):
    """Their seac/model.py MLPBase (not recurrent)."""

    def __init__(self, num_inputs, hidden_size):
        super().__init__()
        self._hidden_size, self._recurrent = hidden_size, False
        self.actor = nn.Sequential(
            nn.Linear(num_inputs, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
        )
        self.critic = nn.Sequential(
            nn.Linear(num_inputs, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
        )
        self.critic_linear = nn.Linear(hidden_size, 1)


class Categorical(nn.Module):
    """Their seac/distributions.py Categorical: `linear` gives the logits."""

    def __init__(self, num_inputs, num_outputs):
        super().__init__()
        self.linear = nn.Linear(num_inputs, num_outputs)


class Policy(nn.Module):
    def __init__(self, obs_dim, n_actions, hidden):
        super().__init__()
        self.base = MLPBase(obs_dim, hidden)
        self.dist = Categorical(hidden, n_actions)


@contextlib.contextmanager
def their_code_installed():
    """Makes the classes picklable as model.* and distributions.*, as theirs are;
    undone on leaving, so the importer reads the files without their code."""
    with pytest.MonkeyPatch.context() as patch:
        for module_name, classes in {
            "model": [Policy, MLPBase],
            "distributions": [Categorical],
        }.items():
            module = types.ModuleType(module_name)
            for cls in classes:
                patch.setattr(cls, "__module__", module_name)
                setattr(module, cls.__name__, cls)
            patch.setitem(sys.modules, module_name, module)
        yield
    assert "model" not in sys.modules and "distributions" not in sys.modules


def save_their_agent(path, policy, legacy=True):
    """Their A2C.save: the whole model and optimizer (Adam with state after a step)."""
    optimizer = torch.optim.Adam(policy.parameters(), 3e-4, eps=1e-3)
    obs_dim = policy.base.actor[0].in_features
    loss = policy.dist.linear(policy.base.actor(torch.ones(1, obs_dim))).sum()
    loss.backward()
    optimizer.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    with their_code_installed(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.save cannot read these classes' source
        torch.save(
            {"model": policy, "optimizer": optimizer},
            path,
            _use_new_zipfile_serialization=not legacy,
        )


def write_their_agents(directory, n_agents, obs_dim=OBS_DIM, hidden=HIDDEN):
    torch.manual_seed(0)
    policies = [Policy(obs_dim, N_ACTIONS, hidden) for _ in range(n_agents)]
    for i, policy in enumerate(policies):
        save_their_agent(directory / f"agent{i}" / "models.pt", policy)
    return [{k: v.detach().numpy() for k, v in p.state_dict().items()} for p in policies]


def their_logits(tensors: dict, obs: np.ndarray) -> np.ndarray:
    """Their Policy.act's logits, by hand: dist.linear(relu(W2 relu(W1 o + b1) + b2))."""

    def linear(name, x):
        return x @ tensors[f"{name}.weight"].T + tensors[f"{name}.bias"]

    hidden = np.maximum(linear("base.actor.0", obs), 0)
    hidden = np.maximum(linear("base.actor.2", hidden), 0)
    return linear("dist.linear", hidden)


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy-format", "zip-format"])
def test_reads_their_tensors_without_their_code(tmp_path, legacy):
    policy = Policy(OBS_DIM, N_ACTIONS, HIDDEN)
    save_their_agent(tmp_path / "models.pt", policy, legacy=legacy)
    tensors = read_authors_model(tmp_path / "models.pt")
    expected = policy.state_dict()
    assert sorted(tensors) == sorted(expected)
    for name, value in expected.items():
        assert torch.equal(tensors[name], value), name


def test_refuses_other_globals(tmp_path):
    torch.save({"model": collections.Counter()}, tmp_path / "models.pt")
    with pytest.raises(CheckpointError, match=r"refusing global collections\.Counter"):
        read_authors_model(tmp_path / "models.pt")


def test_refuses_a_recurrent_policy(tmp_path):
    policy = Policy(OBS_DIM, N_ACTIONS, HIDDEN)
    policy.base._recurrent = True
    save_their_agent(tmp_path / "models.pt", policy)
    with pytest.raises(CheckpointError, match="recurrent"):
        read_authors_model(tmp_path / "models.pt")


@pytest.mark.parametrize(
    ("n_agents", "obs_dim", "env", "message"),
    [
        (0, OBS_DIM, ENV, "has no agent0/models.pt"),
        (
            2,
            OBS_DIM,
            "rware-tiny-4ag-v2",
            "env rware-tiny-4ag-v2 has 4 agents, the directory has 2",
        ),
        (2, 10, ENV, "agent0 takes 10 observation values and has 5 actions; env .* gives 71"),
        (2, OBS_DIM, "no-such-env", "Unknown env 'no-such-env'"),
    ],
)
def test_bad_input_is_one_line_before_ray(tmp_path, capsys, n_agents, obs_dim, env, message):
    write_their_agents(tmp_path / "agents", n_agents, obs_dim=obs_dim)
    (tmp_path / "agents").mkdir(exist_ok=True)
    argv = ["import-authors", str(tmp_path / "agents"), "--env", env, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rllib: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert not (tmp_path / "o").exists()


def test_missing_model_file_and_wrong_tensor_shape(tmp_path):
    write_their_agents(tmp_path / "agents", 2)
    (tmp_path / "agents" / "agent2").mkdir()
    with pytest.raises(CheckpointError, match=r"missing .*agent2/models\.pt"):
        import_authors_agents(tmp_path / "agents", ENV, tmp_path / "o")

    policy = Policy(OBS_DIM, N_ACTIONS, HIDDEN)
    policy.base.critic[2] = nn.Linear(HIDDEN, HIDDEN + 1)  # critic_linear takes HIDDEN
    save_their_agent(tmp_path / "bad" / "agent0" / "models.pt", policy)
    with pytest.raises(CheckpointError, match=r"tensor critic\.2\.weight has shape \(9, 8\)"):
        import_authors_agents(tmp_path / "bad", "rware-tiny-1ag-v2", tmp_path / "o")


def test_refuses_to_write_into_a_non_empty_directory(tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("")
    with pytest.raises(CheckpointError, match="exists and is not an empty directory"):
        import_authors_agents(tmp_path, ENV, tmp_path / "o")


def test_imported_agents_act_as_theirs_evaluate_and_fine_tune(tmp_path, capsys):
    theirs = write_their_agents(tmp_path / "agents", 2)
    out = tmp_path / "checkpoint"
    argv = ["import-authors", str(tmp_path / "agents"), "--env", ENV, "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    assert f"wrote {out}" in capsys.readouterr().out

    # Each agent's logits on a real observation are their network's, by hand.
    policies = AgentPolicies(out)
    env = policies.make_env()
    obs, _ = env.reset(seed=3)
    env.close()
    for i, aid in enumerate(["agent_0", "agent_1"]):
        with torch.no_grad():
            ours = policies.actors[aid](torch.as_tensor(obs[aid])).numpy()
        np.testing.assert_allclose(ours, their_logits(theirs[i], obs[aid]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(
        their_logits(theirs[0], obs["agent_0"]), their_logits(theirs[1], obs["agent_0"])
    )

    assert main(["evaluate", str(out), "--episodes", "1", "--seed", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 1 and sorted(result["agent_returns"]) == ["agent_0", "agent_1"]

    # Fine-tuning: the restored learner starts from their weights and trains on.
    algo = SEAC.from_checkpoint(str(out))
    try:
        restored = algo.learner_group.get_weights()["agent_1"]["critic.0.weight"]
        np.testing.assert_array_equal(restored, theirs[1]["base.critic.0.weight"])
        algo.train()
        trained = algo.learner_group.get_weights()["agent_1"]["critic.0.weight"]
        assert not np.array_equal(trained, restored)
    finally:
        algo.stop()
