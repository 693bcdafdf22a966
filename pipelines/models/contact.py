"""Model-based contact frames for raw video: a hand-object model + the EPIC-100 contact rule.

:func:`detect_clip_hand_objects` decodes a clip's frames (every ``stride``-th native frame from v1 to
the clip's end, at most ``max_frames``), runs a hand-object backend on them and writes the detections
in the EPIC-100 release format (a pickled ``list[bytes]`` of ``Detections``, element ``i`` =
``frame_number`` ``i + 1``) with the native frame number of each element alongside. This is the GPU
part; it runs in :class:`pipelines.models.actors.HandObjectActor` and records its result in the clip
record's ``contact["model_detections"] = {"path", "frames", "backend"}``.

:class:`ModelContact` implements :class:`pipelines.stages.contact_frame.ContactFrameDetector`: it
reads those detections (or computes them itself when given a backend and they are absent) and
applies :class:`~pipelines.stages.contact_frame.EpicDetectionsContact` unchanged — the rule the
EPIC-100 release detections get (right hand, PORTABLE_OBJECT, smoothed, first run ≥ ``min_run``
sampled frames, active object) — mapping the answer back to native frame numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from pipelines.formats.epic_hoa import write_hand_object_pickle
from pipelines.sources.base import ClipRecord
from pipelines.stages.contact_frame import ContactError, ContactResult, EpicDetectionsContact
from pipelines.stages.video import read_frames


def clip_frames(record: ClipRecord, stride: int = 1, max_frames: int | None = None) -> list[int]:
    """Native frame numbers to run the model on: ``first_frame, first_frame + stride, …, last_frame``,
    thinned evenly to at most ``max_frames`` (keeping the first)."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    frames = list(range(record.first_frame, record.last_frame + 1, stride))
    if max_frames is not None and len(frames) > max_frames:
        idx = np.unique(np.linspace(0, len(frames) - 1, max_frames).round().astype(int))
        frames = [frames[i] for i in idx]
    return frames


def detections_path(out_dir: str | Path, record: ClipRecord, backend: str) -> Path:
    """``OUT/hand-objects/<backend>/<sample_id>.pkl`` (sample ids are filesystem-safe hex; others hashed)."""
    sid = record.sample_id
    name = sid if sid.replace("-", "").replace("_", "").isalnum() else hashlib.sha1(sid.encode()).hexdigest()
    return Path(out_dir) / "hand-objects" / backend / f"{name}.pkl"


def detect_clip_hand_objects(record: ClipRecord, detector, out_dir: str | Path, stride: int = 1,
                             max_frames: int | None = 256, batch_size: int = 16) -> dict:
    """Run ``detector`` (a :class:`~pipelines.models.base.HandObjectDetector`) on the clip's sampled
    frames, write the EPIC-format pickle, return ``{"path", "frames", "backend"}``. Idempotent: an
    existing pickle for the same frames is reused."""
    frames = clip_frames(record, stride, max_frames)
    path = detections_path(out_dir, record, detector.name)
    done = path.with_suffix(".frames.npy")
    if path.is_file() and done.is_file() and np.load(done).tolist() == frames:
        return {"path": str(path), "frames": frames, "backend": detector.name}
    dets = []
    for k in range(0, len(frames), batch_size):
        chunk = frames[k:k + batch_size]
        images = read_frames(record.video_path, [record.decode_index(f) for f in chunk])
        dets += detector.detect(list(images))
    for i, d in enumerate(dets):
        d.frame_number, d.video_id = i + 1, record.video_id
    write_hand_object_pickle(path, dets)
    np.save(done, np.asarray(frames, dtype=np.int64))  # written last: marks the pickle complete
    return {"path": str(path), "frames": frames, "backend": detector.name}


class ModelContact:
    """Contact frame from model detections (see module doc). Options of the EPIC rule
    (``hand_threshold``, ``object_threshold``, ``min_run``, …) pass through ``rule_options``; with
    ``detector`` (an instance, or a backend name + ``detector_options``) and ``out_dir`` it runs the model
    itself for records the GPU stage has not processed; otherwise such records fail with a ContactError."""

    def __init__(self, detector=None, detector_options: dict | None = None, out_dir: str | Path | None = None,
                 stride: int = 1, max_frames: int | None = 256, **rule_options):
        if isinstance(detector, str):
            from pipelines.models.base import make_hand_object_detector

            detector = make_hand_object_detector(detector, **(detector_options or {}))
        self.detector, self.out_dir, self.stride, self.max_frames = detector, out_dir, stride, max_frames
        self.rule = EpicDetectionsContact(**rule_options)

    def detect(self, record: ClipRecord, frame_size: tuple[int, int]) -> ContactResult:
        info = record.contact.get("model_detections")
        if not info:
            if record.contact.get("model_detections_error") and self.detector is None:
                raise ContactError(f"hand-object model failed: {record.contact['model_detections_error']}")
            if self.detector is None or self.out_dir is None:
                raise ContactError("no model detections for this clip (run the hand-object model stage first, "
                                   "or give ModelContact a detector and out_dir)")
            info = detect_clip_hand_objects(record, self.detector, self.out_dir, self.stride, self.max_frames)
        frames = [int(f) for f in info["frames"]]
        if not frames:
            raise ContactError("model detections cover no frames")
        # The pickle is numbered 1..M over the sampled frames: run the EPIC rule in that numbering.
        shim = dataclasses.replace(record, first_frame=1, last_frame=len(frames), frame_base=1, frame_rate=0.0,
                                   contact={"detections_path": info["path"]}, sample_id=record.sample_id)
        res = self.rule.detect(shim, frame_size)
        res.frame = frames[res.frame - 1]
        return res
