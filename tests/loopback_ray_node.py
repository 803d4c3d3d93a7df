"""`ray start` for another node of a one-machine test cluster on 127.0.0.1.

On Linux Ray replaces 127.0.0.1 with the machine's outward address unless
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, and with that setting `ray start --address`
refuses to add a node ("multi-node clusters are not supported on Windows and OSX").
This runs `ray start` with only that refusal lifted, so every address stays on
loopback. Usage: python loopback_ray_node.py start --address=127.0.0.1:PORT ...
"""

import sys
import types

import ray._private.ray_constants as ray_constants
from ray.scripts import scripts

# Only `ray start`'s own check sees the flag on; the address lookups keep loopback.
scripts.ray_constants = types.SimpleNamespace(**{**vars(ray_constants), "ENABLE_RAY_CLUSTER": True})

if __name__ == "__main__":
    sys.exit(scripts.main())
