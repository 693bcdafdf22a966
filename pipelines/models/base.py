"""Model backends for the extraction jobs: shared types, the backend tables and their factories.

Three kinds of model stage, each an explicit table of ``"module:Class"`` import strings (imported
only when a backend is made, so a job that does not use a model never imports ``transformers`` or
``detectron2``):

- :data:`HAND_OBJECT_BACKENDS` — hand-object contact detection on raw video frames, producing the
  100DOH / EPIC-100 detection structure (:class:`pipelines.formats.epic_hoa.Detections`):
  ``hands23``, ``detic``;
- :data:`OBJECT_BOX_BACKENDS` — open-vocabulary object boxes queried with the narration's noun, for
  the object crop: ``owlv2``, ``grounding-dino``, ``detic``;
- :data:`SEGMENT_BACKENDS` — promptable segmentation (``sam``), defined in :mod:`deft_core.segment` so
  the robot process can use it without Ray.

Every backend takes ``weights`` (a local directory, or for ``transformers`` backends a hub id already
in the local Hugging Face cache — nothing is downloaded) and ``device`` (``"auto"``: CUDA when
visible, else CPU). A missing weight directory raises :class:`WeightsNotFound` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from deft_core.registry import load_class
from deft_core.segment import (MODELS_INSTALL, SEGMENT_BACKENDS, WeightsNotFound, pick_device, require,
                               resolve_pretrained_dir)

__all__ = ["BoxDetection", "ObjectBoxDetector", "HandObjectDetector", "WeightsNotFound", "MODELS_INSTALL",
           "DETECTRON2_INSTALL", "HAND_OBJECT_BACKENDS", "OBJECT_BOX_BACKENDS", "SEGMENT_BACKENDS",
           "make_hand_object_detector", "make_object_boxer", "make_segmenter", "pick_device", "require",
           "resolve_pretrained_dir", "as_rgb"]

DETECTRON2_INSTALL = ("detectron2 is not on PyPI; install it from source: "
                      "pip install 'git+https://github.com/facebookresearch/detectron2.git' "
                      "(needs torch and a C++/CUDA toolchain matching it)")


@dataclass
class BoxDetection:
    """One detected box in pixels of the queried image: (x1, y1, x2, y2), x right, y down."""

    box: np.ndarray
    score: float
    label: str

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float64).reshape(4)
        self.score = float(self.score)


class ObjectBoxDetector(Protocol):
    """Open-vocabulary boxes: ``detect(images, queries)`` → per image, detections sorted by score
    (descending). ``queries[i]`` is the list of phrases for image ``i`` (e.g. the narration's noun)."""

    name: str

    def detect(self, images: Sequence[np.ndarray], queries: Sequence[Sequence[str]]) -> list[list[BoxDetection]]: ...


class HandObjectDetector(Protocol):
    """Hand-object contact detection: ``detect(images)`` → one EPIC ``Detections`` message per image
    (boxes normalised to [0, 1] of that image, offsets as the release stores them)."""

    name: str

    def detect(self, images: Sequence[np.ndarray]) -> list: ...


def as_rgb(image, what: str = "image") -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"{what}: expected an RGB uint8 array (H, W, 3), got {img.dtype} {img.shape}")
    return img


#: hand-object detector name → "module:Class"
HAND_OBJECT_BACKENDS: dict[str, str] = {
    "hands23": "pipelines.models.hand_object:Hands23Detector",
    "detic": "pipelines.models.hand_object:DeticHandObjectDetector",
}

#: open-vocabulary box detector name → "module:Class"
OBJECT_BOX_BACKENDS: dict[str, str] = {
    "owlv2": "pipelines.models.open_vocab:Owlv2Boxes",
    "grounding-dino": "pipelines.models.open_vocab:GroundingDinoBoxes",
    "detic": "pipelines.models.open_vocab:DeticBoxes",
}


def _make(table: dict[str, str], kind: str, name: str, options: dict):
    return load_class(table, name, f"{kind} backend")(**options)


def make_hand_object_detector(name: str, **options) -> HandObjectDetector:
    """Instantiate the hand-object backend ``name`` (see :data:`HAND_OBJECT_BACKENDS`)."""
    return _make(HAND_OBJECT_BACKENDS, "hand-object", name, options)


def make_object_boxer(name: str, **options) -> ObjectBoxDetector:
    """Instantiate the open-vocabulary box backend ``name`` (see :data:`OBJECT_BOX_BACKENDS`)."""
    return _make(OBJECT_BOX_BACKENDS, "object-box", name, options)


def make_segmenter(name: str = "sam", **options):
    """Instantiate the segmentation backend ``name`` (see :data:`SEGMENT_BACKENDS`)."""
    return _make(SEGMENT_BACKENDS, "segmentation", name, options)
