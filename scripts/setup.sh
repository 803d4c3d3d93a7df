#!/usr/bin/env bash
# Creates .venv with the CPU build of torch first (a plain `pip install torch`
# would pull a multi-GB CUDA build), then rllib-seac with its test extras.
# One line per stage; pip's own output only on errors.
set -euo pipefail
cd "$(dirname "$0")/.."

# pip warns once per command about find-links / index locations that do not exist
# on this machine ("Location ... is ignored"): noise, not a problem of the install.
pip_install() {
  .venv/bin/python -m pip install --quiet "$@" 2>&1 | { grep -v "^WARNING: Location .* is ignored" || true; }
}

if [ ! -x .venv/bin/python ]; then
  echo "setup 1/4: creating .venv with $(python3 --version)"
  python3 -m venv .venv
else
  echo "setup 1/4: using the existing .venv"
fi
echo "setup 2/4: upgrading pip"
pip_install --upgrade pip
echo "setup 3/4: installing torch 2.13.0, CPU build (the longest stage)"
pip_install torch==2.13.0
echo "setup 4/4: installing rllib-seac and its dependencies (ray[rllib], rware, lbforaging, mpe2, pytest)"
pip_install -e ".[test]"
echo "setup: .venv ready ($(.venv/bin/python -c 'import ray, torch; print("ray", ray.__version__, "torch", torch.__version__)'))"
