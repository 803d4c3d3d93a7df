"""One Ray instance for the whole test session, on 127.0.0.1, with its files under /tmp."""

import os
import time

# Read when Ray is imported. On Linux Ray swaps 127.0.0.1 for the machine's outward
# address; this keeps the test clusters on loopback (it also stops `ray start` from
# adding nodes: tests/loopback_ray_node.py lifts that for the two-node test).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import pytest  # noqa: E402
import ray  # noqa: E402

# Imported before any test captures stderr: RLlib binds its log handler to the
# stderr of its first import (`rllib_seac` itself imports Ray only when used).
import ray.rllib  # noqa: E402, F401
import ray.tune.trainable.trainable as trainable_module  # noqa: E402

# Short: Ray's socket paths must stay under the 107-byte AF_UNIX limit.
# RLLIB_SEAC_RAY_TEMP_DIR lets two test sessions on one machine keep apart; each
# pytest-xdist worker has a Ray of its own.
RAY_TEMP_DIR = "_".join(
    [
        os.environ.get("RLLIB_SEAC_RAY_TEMP_DIR", "/tmp/rllib_seac_ray_tests"),
        os.environ.get("PYTEST_XDIST_WORKER", "main"),
    ]
)


@pytest.fixture(scope="session", autouse=True)
def ray_session(tmp_path_factory):
    # Ray 2.60 no longer reads TUNE_RESULT_DIR (setting it makes Tune raise). Tune runs
    # get an explicit storage_path; `build_algo()` outside Tune logs to this default.
    with pytest.MonkeyPatch.context() as patch:
        results = tmp_path_factory.mktemp("ray_results")
        patch.setattr(trainable_module, "DEFAULT_STORAGE_PATH", str(results))
        # Tune reuses this instance instead of starting its own.
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=RAY_TEMP_DIR, log_to_driver=False)
        yield
        ray.shutdown()


# The whole suite's budget on a busy 2-core machine. Not asserted (that would test
# the machine): reported after pytest's list of the slowest tests (--durations), so
# a suite that grows past it shows which tests to make cheaper or mark `slow`.
SUITE_BUDGET_S = 600


_SESSION_START = []


def pytest_sessionstart(session):
    _SESSION_START.append(time.monotonic())


def pytest_terminal_summary(terminalreporter):
    elapsed = time.monotonic() - _SESSION_START[0]
    verdict = "within" if elapsed <= SUITE_BUDGET_S else "OVER"
    terminalreporter.write_line(
        f"suite health: {elapsed / 60:.1f} min, {verdict} the {SUITE_BUDGET_S // 60}-minute "
        "budget for a busy 2-core machine (slowest tests listed above)"
    )
