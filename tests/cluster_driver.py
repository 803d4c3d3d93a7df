"""Trains SEAC for one short iteration on the Ray cluster at RAY_ADDRESS, as a user's
script would, and prints as JSON the node each env runner ran on and the nodes'
custom resources."""

import json

import ray

from rllib_seac import SEACConfig

RUNNERS = 3  # one CPU each: all of a 1-CPU head and a 2-CPU worker node


def main() -> None:
    ray.init(log_to_driver=False)
    config = (
        SEACConfig()
        .environment("rware-tiny-2ag-v2")
        .training(updates_per_iteration=2)
        .env_runners(num_env_runners=RUNNERS, num_envs_per_env_runner=1)
    )
    algo = config.build_algo()
    try:
        result = algo.train()
        runner_nodes = algo.env_runner_group.foreach_env_runner(
            lambda runner: ray.get_runtime_context().get_node_id(), local_env_runner=False
        )
    finally:
        algo.stop()
    node_resources = {
        node["NodeID"]: sorted(name for name in node["Resources"] if name.endswith("_node"))
        for node in ray.nodes()
        if node["Alive"]
    }
    print(
        json.dumps(
            {
                "runner_nodes": runner_nodes,
                "node_resources": node_resources,
                "env_steps": result["env_runners"]["num_env_steps_sampled_lifetime"],
            }
        )
    )


if __name__ == "__main__":
    main()
