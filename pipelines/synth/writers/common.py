"""What every dataset writer shares: the clip plan, the writer interface, and small helpers.

A generated dataset is a sequence of *videos*, each holding one or more rendered clips back to back
(Ego4D and EPIC videos contain several actions; an HOI4D sequence is one clip). The generator
(``pipelines.synth.generate``) plans the clips, renders them one at a time and hands each to the
dataset's writer, which appends the frames to the open video and remembers the annotation.
"""

from __future__ import annotations

import dataclasses
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.synth.clip import SynthClip


@dataclass
class ClipPlan:
    """One clip to render and where it goes."""

    clip_id: str          #: e.g. "clip_0007"
    index: int            #: position in the dataset, 0-based
    seed: int             #: render seed
    task: str             #: deft_core.tasks name
    hand_side: str        #: "right" | "left"
    has_contact: bool
    object_split: str     #: "train" | "test" object variants
    fps: float            #: nominal fps of the video this clip is part of
    video_id: str         #: dataset-native video id (Ego4D video_uid, EPIC PXX_YY, HOI4D sequence path)
    corrupt: str | None = None  #: corruption kind applied to this clip's inputs (see writers.corrupt)


@dataclass
class Placement:
    """Where a written clip ended up, in the dataset's own terms (recorded in the ground truth)."""

    video_id: str
    video_path: str           #: relative to the dataset root
    annotation_id: str        #: Ego4D narrated-action uid / EPIC narration_id / HOI4D sequence path
    frame_offset: int         #: dataset frame number = clip frame (0-based) + frame_offset
    extra: dict = field(default_factory=dict)


class DatasetWriter(ABC):
    """Writes one dataset's native layout under ``root``. Call order per video:
    ``open_video`` → ``add_clip`` (one or more) → ``close_video``; ``finish`` once at the end."""

    name: str = ""

    def __init__(self, root: Path, *, seed: int):
        self.root = Path(root)
        self.rng = np.random.default_rng([seed, 0xD5])
        self.files_written: set[Path] = set()

    @abstractmethod
    def open_video(self, video_id: str, fps: float) -> None: ...

    @abstractmethod
    def add_clip(self, clip: SynthClip, plan: ClipPlan) -> Placement: ...

    @abstractmethod
    def close_video(self) -> None: ...

    @abstractmethod
    def finish(self) -> None:
        """Write the dataset-level annotation files."""

    def _track(self, path: Path) -> Path:
        self.files_written.add(Path(path))
        return Path(path)


def uuid_from_rng(rng: np.random.Generator) -> str:
    """A reproducible RFC-4122 version-4 UUID string from ``rng``."""
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def box_xyxy_valid(box: np.ndarray) -> bool:
    """True when a (4,) x1, y1, x2, y2 box is finite and has positive area."""
    return bool(np.all(np.isfinite(box)) and box[2] > box[0] and box[3] > box[1])


def filled_boxes(boxes: np.ndarray) -> np.ndarray:
    """(T, 4) boxes with invalid rows (object hidden, e.g. behind the hand) replaced by the nearest valid
    frame's box, earlier frame on a tie — where an annotator who saw the object a moment before would draw
    it. Rows stay NaN only when no frame has a valid box."""
    b = np.asarray(boxes, float).copy()
    ok = np.array([box_xyxy_valid(x) for x in b])
    if ok.any() and not ok.all():
        idx = np.flatnonzero(ok)
        for t in np.flatnonzero(~ok):
            b[t] = b[idx[np.abs(idx - t).argmin()]]
    return b


def clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip an x1, y1, x2, y2 pixel box to the image ``[0, width] x [0, height]``."""
    return np.clip(np.asarray(box, float), 0, [width, height, width, height])


def third_person(verb_phrase: str) -> str:
    """``"pick up the cup"`` → ``"picks up the cup"`` (conjugates the first word, for Ego4D narrations)."""
    first, _, rest = verb_phrase.partition(" ")
    if first.endswith(("s", "sh", "ch", "x", "z", "o")):
        first += "es"
    elif first.endswith("y") and len(first) > 1 and first[-2] not in "aeiou":
        first = first[:-1] + "ies"
    else:
        first += "s"
    return f"{first} {rest}".strip()


def slim(clip: SynthClip) -> SynthClip:
    """A copy of ``clip`` without its images (frames and depth), to keep annotations of a long video cheaply.

    Use ``len(clip.in_contact)`` for its frame count afterwards.
    """
    return dataclasses.replace(clip, frames=clip.frames[:0], depth=None)
