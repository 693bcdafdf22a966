"""Build MediaPipe's hand-landmarker ``.task`` bundle from the ``mediapipe==0.10.21`` PyPI wheel.

The current mediapipe (1.2.x) Tasks API loads a hand landmarker from a ``.task`` file: a zip holding
``hand_detector.tflite`` + ``hand_landmarks_detector.tflite``. The models are not downloaded from a
model hub: the ``mediapipe==0.10.21`` wheel ships them as

    mediapipe/modules/palm_detection/palm_detection_full.tflite   → hand_detector.tflite
    mediapipe/modules/hand_landmark/hand_landmark_full.tflite     → hand_landmarks_detector.tflite

This script downloads that wheel with pip (``pip download mediapipe==0.10.21 --no-deps
--only-binary=:all:``, for this Python and platform), extracts the two files and zips them into the
bundle. Default location: ``$DEFT_MEDIAPIPE_TASK`` if set, else ``<sys.prefix>/share/deft/hand_landmarker.task``
(inside the virtual environment), which is where the ``mediapipe`` hand-pose backend looks.

    python scripts/mediapipe_bundle.py                 # build (skips if the bundle already exists)
    python scripts/mediapipe_bundle.py --wheel W.whl   # offline, from a wheel you already have
    python scripts/mediapipe_bundle.py --force --out /path/hand_landmarker.task
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL_SPEC = "mediapipe==0.10.21"
MEMBERS = {
    "hand_detector.tflite": "mediapipe/modules/palm_detection/palm_detection_full.tflite",
    "hand_landmarks_detector.tflite": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
}


def default_bundle_path() -> Path:
    """``$DEFT_MEDIAPIPE_TASK`` or ``<sys.prefix>/share/deft/hand_landmarker.task``."""
    env = os.environ.get("DEFT_MEDIAPIPE_TASK")
    return Path(env) if env else Path(sys.prefix) / "share" / "deft" / "hand_landmarker.task"


def download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", WHEEL_SPEC, "--no-deps", "--only-binary=:all:", "-d", str(dest)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    wheels = glob.glob(str(dest / "mediapipe-0.10.21-*.whl"))
    if res.returncode != 0 or not wheels:
        raise SystemExit(f"pip download failed ({' '.join(cmd)}):\n{res.stderr[-2000:]}")
    return Path(wheels[0])


def build_bundle(wheel: Path, out: Path) -> Path:
    """Extract the two tflite models from ``wheel`` and zip them into ``out`` (atomic write)."""
    with zipfile.ZipFile(wheel) as zw:
        names = set(zw.namelist())
        missing = [src for src in MEMBERS.values() if src not in names]
        if missing:
            raise SystemExit(f"{wheel} does not contain {missing}; is it the {WHEEL_SPEC} wheel?")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zt:
            for dst, src in MEMBERS.items():
                zt.writestr(dst, zw.read(src))
    os.replace(tmp, out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help=f"bundle path (default {default_bundle_path()})")
    p.add_argument("--wheel", type=Path, default=None, help="use this mediapipe-0.10.21 wheel instead of downloading")
    p.add_argument("--force", action="store_true", help="rebuild even if the bundle exists")
    a = p.parse_args(argv)
    out = a.out or default_bundle_path()
    if out.exists() and not a.force:
        print(f"mediapipe bundle already present: {out}")
        return 0
    if a.wheel is not None:
        if not a.wheel.is_file():
            raise SystemExit(f"--wheel {a.wheel}: file not found")
        build_bundle(a.wheel, out)
    else:
        with tempfile.TemporaryDirectory(prefix="deft-mediapipe-") as d:
            build_bundle(download_wheel(Path(d)), out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()[:16]
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, sha256 {digest}…)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
