"""SEAC on a real two-node Ray cluster started with `ray start`, both nodes on
127.0.0.1 with their own resources; drivers run in subprocesses (this test session's
own driver is connected to another Ray instance)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
RAY = str(Path(sys.executable).parent / "ray")
RWARE_YAML = TESTS.parent / "tuned_configs" / "rware.yaml"
START_TIMEOUT_S = 180
# What `ray start` says when its node missed Ray's own 30-s startup window.
RAY_STARTUP_TIMED_OUT = "The current node timed out during startup."
RUN_TIMEOUT_S = 300

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_ports() -> list[str]:
    # Two nodes on one machine must not share the fixed defaults (e.g. 52365).
    names = [
        "node-manager-port",
        "object-manager-port",
        "metrics-export-port",
        "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port",
        "runtime-env-agent-port",
    ]
    return [f"--{name}={free_port()}" for name in names]


def start_node(command: list[str], log: Path, env: dict) -> subprocess.Popen:
    """A node's `ray start --block` (with ports of its own), in its own process group;
    returns once it runs. Ray gives a node a fixed 30 s to register with the GCS,
    which a busy machine can exceed: such a node is started again, until
    START_TIMEOUT_S."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        with open(log, "w") as out:
            node = subprocess.Popen(
                command + node_ports(),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if started(node, log, deadline):
            return node
        stop_node(node)
        text = log.read_text()
        if RAY_STARTUP_TIMED_OUT not in text or time.monotonic() > deadline:
            raise RuntimeError(f"{command[1:3]} did not start:\n{text[-2000:]}")


def started(node: subprocess.Popen, log: Path, deadline: float) -> bool:
    while "Ray runtime started." not in log.read_text():
        if node.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def stop_node(node: subprocess.Popen) -> None:
    """SIGTERM lets `ray start --block` shut its node's processes down; SIGKILL to
    the process group is the fallback. Never `ray stop`: it stops every Ray on the
    machine."""
    if node.poll() is None:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster():
    """A head node (1 CPU, resource head_node) and a worker node (2 CPUs, worker_node)."""
    temp = Path(tempfile.mkdtemp(prefix="rsc", dir="/tmp"))  # short: socket paths
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(
        # Loopback addresses only (see tests/loopback_ray_node.py), and this
        # cluster's own token for Ray's token authentication.
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=uuid.uuid4().hex,
        # RLlib logs algorithms built outside Tune under ~/ray_results.
        HOME=str(temp),
    )
    common = [
        "--node-ip-address=127.0.0.1",
        "--block",
        "--disable-usage-stats",
        "--include-log-monitor=false",
        f"--object-store-memory={100 * 2**20}",
        "--min-worker-port=0",
        "--max-worker-port=0",
    ]
    head_command = [RAY, "start", "--head", f"--port={port}", "--include-dashboard=false"]
    head_command += ["--num-cpus=1", '--resources={"head_node": 1}', f"--temp-dir={temp}/h"]
    worker_command = [sys.executable, str(TESTS / "loopback_ray_node.py"), "start"]
    worker_command += [f"--address=127.0.0.1:{port}", "--num-cpus=2"]
    worker_command += ['--resources={"worker_node": 2}', f"--temp-dir={temp}/w"]
    nodes = []
    try:
        nodes.append(start_node(head_command + common, temp / "head.log", env))
        nodes.append(start_node(worker_command + common, temp / "w.log", env))
        yield {**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    finally:
        for node in reversed(nodes):
            stop_node(node)
        shutil.rmtree(temp, ignore_errors=True)


def run(command: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    done = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def test_env_runners_spread_over_both_nodes(cluster, tmp_path):
    done = run([sys.executable, str(TESTS / "cluster_driver.py")], cluster, tmp_path)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    resources = report["node_resources"]
    assert sorted(resources.values()) == [["head_node"], ["worker_node"]]
    # 3 runners of 1 CPU fill the head's 1 CPU and the worker's 2.
    placed = sorted(resources[node][0] for node in report["runner_nodes"])
    assert placed == ["head_node", "worker_node", "worker_node"]
    assert report["env_steps"] == 3 * 2 * 5  # runners x updates x (1 env x 5 steps)


def test_tuned_config_trains_on_the_cluster_from_the_cli(cluster, tmp_path):
    # As a user would on the head node: the tuned file, more env runners, and
    # (here) the runners pinned to the worker node by its custom resource. Tune's
    # trial then holds the head's CPU, the runners the worker's two.
    overrides = {
        "num_env_runners": 2,
        "num_envs_per_env_runner": 1,
        "updates_per_iteration": 2,
        "custom_resources_per_env_runner": {"worker_node": 1},
    }
    command = [str(Path(sys.executable).parent / "rllib"), "train", "file", str(RWARE_YAML)]
    command += ["--stop", '{"training_iteration": 1}', "--config", json.dumps(overrides)]
    run([*command, "--storage-path", str(tmp_path / "results")], cluster, tmp_path)
    (result_file,) = (tmp_path / "results" / "seac-rware").glob("*/result.json")
    result = json.loads(result_file.read_text().splitlines()[-1])
    assert result["num_env_steps_sampled_lifetime"] == 2 * 2 * 5
