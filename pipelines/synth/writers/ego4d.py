"""Ego4D FHO layout: ``v2/full_scale/<video_uid>.mp4`` (30 fps) + ``v2/annotations/fho_main.json``.

``fho_main.json`` follows the v2 schema (EGO4D/docs annotations-schemas.md): videos →
annotated_intervals → narrated_actions, each with ``critical_frames`` (video frame numbers, 0-based
frame index of the 30 fps full-scale video), ``clip_critical_frames`` (relative to the interval) and
``frames[]`` boxes ``{x, y, width, height}`` in video pixels. Our choices where the data varies:

- ``pre_frame`` is the action start, ``post_frame`` its end, ``pre_15/30/45`` are 15/30/45 frames
  before ``pre_frame`` (clamped to the clip's first frame), ``pnr_frame`` is 0–3 frames after contact;
- about one valid action in six has no ``contact_frame`` key (loaders must fall back to ``pnr_frame``);
- the grasped object's box is ``object_of_change``, or ``tool`` (structured_noun = the tool) when the
  narration's noun is another object ("scoop the grape with the spoon");
- clips without contact are written with ``is_valid_action: false`` and ``critical_frames: null``;
- a few extra *decoy* actions (``is_rejected`` / ``is_invalid_annotation`` / ``stage: null``) carry
  shifted frames and must be filtered; they are listed in the sidecar's ``filtered_annotations``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipelines.synth.clip import SynthClip
from deft_core.video import VideoWriter
from pipelines.synth.writers.common import (ClipPlan, DatasetWriter, Placement, box_xyxy_valid, clip_box, filled_boxes, slim,
                                            third_person, uuid_from_rng)

FPS = 30.0
FRAME_TYPES = ("pre_45", "pre_30", "pre_15", "pre_frame", "contact_frame", "pnr_frame", "post_frame")


def video_path(video_uid: str) -> str:
    return f"v2/full_scale/{video_uid}.mp4"


ANNOTATION_PATH = "v2/annotations/fho_main.json"


class Ego4DWriter(DatasetWriter):
    name = "ego4d"

    def __init__(self, root: Path, *, seed: int):
        super().__init__(root, seed=seed)
        self.videos: list[dict] = []
        self.filtered: list[dict] = []
        self._writer: VideoWriter | None = None
        self._video: dict | None = None
        self._clips: list[tuple] = []  # (clip, frame offset, plan, action uid) of the open video

    def open_video(self, video_id: str, fps: float) -> None:
        if abs(fps - FPS) > 1e-6:
            raise ValueError(f"Ego4D full-scale videos are 30 fps, plan asked for {fps}")
        self._writer = VideoWriter(self._track(self.root / video_path(video_id)), FPS)
        self._video = {"video_uid": video_id}
        self._clips = []

    def add_clip(self, clip: SynthClip, plan: ClipPlan) -> Placement:
        offset = self._writer.num_frames
        self._writer.append(clip.frames)
        uid = uuid_from_rng(self.rng)
        self._clips.append((slim(clip), offset, plan, uid))
        return Placement(video_id=self._video["video_uid"], video_path=video_path(self._video["video_uid"]),
                         annotation_id=uid, frame_offset=offset)

    def close_video(self) -> None:
        info = self._writer.close()
        uid = self._video["video_uid"]
        W, H = info.width, info.height
        # Split the video's clips into up to two annotated intervals, so clip-relative numbers differ.
        n = len(self._clips)
        groups = [self._clips[: (n + 1) // 2], self._clips[(n + 1) // 2:]] if n > 1 else [self._clips]
        intervals = []
        for group in groups:
            if not group:
                continue
            start = group[0][1]
            end = group[-1][1] + len(group[-1][0].in_contact) - 1
            interval = {
                "clip_id": int(self.rng.integers(1000, 99999)), "clip_uid": uuid_from_rng(self.rng),
                "start_sec": start / FPS, "end_sec": end / FPS, "start_frame": start, "end_frame": end,
                "clip_parent_start_sec": start / FPS, "clip_parent_end_sec": end / FPS,
                "clip_parent_start_frame": start, "clip_parent_end_frame": end, "redacted": False,
                "narrated_actions": [],
            }
            for clip, offset, plan, action_uid in group:
                action = self._action(clip, offset, start, W, H, action_uid)
                interval["narrated_actions"].append(action)
                if clip.has_contact and self.rng.random() < 0.35:
                    interval["narrated_actions"].append(self._decoy(action, clip, start))
            intervals.append(interval)
        self.videos.append({
            "video_uid": uid,
            "video_metadata": {"video_start_pts": 0, "video_base_numerator": 1, "video_base_denominator": 30000,
                               "duration_sec": info.num_frames / FPS, "num_frames": info.num_frames, "fps": FPS,
                               "width": W, "height": H, "rotation": 0},
            "annotated_intervals": intervals,
        })
        self._writer = None

    # --- building one narrated action -------------------------------------------------------
    def _critical(self, clip: SynthClip, offset: int) -> dict | None:
        if not clip.has_contact:
            return None
        pre = clip.action_start
        cf = {"pre_45": max(0, pre - 45), "pre_30": max(0, pre - 30), "pre_15": max(0, pre - 15), "pre_frame": pre,
              "contact_frame": clip.contact_frame,
              "pnr_frame": min(clip.action_end, clip.contact_frame + int(self.rng.integers(0, 4))),
              "post_frame": clip.action_end}
        cf = {k: int(v) + offset for k, v in cf.items()}
        if self.rng.random() < 1 / 6:
            del cf["contact_frame"]  # real annotations sometimes lack it; loaders fall back to pnr_frame
        return cf

    def _boxes(self, clip: SynthClip, t: int, W: int, H: int) -> list[dict]:
        acting, other = f"{clip.hand_side}_hand", ("left_hand" if clip.hand_side == "right" else "right_hand")
        boxes = []
        # The grasped object is the object of change, or a tool when the narration's noun is another object
        # ("scoop the grape with the spoon": the spoon is a tool).
        grasped = ("object_of_change", clip.noun) if clip.object_kind == clip.noun else ("tool", clip.object_kind)
        # the object box is kept while the hand hides the object (the nearest frame's box): Ego4D annotators
        # box the object at its critical frames whether or not it is occluded
        obj = filled_boxes(clip.object_boxes)[t]
        for object_type, box, noun in [(acting, clip.hand_boxes[t], None), (other, clip.other_hand_boxes[t], None),
                                       (grasped[0], obj, grasped[1])]:
            if not box_xyxy_valid(box):
                continue
            x1, y1, x2, y2 = clip_box(box, W, H)
            boxes.append({"object_type": object_type, "structured_noun": noun, "instance_number": 1,
                          "bbox": {"x": round(float(x1), 2), "y": round(float(y1), 2),
                                   "width": round(float(x2 - x1), 2), "height": round(float(y2 - y1), 2)}})
        return boxes

    def _action(self, clip: SynthClip, offset: int, interval_start: int, W: int, H: int, uid: str) -> dict:
        cf = self._critical(clip, offset)
        start, end = clip.action_start + offset, clip.action_end + offset
        narr_t = start + int(self.rng.integers(0, max(1, (end - start) // 3)))
        frames = []
        if cf is not None:
            for ftype in FRAME_TYPES:
                if ftype in cf:
                    frames.append({"frame_type": ftype, "frame_number": cf[ftype],
                                   "boxes": self._boxes(clip, cf[ftype] - offset, W, H)})
        return {
            "uid": uid, "warnings": [], "start_sec": start / FPS, "end_sec": end / FPS,
            "start_frame": start, "end_frame": end, "is_valid_action": cf is not None, "is_partial": False,
            "clip_start_sec": (start - interval_start) / FPS, "clip_end_sec": (end - interval_start) / FPS,
            "clip_start_frame": start - interval_start, "clip_end_frame": end - interval_start,
            "narration_timestamp_sec": narr_t / FPS, "clip_narration_timestamp_sec": (narr_t - interval_start) / FPS,
            "narration_text": f"#C C {third_person(clip.narration)}", "narration_annotation_uid": uuid_from_rng(self.rng),
            "structured_verb": clip.verb.replace(" ", "_"), "freeform_verb": clip.verb,
            "state_transition": None if cf is None else f"{clip.noun} held by hand",
            "critical_frames": cf,
            "clip_critical_frames": None if cf is None else {k: v - interval_start for k, v in cf.items()},
            "frames": frames, "is_rejected": False, "is_invalid_annotation": False, "reject_reason": None,
            "stage": 3,
        }

    def _decoy(self, action: dict, clip: SynthClip, interval_start: int) -> dict:
        """A rejected / invalid / unfinished duplicate with shifted frames that loaders must drop."""
        kind = ["is_rejected", "is_invalid_annotation", "stage"][int(self.rng.integers(0, 3))]
        shift = int(self.rng.integers(5, 15))
        d = json.loads(json.dumps(action))
        d["uid"] = uuid_from_rng(self.rng)
        if d["critical_frames"]:
            d["critical_frames"] = {k: v + shift for k, v in d["critical_frames"].items()}
            d["clip_critical_frames"] = {k: v - interval_start for k, v in d["critical_frames"].items()}
            for f in d["frames"]:
                f["frame_number"] += shift
        if kind == "stage":
            d["stage"] = None
        else:
            d[kind] = True
            d["reject_reason"] = "inaccurate_critical_frames" if kind == "is_rejected" else None
        self.filtered.append({"annotation_id": d["uid"], "duplicate_of": action["uid"], "clip_id": clip.clip_id,
                              "reason": kind})
        return d

    def finish(self) -> None:
        path = self._track(self.root / ANNOTATION_PATH)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": "v2", "date": "synthetic", "description": "DEFT synthetic FHO annotations (Ego4D v2 schema)",
               "metadata": {"generator": "deft data synth ego4d"}, "videos": self.videos}
        path.write_text(json.dumps(doc, indent=1))
