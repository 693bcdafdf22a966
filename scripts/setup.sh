#!/usr/bin/env bash
# Create (or reuse) the project environment in .venv/ and the Debian packages it needs.
# Idempotent: a second run with unchanged pyproject.toml/constraints.txt does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PKGS=(ffmpeg libusb-1.0-0 libegl1 libegl-mesa0 libgl1-mesa-dri libglib2.0-0)
missing=()
for p in "${DEBIAN_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
fi

stamp=.venv/.deft-install-stamp
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing deft[all] with pinned constraints (first run takes a few minutes)"
  # torch/torchvision first and explicitly: the pinned CPU-usable wheels come from the local wheel cache.
  log=.venv/pip-install.log
  if ! { .venv/bin/pip install -c constraints.txt torch torchvision &&
         .venv/bin/pip install -c constraints.txt -e '.[all]' &&
         # mediapipe without its opencv-contrib-python dependency (it would replace our headless cv2)
         .venv/bin/pip install -c constraints.txt --no-deps mediapipe; } >"$log" 2>&1; then
    tail -40 "$log"; echo "[setup] pip install failed; full log: $log" >&2; exit 1
  fi
  echo "$want" > "$stamp"
fi
# MediaPipe's hand landmarker comes from the mediapipe==0.10.21 wheel on PyPI (no model hub); skips if built.
if ! .venv/bin/python scripts/mediapipe_bundle.py >.venv/mediapipe-bundle.log 2>&1; then
  tail -5 .venv/mediapipe-bundle.log
  echo "[setup] warning: could not build the MediaPipe hand-landmarker bundle; the 'mediapipe' hand-pose backend is unavailable" >&2
fi
echo "[setup] environment ready: .venv/bin/deft, .venv/bin/deft-robot, .venv/bin/python"
