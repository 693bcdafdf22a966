"""The ground-truth sidecar of a synthetic dataset: ``<root>/_groundtruth/``.

Only evaluation code reads it (the extraction pipeline must not). Layout:

- ``manifest.json``: ``{dataset, seed, num_clips, width, height, generator_version, corruptions:[...],
  filtered_annotations:[...], demos:{task: {video, wrist}}}``
- ``clips.jsonl``: one JSON object per clip (schema in docs/synthetic-data.md): identity (clip_id,
  dataset, video_id, video_path, annotation_id), what happens (task, verb, noun, narration,
  object_kind, object_variant, object_split, hand_side, has_contact), frames (num_frames, fps,
  frame_offset, action/contact frames both clip-relative and in the dataset's own numbering) and
  ``corrupt`` (null or the corruption kind).
- ``<clip_id>.npz``: per-frame arrays, clip-relative frame index t = 0..T-1:
  ``hand_boxes``/``other_hand_boxes``/``object_boxes`` (T, 4) px x1,y1,x2,y2 (NaN = not visible),
  ``in_contact`` (T,), ``contact_points`` (N, 2) px with ``contact_points_frame`` (N,) their frame t,
  ``wrist_rotation`` (T, 3) axis-angle in the camera frame (OpenCV axes), ``hand_pose`` (T, 45)
  MANO flat-hand-mean right-hand convention, ``hand_trans`` (T, 3) m camera frame, ``keypoints_2d``
  (T, 21, 2) px, ``camera_pose_world`` / ``wrist_pose_world`` (T, 4, 4), ``K`` (3, 3).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from deft_core.version import __version__ as _VERSION
from pipelines.synth.clip import SynthClip
from pipelines.synth.writers.common import ClipPlan, Placement

SIDECAR_DIR = "_groundtruth"


def _dataset_frame(frame: int | None, offset: int) -> int | None:
    return None if frame is None else int(frame) + offset


class GroundTruthWriter:
    """Accumulates the sidecar of one dataset while clips are written."""

    def __init__(self, root: Path, *, dataset: str, seed: int, width: int, height: int):
        self.root = Path(root)
        self.dir = self.root / SIDECAR_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self.manifest = {"dataset": dataset, "seed": seed, "num_clips": 0, "width": width, "height": height,
                         "generator_version": _VERSION, "corruptions": [], "filtered_annotations": [], "demos": {}}
        self._jsonl = (self.dir / "clips.jsonl").open("w")
        self.records: list[dict] = []

    def add(self, clip: SynthClip, plan: ClipPlan, placement: Placement) -> dict:
        off = placement.frame_offset
        rec = {
            "clip_id": clip.clip_id, "dataset": self.manifest["dataset"], "seed": clip.seed,
            "video_id": placement.video_id, "video_path": placement.video_path,
            "annotation_id": placement.annotation_id,
            "task": clip.task, "verb": clip.verb, "noun": clip.noun, "narration": clip.narration,
            "object_kind": clip.object_kind, "object_variant": clip.object_variant, "object_split": plan.object_split,
            "hand_side": clip.hand_side, "has_contact": bool(clip.has_contact), "distractors": list(clip.distractors),
            "num_frames": clip.num_frames, "fps": float(plan.fps), "width": clip.size[0], "height": clip.size[1],
            "frame_offset": off,
            "action_start_clip": int(clip.action_start), "action_end_clip": int(clip.action_end),
            "contact_frame_clip": None if clip.contact_frame is None else int(clip.contact_frame),
            "action_start": _dataset_frame(clip.action_start, off), "action_end": _dataset_frame(clip.action_end, off),
            "contact_frame": _dataset_frame(clip.contact_frame, off),
            "corrupt": plan.corrupt, "extra": placement.extra,
        }
        pts = [np.asarray(p, float).reshape(-1, 2) for p in clip.contact_points]
        np.savez_compressed(
            self.dir / f"{clip.clip_id}.npz",
            hand_boxes=clip.hand_boxes.astype(np.float32), other_hand_boxes=clip.other_hand_boxes.astype(np.float32),
            object_boxes=clip.object_boxes.astype(np.float32), in_contact=clip.in_contact.astype(bool),
            contact_points=np.concatenate(pts + [np.zeros((0, 2))]).astype(np.float32),
            contact_points_frame=np.concatenate([np.full(len(p), t, np.int32) for t, p in enumerate(pts)] + [np.zeros(0, np.int32)]),
            wrist_rotation=clip.mano_pose[:, :3].astype(np.float32), hand_pose=clip.mano_pose[:, 3:].astype(np.float32),
            hand_trans=clip.hand_trans.astype(np.float32), keypoints_2d=clip.keypoints_2d.astype(np.float32),
            camera_pose_world=clip.camera_pose_world.astype(np.float64), wrist_pose_world=clip.wrist_pose_world.astype(np.float64),
            K=np.asarray(clip.K, np.float64))
        self._jsonl.write(json.dumps(rec) + "\n")
        self._jsonl.flush()
        self.records.append(rec)
        self.manifest["num_clips"] += 1
        return rec

    def close(self) -> None:
        if not self._jsonl.closed:
            self._jsonl.close()
        (self.dir / "manifest.json").write_text(json.dumps(self.manifest, indent=1))


# ---- readers (for evaluation code and tests) -------------------------------------------------

def read_manifest(root: str | Path) -> dict:
    """The sidecar's manifest.json of a generated dataset root."""
    return json.loads((Path(root) / SIDECAR_DIR / "manifest.json").read_text())


def read_clip_records(root: str | Path) -> list[dict]:
    """All per-clip records of ``clips.jsonl``, in generation order."""
    path = Path(root) / SIDECAR_DIR / "clips.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_clip_arrays(root: str | Path, clip_id: str) -> dict[str, np.ndarray]:
    """Per-frame arrays of one clip (see module doc); ``contact_points_per_frame`` is added as a list."""
    with np.load(Path(root) / SIDECAR_DIR / f"{clip_id}.npz") as z:
        out = {k: z[k] for k in z.files}
    T = out["in_contact"].shape[0]
    out["contact_points_per_frame"] = [out["contact_points"][out["contact_points_frame"] == t] for t in range(T)]
    return out
