"""The post-grasp trajectory τ (paper §3.1): the first 40 wrist displacements after the grasp,
extracted from one human demonstration of the task.

``τ`` is a (40, 6) float array of per-step changes ``(dx, dy, dz, droll, dpitch, dyaw)`` in the
**robot base frame** (metres and radians; the rotation part is the change of extrinsic xyz Euler
angles between adjacent steps, wrapped to (−π, π]). Stored as ``.npz`` with its metadata in JSON,
so loading never unpickles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deft_core.geometry import matrix_to_euler_xyz, wrap_angle

TRAJECTORY_STEPS = 40
TRAJECTORY_DIM = 6


@dataclass(frozen=True)
class PostGraspTrajectory:
    """τ with its provenance. ``deltas``: (40, 6) robot-base-frame displacements."""

    deltas: np.ndarray
    task: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = np.asarray(self.deltas, dtype=np.float64)
        if d.shape != (TRAJECTORY_STEPS, TRAJECTORY_DIM):
            raise ValueError(f"a post-grasp trajectory has shape ({TRAJECTORY_STEPS}, {TRAJECTORY_DIM}), got {d.shape}")
        if not np.all(np.isfinite(d)):
            raise ValueError("post-grasp trajectory contains non-finite values")
        object.__setattr__(self, "deltas", d)

    @classmethod
    def from_wrist_poses(cls, positions: np.ndarray, rotations: np.ndarray, task: str = "", meta: dict | None = None) -> "PostGraspTrajectory":
        """Build τ from ≥ 41 consecutive wrist poses starting at the grasp.

        ``positions``: (T, 3) metres; ``rotations``: (T, 3, 3) matrices; both in the robot base frame.
        Fewer than 41 poses is an error; extra poses are ignored (the paper uses the first 40 steps).
        """
        positions = np.asarray(positions, dtype=np.float64)
        rotations = np.asarray(rotations, dtype=np.float64)
        n = TRAJECTORY_STEPS + 1
        if positions.shape[0] < n or rotations.shape[0] < n:
            raise ValueError(f"need at least {n} wrist poses after the grasp, got {min(len(positions), len(rotations))}")
        eul = matrix_to_euler_xyz(rotations[:n])
        dpos = np.diff(positions[:n], axis=0)
        drot = wrap_angle(np.diff(eul, axis=0))
        return cls(np.concatenate([dpos, drot], axis=1), task=task, meta=dict(meta or {}))

    def cumulative(self) -> np.ndarray:
        """(41, 6) offsets from the grasp pose: row 0 is zero, row k is the sum of the first k deltas."""
        return np.concatenate([np.zeros((1, TRAJECTORY_DIM)), np.cumsum(self.deltas, axis=0)])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            np.savez(f, deltas=self.deltas, meta=np.frombuffer(json.dumps({"task": self.task, **self.meta}).encode(), dtype=np.uint8))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PostGraspTrajectory":
        """Read a file written by :meth:`save`; ``FileNotFoundError`` when it is missing, ``ValueError``
        (naming the file) for anything else that is not a τ — a video, a truncated or pickled ``.npz``."""
        import zipfile

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"post-grasp trajectory file not found: {path}")
        hint = "write one with 'deft data trajectory --video DEMO.mp4 --out TAU.npz'"
        try:
            with np.load(path, allow_pickle=False) as z:
                if not hasattr(z, "files") or "deltas" not in z.files:
                    raise ValueError("no 'deltas' array")
                meta = json.loads(bytes(z["meta"]).decode()) if "meta" in z.files else {}
                deltas = z["deltas"]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not a post-grasp trajectory .npz ({exc}); {hint}") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: its metadata is not a JSON object; {hint}")
        return cls(deltas, task=str(meta.pop("task", "")), meta=meta)

    def digest(self) -> str:
        """A short content hash of the displacements (16 hex digits of SHA-256 over float64 bytes):
        what a fine-tuning run records to tell one τ from another."""
        import hashlib

        return hashlib.sha256(np.ascontiguousarray(self.deltas, dtype=np.float64).tobytes()).hexdigest()[:16]
