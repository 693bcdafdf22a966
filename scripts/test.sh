#!/usr/bin/env bash
# Set everything up, then run the whole test suite (slow end-to-end tests included).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow" -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONHASHSEED=0
# pytest's exit status is passed through unchanged: 5 ("no tests collected") fails like any other.
exec .venv/bin/python -m pytest "$@"
