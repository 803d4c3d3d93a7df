"""What several subcommands share: the usage error, JSON options, user imports."""

from __future__ import annotations

import importlib
import json
import os
import sys


class UsageError(Exception):
    """Bad input: printed as one line on stderr, exit code 2."""


def note(message: str) -> None:
    """One informational line on stderr (translations, defaults the CLI chose)."""
    print(f"rllib: {message}", file=sys.stderr)


def check_at_least(value: int | None, low: int, option: str) -> None:
    if value is not None and value < low:
        raise UsageError(f"{option} must be >= {low}, got {value}.")


def parse_json_object(text: str | None, option: str, example: str) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{option} is not valid JSON ({e}): {text}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object like '{example}', got {text}")
    return value


def import_user_modules(modules: list[str] | None) -> None:
    """Imports each `--import` module (one whose import registers the user's envs).

    The current directory comes first on the path, as with `python -m`: an installed
    command's path has its own bin directory instead. (Ray puts the driver's current
    directory on its workers' paths too, so they find the same modules.)
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in modules or []:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise UsageError(f"--import {module}: {e}{import_path_hint(e, module)}") from None


def import_path_hint(error: ImportError, module: str) -> str:
    """For a module that is not found at all: where Python looked, and how to add
    the directory that holds it."""
    missing = getattr(error, "name", None)
    if not isinstance(error, ModuleNotFoundError) or missing != module.split(".")[0]:
        return ""
    return (
        f" (looked in the current directory {os.getcwd()} and PYTHONPATH: run from the "
        "directory that holds it, or set PYTHONPATH=/path/to/that/directory)"
    )
