"""A killed driver's local Ray: its agents are stopped when the next run starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rllib_seac.local_ray import RAY_AGENTS, reap_orphaned_agents

ROOT = Path(__file__).resolve().parents[1]
DRIVER = """
import sys, time
from rllib_seac.local_ray import init_local_ray
init_local_ray(1, _temp_dir=sys.argv[1])
print("started", flush=True)
time.sleep(600)
"""


def parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return None


def agents_below(pid: int) -> list[int]:
    """The Ray agents among `pid`'s descendants."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (p := parent(int(entry.name))) is not None:
            children.setdefault(p, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            title = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0].decode()
            if title.strip() in RAY_AGENTS:
                found.append(child)
    return found


def wait_for(condition, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.5)
    return condition()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")
def test_the_agents_of_a_killed_drivers_ray_are_stopped_at_the_next_start(tmp_path):
    temp_dir = f"/tmp/rllib_seac_reap_{os.getpid()}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, temp_dir], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert driver.stdout.readline().strip() == "started"
        agents = wait_for(lambda: len(found := agents_below(driver.pid)) == 2 and found, 60)
        assert agents, "the local Ray's two agents did not start"
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    # The raylet goes with the driver; the agents stay on, adopted by init.
    assert wait_for(lambda: all(parent(a) == 1 for a in agents), 60), "agents not orphaned"
    # Another test process's Ray start (pytest-xdist) may reap them first: each agent is
    # reaped by this call or already gone.
    reaped = set(reap_orphaned_agents())
    assert all(a in reaped or not alive(a) for a in agents)
    assert wait_for(lambda: all(parent(a) in (None, 1) and not alive(a) for a in agents), 30)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
