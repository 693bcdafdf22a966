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
  # The environment is about 7.5 GB, most of it torch's CUDA libraries (the pinned torch 2.14.1 wheel is the
  # CUDA build; it runs on the CPU too). Say so up front rather than die half-installed.
  need_gb=8
  free_gb=$(df -Pk .venv | awk 'NR==2 {print int($4 / 1048576)}')
  if [ "${free_gb:-0}" -lt "$need_gb" ]; then
    echo "[setup] warning: $free_gb GB free where .venv/ lives; a full install needs about $need_gb GB" >&2
  fi
  # torch/torchvision first and explicitly: the pinned CPU-usable wheels come from the local wheel cache.
  # --no-cache-dir: pip's download cache would hold a second copy (~0.5 GB) of everything fetched from PyPI.
  log=.venv/pip-install.log
  PIP=(.venv/bin/pip install --no-cache-dir -c constraints.txt)
  if ! { "${PIP[@]}" torch torchvision &&
         "${PIP[@]}" -e '.[all]' &&
         # mediapipe without its opencv-contrib-python dependency (it would replace our headless cv2)
         "${PIP[@]}" --no-deps mediapipe; } >"$log" 2>&1; then
    tail -40 "$log"
    if grep -q "No space left on device" "$log"; then
      echo "[setup] the disk filled up during the install ($(df -Ph .venv | awk 'NR==2 {print $4}') free now);" \
           "free about $need_gb GB and run the command again (it resumes where it stopped)" >&2
    fi
    echo "[setup] pip install failed; full log: $log" >&2; exit 1
  fi
  echo "$want" > "$stamp"
fi
# MediaPipe's hand landmarker comes from the mediapipe==0.10.21 wheel on PyPI (no model hub); skips if built.
if ! .venv/bin/python scripts/mediapipe_bundle.py >.venv/mediapipe-bundle.log 2>&1; then
  tail -5 .venv/mediapipe-bundle.log
  echo "[setup] warning: could not build the MediaPipe hand-landmarker bundle; the 'mediapipe' hand-pose backend is unavailable" >&2
fi
echo "[setup] environment ready: .venv/bin/deft, .venv/bin/deft-robot, .venv/bin/python"
