"""num_learners > 1: each learner trains on an equal share of the envs, and their
averaged gradient makes the same update as one learner on the whole batch."""

import numpy as np
import pytest

from rllib_seac import SEACConfig
from rllib_seac.seac.algorithm import _train_batches

RWARE = "rware-tiny-2ag-v2"
UPDATES = 2


def build(num_learners: int, **training):
    config = (
        SEACConfig()
        .environment(RWARE)
        .training(**training)
        # Two remote learners fit the test session's 2 CPUs with room to spare.
        .learners(num_learners=num_learners, num_cpus_per_learner=0.5)
        .debugging(seed=0)
    )
    return config.build_algo()


def learners_weights(algo) -> list[dict]:
    """Every learner's modules as {module: {parameter: array}}."""
    results = algo.learner_group.foreach_learner(
        lambda learner: {
            mid: {k: v.detach().numpy().copy() for k, v in learner.module[mid].state_dict().items()}
            for mid in learner.module.keys()
        }
    )
    return [r.get() for r in results]


@pytest.mark.parametrize(
    "training", [dict(seac_lambda=1.0), dict(shared_policy=True)], ids=["SEAC", "SNAC"]
)
def test_two_learners_make_the_same_updates_as_one(training):
    one, two = build(0, **training), build(2, **training)
    try:
        two.learner_group.set_weights(one.learner_group.get_weights())
        (start,) = learners_weights(one)
        for _ in range(UPDATES):
            rollouts = [one.env_runner.sample()]  # [agents, 4 envs, 5 steps]
            (whole,) = _train_batches(rollouts, 1)
            one.learner_group.update(batch=whole)
            two.learner_group.update(batches=_train_batches(rollouts, 2))
        (expected,) = learners_weights(one)
        shards = learners_weights(two)
    finally:
        one.stop()
        two.stop()
    for mid, params in expected.items():
        for name, value in params.items():
            assert not np.array_equal(value, start[mid][name]), (mid, name)  # it trained
            for learner in shards:
                np.testing.assert_allclose(learner[mid][name], value, atol=1e-6, rtol=0)


def test_envs_are_split_evenly_and_keep_the_layout():
    rng = np.random.default_rng(0)
    # Two runners' rollouts of a module acting for 2 agents: [agents, envs, steps, obs].
    rollouts = [
        {"shared": {"obs": rng.normal(size=(2, envs, 5, 4)), "rewards": np.ones((2, envs, 5))}}
        for envs in (3, 1)
    ]
    joined = np.concatenate([r["shared"]["obs"] for r in rollouts], axis=1)
    shards = _train_batches(rollouts, 2)
    assert [b.env_steps() for b in shards] == [10, 10]
    for i, batch in enumerate(shards):
        obs = batch["shared"]["obs"].reshape(2, 2, 5, 4)
        np.testing.assert_array_equal(obs, joined[:, 2 * i : 2 * i + 2])
    # 4 envs left for 3 learners (a runner is restarting): the 4th sits out.
    assert [b.env_steps() for b in _train_batches(rollouts, 3)] == [5, 5, 5]
    assert _train_batches(rollouts, 5) == []
