#!/usr/bin/env bash
# Set everything up, then run the main job on the embedded default world.
# Pass --quick for the small variant used in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
exec .venv/bin/deft demo "$@"
