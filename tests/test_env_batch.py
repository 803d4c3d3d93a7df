"""Envs stepped in worker processes give exactly the in-process rollouts."""

import numpy as np
import torch

from rllib_seac import SEACConfig
from rllib_seac.env_runner import SEACEnvRunner


def rollouts(processes: int, n: int = 30) -> list:
    config = (
        SEACConfig()
        .environment("rware-tiny-2ag-v2", env_config={"max_steps": 12})
        .env_runners(num_env_processes_per_env_runner=processes)
        .debugging(seed=3)
    )
    config.validate()
    runner = SEACEnvRunner(config=config)
    torch.manual_seed(0)  # the same action samples for both runners
    try:
        return [runner.sample() for _ in range(n)]
    finally:
        runner.stop()


def test_subprocess_envs_match_in_process_envs():
    in_process, subprocess = rollouts(0), rollouts(2)
    for a, b in zip(in_process, subprocess):
        for mid in a:
            for col in a[mid]:
                np.testing.assert_array_equal(a[mid][col], b[mid][col], err_msg=f"{mid} {col}")
    # Episodes of 12 steps ended (and were reset) inside the 30 x 5 steps compared.
    assert any(r["agent_0"]["truncateds"].any() for r in in_process)
