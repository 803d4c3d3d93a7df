"""`python -m rllib_seac.cli`: the `rllib` command without its installed script."""

import sys

from rllib_seac.cli import main

sys.exit(main(prog="python -m rllib_seac.cli"))
