"""Hand pose at the contact frame → wrist rotation + 45 MANO angles in the project's convention.

Output convention (:mod:`deft_core.schema`): ``wrist_rotation`` axis-angle (3) in the camera frame of
the contact frame, OpenCV axes (x right, y down, z forward); ``hand_pose`` 45 MANO axis-angle values,
right hand, **flat-hand-mean** (zero = flat open hand), MANO joint order index/middle/pinky/ring/thumb.

Backends, chosen by name from :data:`HAND_POSE_BACKENDS` (import strings, imported on use):

- ``hoi4d``: the dataset's refined MANO fits, ``handpose/refinehandpose_right/<seq>/<frame>.pickle``.
  ``poseCoeff[:3]`` is the global (wrist) rotation in the camera frame, ``poseCoeff[3:48]`` the finger
  pose with ``flat_hand_mean=True`` — already our convention, copied unchanged.
- ``frankmocap``: :mod:`pipelines.stages.hand_pose_frankmocap` (a local FrankMocap checkout).
- ``mediapipe``: :mod:`pipelines.stages.hand_pose_mediapipe` (MediaPipe landmarks + MANO skeleton fit).

A backend's ``estimate(record, frame_rgb, contact)`` returns a :class:`HandPose`; ``frame_rgb`` is the
decoded contact frame (backends that read annotations ignore it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from deft_core.schema import HAND_POSE_DIM, WRIST_DIM
from pipelines.sources.base import ClipRecord
from pipelines.stages.contact_frame import ContactResult, _frame_file, load_hoi4d_pickle


class HandPoseError(ValueError):
    """No hand pose could be produced for a clip (the message names the file / reason)."""


@dataclass
class HandPose:
    wrist_rotation: np.ndarray  #: (3,) axis-angle, camera frame (OpenCV axes), radians
    hand_pose: np.ndarray       #: (45,) MANO axis-angle, right hand, flat-hand-mean, radians
    source: str                 #: backend id written to ``hand_pose_source``

    def __post_init__(self) -> None:
        self.wrist_rotation = np.asarray(self.wrist_rotation, np.float64).reshape(-1)
        self.hand_pose = np.asarray(self.hand_pose, np.float64).reshape(-1)
        if self.wrist_rotation.shape != (WRIST_DIM,) or self.hand_pose.shape != (HAND_POSE_DIM,):
            raise HandPoseError(f"{self.source}: wrist {self.wrist_rotation.shape} / pose {self.hand_pose.shape}, expected (3,) / (45,)")
        if not (np.all(np.isfinite(self.wrist_rotation)) and np.all(np.isfinite(self.hand_pose))):
            raise HandPoseError(f"{self.source}: non-finite hand pose")


class HandPoseBackend(Protocol):
    name: str

    def estimate(self, record: ClipRecord, frame_rgb: np.ndarray | None, contact: ContactResult) -> HandPose: ...


def mirror_axis_angle(aa: np.ndarray) -> np.ndarray:
    """Mirror axis-angle rotations across the image's vertical axis (left hand ↔ right hand):
    negate the y and z components of every 3-vector (FrankMocap / WiLoR convention)."""
    a = np.array(aa, np.float64).reshape(-1, 3)
    a[:, 1:] *= -1.0
    return a.reshape(np.shape(aa))


class HOI4DHandPose:
    """Reads HOI4D's refined right-hand MANO fit at the contact frame (no image needed)."""

    name = "hoi4d"

    def estimate(self, record: ClipRecord, frame_rgb: np.ndarray | None, contact: ContactResult) -> HandPose:
        d = Path(record.contact.get("handpose_dir") or "")
        if not d.is_dir():
            raise FileNotFoundError(f"HOI4D hand-pose folder not found: {d}")
        path = _frame_file(d, contact.frame, ".pickle")
        if path is None:
            raise FileNotFoundError(f"HOI4D hand-pose pickle for frame {contact.frame} not found in {d}")
        pose = load_hoi4d_pickle(path)["poseCoeff"]
        if pose.shape != (48,):
            raise HandPoseError(f"{path}: poseCoeff has {pose.size} values, expected 48 (3 global + 45 pose)")
        return HandPose(pose[:3], pose[3:], self.name)


#: backend name → "module:Class"
HAND_POSE_BACKENDS: dict[str, str] = {
    "hoi4d": "pipelines.stages.hand_pose:HOI4DHandPose",
    "frankmocap": "pipelines.stages.hand_pose_frankmocap:FrankMocapHandPose",
    "mediapipe": "pipelines.stages.hand_pose_mediapipe:MediaPipeHandPose",
}


def hand_pose_target(name: str) -> str:
    """The ``"module:Class"`` of a backend name in :data:`HAND_POSE_BACKENDS` (or an explicit import string,
    an out-of-tree backend); ValueError for anything else. Cheap: nothing is imported."""
    target = HAND_POSE_BACKENDS.get(name) or (name if ":" in name else None)
    if target is None:
        raise ValueError(f"unknown hand-pose backend {name!r} (--hand-pose); known: {', '.join(HAND_POSE_BACKENDS)} "
                         "(or module:Class)")
    return target


def make_hand_pose_backend(name: str, **options) -> HandPoseBackend:
    """Instantiate a backend by its name (see :func:`hand_pose_target`)."""
    module, cls = hand_pose_target(name).split(":")
    return getattr(importlib.import_module(module), cls)(**options)
