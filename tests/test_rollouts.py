"""Rollouts collected in worker processes against those collected in process."""

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_seac import SEACConfig
from rllib_seac.columns import ACTIONS, BEHAVIOUR_LOGP
from rllib_seac.seac.env_runner import SEACEnvRunner
from rllib_seac.seac.rl_module import SEACTorchRLModule


def rollouts(processes: int, n: int = 30, overlap: bool = False) -> list:
    config = (
        SEACConfig()
        .environment("rware-tiny-2ag-v2", env_config={"max_steps": 12})
        .env_runners(num_env_processes_per_env_runner=processes)
        .training(overlap_sampling=overlap)
        .debugging(seed=3)
    )
    config.validate()
    runner = SEACEnvRunner(config=config)
    try:
        return [runner.sample() for _ in range(n)], runner.get_metrics()
    finally:
        runner.stop()


def assert_same(a: list, b: list) -> None:
    for x, y in zip(a, b, strict=True):
        for mid in x:
            for col in x[mid]:
                np.testing.assert_array_equal(x[mid][col], y[mid][col], err_msg=f"{mid} {col}")


def test_one_worker_process_gives_exactly_the_in_process_rollouts():
    (in_process, metrics), (worker, worker_metrics) = rollouts(0), rollouts(1)
    assert_same(in_process, worker)
    # Episodes of 12 steps ended (and were reset) inside the 30 x 5 steps compared.
    assert any(r["agent_0"]["truncateds"].any() for r in in_process)
    # 4 envs x 150 steps: 12 full 12-step episodes each.
    assert metrics["num_episodes"].peek() == worker_metrics["num_episodes"].peek() == 4 * 12


def test_two_worker_processes_split_the_envs():
    samples, metrics = rollouts(2)
    assert samples[0]["agent_1"]["obs"].shape == (1, 4, 5, 71)
    assert metrics["num_env_steps_sampled"].peek() == 30 * 4 * 5
    assert metrics["episode_len_mean"].peek() == 12


def test_overlapped_workers_give_the_same_rollouts_with_fixed_weights():
    # Without weight updates, sampling ahead changes nothing but the timing.
    assert_same(rollouts(2)[0], rollouts(2, overlap=True)[0])


class AlwaysFirstAction(SEACTorchRLModule):
    """A module whose exploration forward is not its actor MLP's."""

    def _forward(self, batch, **kwargs):
        logits = torch.full((len(batch[Columns.OBS]), self.action_space.n), -30.0)
        logits[:, 0] = 0.0
        return {Columns.ACTION_DIST_INPUTS: logits}


def test_a_module_that_overrides_its_forward_samples_with_it():
    config = (
        SEACConfig()
        .environment("rware-tiny-2ag-v2", env_config={"max_steps": 12})
        .rl_module(rl_module_spec=RLModuleSpec(module_class=AlwaysFirstAction))
        .debugging(seed=3)
    )
    config.validate()
    runner = SEACEnvRunner(config=config)
    try:
        batches = [runner.sample() for _ in range(3)]
    finally:
        runner.stop()
    for batch in batches:
        for columns in batch.values():
            assert (np.asarray(columns[ACTIONS]) == 0).all()
            np.testing.assert_allclose(columns[BEHAVIOUR_LOGP], 0.0, atol=1e-6)
