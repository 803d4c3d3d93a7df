"""Arrays that arrive read-only (from Ray's object store) raise no PyTorch warning."""

import subprocess
import sys

# PyTorch warns about a read-only array once per process: a fresh process sees it.
SCRIPT = """
import warnings
warnings.simplefilter("always")
from rllib_seac import SEACConfig
from rllib_seac.seac.rl_module import flat_parameters
config = SEACConfig().environment("rware-tiny-2ag-v2").training(updates_per_iteration=1)
algo = config.build_algo()
weights = flat_parameters(algo.env_runner.module).numpy().copy()
weights.flags.writeable = False  # as Ray hands a remote env runner the learner's weights
algo.env_runner.sample(weights=weights)
algo.stop()
print("sampled")
"""


def test_env_runner_takes_read_only_weights_without_a_torch_warning():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "sampled" in done.stdout
    assert "not writable" not in done.stderr
