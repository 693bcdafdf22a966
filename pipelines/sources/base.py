"""The canonical clip record every source produces, and the source registry.

A :class:`ClipRecord` is one annotated action of one video: metadata only, no pixels. Frame numbers
are in the dataset's **native numbering** (EPIC-100: 1-based RGB frame numbers; Ego4D: 0-based video
frame numbers of the canonical 30 fps video; HOI4D: 0-based frame index of ``align_rgb/image.mp4``);
``frame_base`` says which, and ``decode_index(frame)`` converts to the 0-based index a decoder uses.

``contact`` carries the dataset's candidate contact information, JSON-serialisable:

- EPIC-100: ``{"detections_path": str}`` (the hand-object pickle of the video);
- Ego4D: ``{"critical_frames": {name: frame}, "contact_frame": int, "frame_width": int,
  "frame_height": int, "boxes": {frame_type: {"frame_number": int, "<object_type>": [[x1,y1,x2,y2], ...]}}}``
  with boxes in pixels of the annotated (full-scale) video;
- HOI4D: ``{"handpose_dir": str, "handpose_left_dir": str | None, "intrinsics_path": str | None,
  "objpose_dir": str | None, "events": [{"event", "start", "end"} seconds], "grasp_frame": int | None}``.

Records round-trip through flat dicts (:meth:`ClipRecord.to_row` / :meth:`ClipRecord.from_row`) so
they travel through Ray Data / pandas batches as plain columns.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping, Protocol

from deft_core.schema import DATASETS, make_sample_id


class SourceError(ValueError):
    """An annotation file or dataset layout that cannot be read (the message names the file/field)."""


@dataclass
class ClipRecord:
    """One annotated action of one video (metadata only). Frame numbers are native (see module doc)."""

    dataset: str
    video_id: str
    action_id: str
    video_path: str
    fps: float                    #: frames per second of ``video_path``
    first_frame: int              #: the clip's first frame v1 (native numbering)
    last_frame: int               #: the clip's last frame, inclusive (native numbering)
    text: str = ""                #: raw narration / task text (normalised later by the text stage)
    verb: str | None = None
    noun: str | None = None
    hand_hint: str | None = None  #: "right", "left", "both" or None when the annotation does not say
    frame_base: int = 0           #: 1 when frame numbers are 1-based (EPIC), else 0
    frame_rate: float = 0.0       #: rate of the native frame numbering, frames/s (0: same as ``fps``)
    contact: dict = field(default_factory=dict)
    sample_id: str = ""

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise SourceError(f"unknown dataset {self.dataset!r}; expected one of {DATASETS}")
        if not self.sample_id:
            self.sample_id = make_sample_id(self.dataset, self.video_id, self.action_id)
        if self.last_frame < self.first_frame:
            raise SourceError(f"{self.dataset} {self.video_id} {self.action_id}: last_frame {self.last_frame} < first_frame {self.first_frame}")

    @property
    def num_frames(self) -> int:
        return self.last_frame - self.first_frame + 1

    @property
    def numbering_rate(self) -> float:
        return self.frame_rate if self.frame_rate > 0 else self.fps

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.numbering_rate if self.numbering_rate > 0 else 0.0

    def decode_index(self, frame: int) -> int:
        """Native frame number → 0-based index into the decoded video (through time when the
        numbering rate differs from the video's fps, as for EPIC-55 videos numbered at 60 fps)."""
        k = int(frame) - self.frame_base
        if self.frame_rate > 0 and abs(self.frame_rate - self.fps) > 1e-6:
            return int(round(k * self.fps / self.frame_rate))
        return k

    def to_row(self) -> dict[str, Any]:
        """Flat dict of scalars (``contact`` as a JSON string) for pandas / Ray Data batches."""
        d = asdict(self)
        d["contact"] = json.dumps(self.contact, sort_keys=True)
        return d

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "ClipRecord":
        d = {k: row[k] for k in cls.__dataclass_fields__ if k in row}
        contact = d.get("contact", {})
        if isinstance(contact, str):
            d["contact"] = json.loads(contact) if contact else {}
        for k in ("first_frame", "last_frame", "frame_base"):
            if k in d:
                d[k] = int(d[k])
        d["fps"] = float(d["fps"])
        if "frame_rate" in d:
            d["frame_rate"] = float(d["frame_rate"])
        for k in ("verb", "noun", "hand_hint"):  # pandas turns None into NaN
            if k in d and not isinstance(d[k], str):
                d[k] = None
        return cls(**d)


def source_error(dataset: str, video_id: str, action_id: str, error: str) -> dict[str, str]:
    """An errors-table row (stage ``source``) for an annotation row that could not be parsed."""
    return {"sample_id": make_sample_id(dataset, video_id, action_id), "dataset": dataset,
            "video_id": video_id, "stage": "source", "error": error}


class Source(Protocol):
    """A dataset reader. ``records()`` is a generator: records are produced lazily, one at a time."""

    dataset: str

    #: errors-table rows (:func:`source_error`) for annotation rows that were malformed and skipped
    bad_rows: list

    def records(self) -> Iterator[ClipRecord]: ...


#: source name → "module:Class". Classes take ``(root, **options)``.
SOURCES: dict[str, str] = {
    "ego4d": "pipelines.sources.ego4d:Ego4DSource",
    "epic_kitchens": "pipelines.sources.epic_kitchens:EpicKitchensSource",
    "hoi4d": "pipelines.sources.hoi4d:HOI4DSource",
}


def open_source(name: str, root: str, **options: Any) -> Source:
    """Instantiate the source registered as ``name`` (see :data:`SOURCES`)."""
    try:
        target = SOURCES[name]
    except KeyError:
        raise SourceError(f"unknown source {name!r}; known: {', '.join(SOURCES)}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(root, **options)
