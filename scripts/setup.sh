#!/usr/bin/env bash
# Creates .venv with the CPU build of torch first (a plain `pip install torch`
# would pull a multi-GB CUDA build), then rllib-seac with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e ".[test]"
echo "setup: .venv ready ($(.venv/bin/python -c 'import ray, torch; print("ray", ray.__version__, "torch", torch.__version__)'))"
