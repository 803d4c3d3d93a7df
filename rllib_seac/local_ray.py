"""Starting Ray on this machine without its start-up notices or files in the home, and
without what an earlier killed run left behind.

Ray 2.60 turns token authentication on for a new local instance: with no token it
generates one, saves it as ~/.ray/auth_token and logs two lines about it. A token
that lives only in this process tree's environment (RAY_AUTH_TOKEN) keeps the
authentication and leaves the home alone.

A local Ray's raylet starts two agent processes per node. When the driver that
started that Ray is killed (SIGKILL, out of memory), its raylet goes with it but the
two agents stay on, adopted by init, until the machine stops; `reap_orphaned_agents`
stops them when the next run starts.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
from pathlib import Path

AUTH_MODE = "RAY_AUTH_MODE"
AUTH_TOKEN = "RAY_AUTH_TOKEN"
SAVED_TOKEN = Path("~/.ray/auth_token")
# The process titles of the agents a raylet starts on its node.
RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def use_session_auth_token() -> None:
    """Before Ray starts a local instance: token authentication with a token for this
    run only, unless the user chose a mode, a token or a cluster (RAY_ADDRESS), whose
    settings then apply unchanged. A saved ~/.ray/auth_token is used as Ray would,
    with the mode set so that Ray does not announce it."""
    if os.environ.get("RAY_ADDRESS") or AUTH_MODE in os.environ:
        return
    os.environ[AUTH_MODE] = "token"
    if AUTH_TOKEN not in os.environ and not SAVED_TOKEN.expanduser().is_file():
        os.environ[AUTH_TOKEN] = secrets.token_hex(32)
    from rllib_seac._rllib_internals import reload_ray_auth_settings

    reload_ray_auth_settings()


def init_local_ray(num_cpus: int, **kwargs) -> None:
    """`ray.init` on this machine with a session token, no dashboard and no
    "Started a local Ray instance" line; workers' logs stay in Ray's session
    directory (errors still reach the caller as exceptions)."""
    import ray

    use_session_auth_token()
    reap_orphaned_agents()
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        **kwargs,
    )


def reap_orphaned_agents() -> list[int]:
    """Stops (SIGKILL) this user's Ray agent processes whose raylet is gone, the ones
    init adopted (parent pid 1): a live Ray's agents are its raylet's children.
    Returns their pids; nothing where /proc is not there (not Linux)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    reaped = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            # /proc/PID/stat: "pid (comm) state ppid ...", comm may hold spaces.
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not readable
        if parent == 1 and title.strip() in RAY_AGENTS:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                continue
            reaped.append(int(entry.name))
    return reaped
