"""The `rllib` (and `rllib-seac`) command, laid out as Ray 2.40's RLlib CLI was:

- `parser`: the argument parser, with parent parsers for the options several
  subcommands share; imports nothing heavy, so `rllib --help` is quick.
- `experiments`: the tuned-example YAML schema, the translation of Ray 2.40's
  old-stack keys, and the checks that run before Ray starts.
- `train`: runs experiments through Ray Tune (restore, logging, summary).
- `progress`: the live progress table and the end summary.
- `evaluate`: `rllib evaluate`, `render` and `plot`.
- `common`: what the others share (the usage error, JSON options, user imports).
"""

from __future__ import annotations

import importlib
import os
import sys


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Runs the command line `argv` (sys.argv's by default); `prog` is how the command
    was called, as the `--resume` line of an interrupted run repeats it."""
    from rllib_seac.cli.common import UsageError
    from rllib_seac.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    # The command as given, for the `--resume` line of an interrupted run.
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.prog = prog or (os.path.basename(sys.argv[0]) if argv is None else "rllib")
    module_name, func_name = args.handler
    # Each subcommand imports Ray, torch and its own modules only when it runs.
    handler = getattr(importlib.import_module(module_name), func_name)
    try:
        return handler(args)
    except UsageError as e:
        print(f"rllib: error: {e}", file=sys.stderr)
        return 2
