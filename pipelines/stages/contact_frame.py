"""Contact-frame detection: the first frame where the right hand touches a portable object.

Every detector implements :class:`ContactFrameDetector` and returns a :class:`ContactResult` with the
frame (native numbering) and the hand and object boxes there, in pixels of the decoded frame
(x right, y down). Detectors are chosen by dataset name in :data:`DETECTORS` (import strings); a
model-based detector for raw video can be added under a new name with the same interface.

- ``epic_kitchens``: the release's hand-object detections, HOI-Forecast's rule: a frame is in contact
  when a RIGHT hand in state PORTABLE_OBJECT scores ≥ ``hand_threshold``; the 0/1 series is smoothed with a 3-tap box filter thresholded at 0.5 (a
  one-frame glitch is removed, a one-frame gap is filled); the first frame of the first contact run of
  at least ``min_run`` frames in the clip is the contact frame. The active object (score ≥ ``object_threshold``, box overlapping the
  hand box) is the one whose centre is nearest the hand's predicted object point (hand-box centre + ``object_offset``), taken
  from the first frame of the contact run where an object is detected (the hand often occludes it).
- ``ego4d``: the annotated ``contact_frame`` (falling back to ``pnr_frame``) and the ``right_hand`` and
  ``object_of_change`` (else ``tool``) boxes of that frame.
- ``hoi4d``: the annotated ``Grasp`` event start when present (boxes from geometry at that frame), else
  geometry: the right hand's 2-D keypoints (``kps2D`` of the refined hand-pose pickles) against
  the object's projected 3-D box (``objpose`` + intrinsics); contact when at least ``min_tips`` of the
  five fingertips lie inside the projected box grown by ``margin_px``, smoothed as for EPIC.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from deft_core.geometry import axis_angle_to_matrix
from deft_core.registry import load_class
from pipelines.sources.base import ClipRecord


class ContactError(ValueError):
    """No contact could be established for a clip (the message says why)."""


@dataclass
class ContactResult:
    frame: int                 #: contact frame, native numbering of the record
    hand_box: np.ndarray       #: (4,) x1, y1, x2, y2 of the right hand, decoded-frame pixels
    object_box: np.ndarray     #: (4,) the touched object, same frame
    hand_score: float | None = None
    object_score: float | None = None
    side: str = "right"
    other_boxes: list | None = None  #: boxes of other hands at that frame (masked for the homography)


class ContactFrameDetector(Protocol):
    def detect(self, record: ClipRecord, frame_size: tuple[int, int]) -> ContactResult:
        """``frame_size`` = (width, height) of the decoded video, used to scale annotation boxes."""
        ...


def smooth_contact(series: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """3-tap box filter (zero-padded) of a 0/1 contact series, thresholded at ``threshold``."""
    s = np.asarray(series, dtype=np.float64)
    if s.size == 0:
        return s.astype(bool)
    return np.convolve(s, np.ones(3) / 3.0, mode="same") >= threshold


def first_run_start(smoothed: np.ndarray) -> int | None:
    idx = np.flatnonzero(smoothed)
    return int(idx[0]) if idx.size else None


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) index pairs, inclusive, of the True runs of a boolean series."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(d[::2], d[1::2])]


def _box_center(b) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    return np.array([(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0])


# ----------------------------------------------------------------------------------------- EPIC-100
@dataclass
class EpicDetectionsContact:
    hand_threshold: float = 0.1
    object_threshold: float = 0.1
    smooth_threshold: float = 0.5
    min_run: int = 3           #: a contact run shorter than this (after smoothing) is noise
    touch_margin: float = 0.01  #: object must overlap the hand box grown by this (normalised units)

    def frame_hand(self, det):
        """The best-scoring RIGHT hand in PORTABLE_OBJECT contact above threshold at one frame, or None."""
        from pipelines.formats.epic_hoa import HandSide, HandState

        hands = [h for h in det.hands if h.side == HandSide.RIGHT and h.state == HandState.PORTABLE_OBJECT
                 and h.score >= self.hand_threshold]
        return max(hands, key=lambda h: h.score) if hands else None

    def active_object(self, det, hand):
        """Among objects (score ≥ threshold) overlapping the hand box, the one whose centre is nearest the
        hand's predicted object point (hand-box centre + offset); None if no object touches the hand."""
        hb = hand.bbox
        m = self.touch_margin
        objects = [o for o in det.objects if o.score >= self.object_threshold
                   and o.bbox.left <= hb.right + m and o.bbox.right >= hb.left - m
                   and o.bbox.top <= hb.bottom + m and o.bbox.bottom >= hb.top - m]
        if not objects:
            return None
        target = np.array([(hb.left + hb.right) / 2 + hand.object_offset.x, (hb.top + hb.bottom) / 2 + hand.object_offset.y])
        return min(objects, key=lambda o: float(np.sum((_box_center([o.bbox.left, o.bbox.top, o.bbox.right, o.bbox.bottom]) - target) ** 2)))

    def detect(self, record: ClipRecord, frame_size: tuple[int, int]) -> ContactResult:
        """Contact = the hand's state (as HOI-Forecast's ``compute_contact``); the object box comes from the
        contact frame or, when the object is not detected there (occluded by the hand), from the nearest
        frame of the same contact run that has one."""
        path = record.contact.get("detections_path")
        if not path:
            raise ContactError("record has no detections_path")
        if not Path(path).exists():
            raise FileNotFoundError(f"hand-object pickle not found: {path}")
        dets = aligned_detections(load_detections(path), path, record.first_frame, record.last_frame)
        lo, hi = record.first_frame, min(record.last_frame, len(dets))  # 1-based frame numbers
        if hi < lo:
            raise ContactError(f"{path}: {len(dets)} frames of detections, clip starts at frame {lo}")
        hands = [self.frame_hand(dets[f - 1]) for f in range(lo, hi + 1)]
        smoothed = smooth_contact(np.array([h is not None for h in hands]), self.smooth_threshold)
        start = end = None
        for a, b in runs(smoothed):
            if b - a + 1 >= self.min_run:
                start, end = a, b
                break
        if start is None:
            raise ContactError(f"no right-hand portable-object contact run of >= {self.min_run} frames in frames {lo}-{hi}")
        # frames of the run (and its smoothing window) with a raw hand detection, nearest the run start first
        window = range(max(0, start - 1), min(len(hands), end + 2))
        candidates = sorted((i for i in window if hands[i] is not None), key=lambda i: (abs(i - start), i))
        if not candidates:
            raise ContactError(f"contact run at frame {lo + start} has no hand detection")
        k = obj = None
        for i in candidates:
            obj = self.active_object(dets[lo + i - 1], hands[i])
            if obj is not None:
                k = i
                break
        if obj is None:
            raise ContactError(f"no object scoring >= {self.object_threshold} touches the hand during the contact run at frames {lo + start}-{lo + end}")
        hand = hands[candidates[0]]
        w, h = frame_size
        scale = np.array([w, h, w, h], dtype=np.float64)
        to_px = lambda b: np.array([b.left, b.top, b.right, b.bottom]) * scale  # noqa: E731
        others = [to_px(x.bbox) for x in dets[lo + candidates[0] - 1].hands if x is not hand]
        return ContactResult(lo + start, to_px(hand.bbox), to_px(obj.bbox), float(hand.score), float(obj.score),
                             other_boxes=others)


def load_detections(path: str | Path) -> list:
    """A video's hand-object pickle, parsed (:func:`pipelines.formats.epic_hoa.read_hand_object_pickle`),
    cached per process for the last two files: a video holds many clips, listed one after another, and a
    long video's pickle (100k+ frames) took ~0.25 s to parse for every one of them. Keyed by path, size and
    modification time, so a replaced file is read again; a failed read is not cached. Callers must not
    modify the returned list or its messages."""
    st = os.stat(path)
    return _parsed_detections(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _parsed_detections(path: str, size: int, mtime_ns: int) -> list:
    from pipelines.formats.epic_hoa import read_hand_object_pickle

    return read_hand_object_pickle(path)


def aligned_detections(dets: list, path: str, lo: int, hi: int) -> list:
    """``dets`` with element ``i`` holding frame ``i + 1`` over the clip's frames ``lo..hi``: as released,
    unchanged; a pickle whose ``frame_number`` s do not follow the list (the errata named misaligned
    detections for some videos; HOI-Forecast asserts it) is re-indexed by frame number, and a clip frame
    with no detection then is a :class:`ContactError` rather than a silently shifted contact frame."""
    top = min(hi, len(dets))
    if all(dets[f - 1].frame_number in (f, 0) for f in range(lo, top + 1)):  # 0: a writer that left it unset
        return dets
    by_frame = {int(d.frame_number): d for d in dets if d.frame_number > 0}
    last = max(by_frame, default=0)
    missing = [f for f in range(lo, min(hi, last) + 1) if f not in by_frame]
    if missing:
        raise ContactError(f"{path}: detections are not in frame order and frame {missing[0]} of the clip has "
                           f"none ({len(missing)} of frames {lo}-{min(hi, last)} missing)")
    return [by_frame.get(f, type(dets[0])()) for f in range(1, last + 1)]


# -------------------------------------------------------------------------------------------- Ego4D
@dataclass
class Ego4DAnnotatedContact:
    object_types: tuple[str, ...] = ("object_of_change", "tool")

    def detect(self, record: ClipRecord, frame_size: tuple[int, int]) -> ContactResult:
        c = record.contact
        frame = c.get("contact_frame")
        if frame is None:
            raise ContactError("no contact_frame or pnr_frame annotated")
        boxes = c.get("boxes") or {}
        entry = boxes.get("contact_frame") if "contact_frame" in (c.get("critical_frames") or {}) else boxes.get("pnr_frame")
        entry = entry or boxes.get("contact_frame") or boxes.get("pnr_frame")
        if not entry or not entry.get("right_hand"):
            raise ContactError(f"no right_hand box annotated at contact frame {frame}")
        sx = frame_size[0] / c["frame_width"] if c.get("frame_width") else 1.0
        sy = frame_size[1] / c["frame_height"] if c.get("frame_height") else 1.0
        scale = np.array([sx, sy, sx, sy])
        hand = np.asarray(entry["right_hand"][0], dtype=np.float64) * scale
        objs = [np.asarray(b, dtype=np.float64) * scale for t in self.object_types for b in entry.get(t, [])]
        if not objs:
            raise ContactError(f"no {' / '.join(self.object_types)} box annotated at contact frame {frame}")
        obj = min(objs, key=lambda b: float(np.sum((_box_center(b) - _box_center(hand)) ** 2)))
        others = [np.asarray(b, dtype=np.float64) * scale for b in entry.get("left_hand", [])]
        return ContactResult(int(entry.get("frame_number", frame)), hand, obj, None, None, other_boxes=others)


# -------------------------------------------------------------------------------------------- HOI4D
FINGERTIPS = (4, 8, 12, 16, 20)  #: OpenPose-order fingertip indices of the 21 keypoints


def load_hoi4d_pickle(path: str | Path) -> dict:
    """One refined hand-pose pickle → dict with numpy ``poseCoeff`` (48), ``beta``, ``trans``, ``kps2D``."""
    with open(path, "rb") as f:
        data = pickle.load(f)
    if not isinstance(data, dict) or "poseCoeff" not in data:
        raise ValueError(f"{path}: expected a dict with 'poseCoeff' (HOI4D refinehandpose pickle)")
    return {k: np.asarray(v, dtype=np.float64).reshape(-1) if k != "kps2D" else np.asarray(v, dtype=np.float64).reshape(-1, 2)
            for k, v in data.items() if k in ("poseCoeff", "beta", "trans", "kps2D")}


def read_objpose(path: str | Path) -> list[dict]:
    """``objpose/<frame>.json`` → list of {label, center (3,), rotation (3, Euler XYZ rad), dimensions (3,)}."""
    data = json.loads(Path(path).read_text())
    items = data.get("dataList", data.get("objects"))
    if items is None:
        raise ValueError(f"{path}: neither 'dataList' nor 'objects'")
    out = []
    for it in items:
        c, r, d = it["center"], it["rotation"], it["dimensions"]
        out.append({"label": it.get("label", ""), "center": np.array([c["x"], c["y"], c["z"]], float),
                    "rotation": np.array([r["x"], r["y"], r["z"]], float),
                    "dimensions": np.array([d["length"], d["width"], d["height"]], float)})
    return out


def project_object_box(obj: dict, K: np.ndarray) -> np.ndarray:
    """Project an oriented 3-D box (camera frame, metres; intrinsic Euler XYZ; length/width/height along
    the object's x/y/z) with intrinsics K → its (x1, y1, x2, y2) pixel bounding box."""
    a, b, c = obj["rotation"]
    R = axis_angle_to_matrix([a, 0, 0]) @ axis_angle_to_matrix([0, b, 0]) @ axis_angle_to_matrix([0, 0, c])
    half = obj["dimensions"] / 2.0
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
    pts = corners @ R.T + obj["center"]
    if np.any(pts[:, 2] <= 1e-6):
        raise ValueError("object box is behind the camera")
    uv = (pts @ np.asarray(K, float).T)
    uv = uv[:, :2] / uv[:, 2:3]
    return np.array([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])


def _frame_file(directory: Path, frame: int, ext: str) -> Path | None:
    for name in (f"{frame}{ext}", f"{frame:05d}{ext}"):
        if (directory / name).exists():
            return directory / name
    return None


#: HOI4D action events in which the hand does not touch the object (lower case): a sequence annotated
#: with nothing else has no grasp, whatever the 2-D fingertip rule says
HOI4D_NON_CONTACT_EVENTS = ("stop", "reachout", "reach out", "reach")


@dataclass
class HOI4DGeometryContact:
    """HOI4D's contact frame: the annotated grasp event's start when it lies in the clip, else the first
    frame (smoothed) where ``min_tips`` fingertips of the hand-pose fit lie inside the object's projected
    box. A sequence whose action events are all non-contact ones (:data:`HOI4D_NON_CONTACT_EVENTS`) is
    refused: on the synthetic data the 2-D rule fired on 6 of 20 such clips, a hand hovering in front of
    the object."""

    min_tips: int = 2
    margin_px: float = 4.0
    hand_pad: float = 0.1  #: hand box = keypoint bounds grown by this fraction per side
    #: prefer the annotated ``Grasp`` event start (``action/color.json``) as the contact frame when it lies
    #: in the clip; the 2-D fingertip-in-box rule fires early (fingertips in front of the object overlap
    #: its projected box before touching: measured 8 frames early at 15 fps on the synthetic HOI4D data)
    use_grasp_event: bool = True

    def detect(self, record: ClipRecord, frame_size: tuple[int, int]) -> ContactResult:
        c = record.contact
        hand_dir = Path(c.get("handpose_dir") or "")
        if not hand_dir.is_dir():
            raise FileNotFoundError(f"HOI4D right-hand pose folder not found: {hand_dir}")
        lacking = [what for what, key in (("objpose/ (the object's 6-D poses: its box)", "objpose_dir"),
                                          ("camera_params/<camera>/intrin.npy", "intrinsics_path")) if not c.get(key)]
        if lacking:
            raise ContactError(f"HOI4D geometry contact needs {' and '.join(lacking)}, not found for {record.video_id}")
        events = [str(e.get("event", "")).strip().lower() for e in c.get("events") or []]
        if events and all(e in HOI4D_NON_CONTACT_EVENTS for e in events):
            raise ContactError(f"the action annotation has only non-contact events ({', '.join(sorted(set(events)))}): "
                               "the hand never grasps")
        K = np.load(c["intrinsics_path"])
        obj_dir = Path(c["objpose_dir"])
        frames, series, boxes = [], [], []
        for f in range(record.first_frame, record.last_frame + 1):
            hp, op = _frame_file(hand_dir, f, ".pickle"), _frame_file(obj_dir, f, ".json")
            hit, item = False, None
            if hp is not None and op is not None:
                kps = load_hoi4d_pickle(hp)["kps2D"]
                objs = read_objpose(op)
                obox = project_object_box(objs[0], K)
                g = obox + np.array([-1, -1, 1, 1]) * self.margin_px
                tips = kps[list(FINGERTIPS)]
                inside = (tips[:, 0] >= g[0]) & (tips[:, 0] <= g[2]) & (tips[:, 1] >= g[1]) & (tips[:, 1] <= g[3])
                hit = int(inside.sum()) >= self.min_tips
                lo, hi = kps.min(0), kps.max(0)
                pad = (hi - lo) * self.hand_pad
                item = (np.concatenate([lo - pad, hi + pad]), obox)
            frames.append(f)
            series.append(hit)
            boxes.append(item)
        grasp = c.get("grasp_frame")
        if self.use_grasp_event and grasp is not None and record.first_frame <= grasp <= record.last_frame \
                and boxes[grasp - record.first_frame] is not None:
            hand_box, obj_box = boxes[grasp - record.first_frame]
            return ContactResult(int(grasp), hand_box, obj_box, None, None, other_boxes=[])
        start = first_run_start(smooth_contact(np.array(series)))
        if start is None:
            raise ContactError(f"no fingertip-object contact in frames {record.first_frame}-{record.last_frame}")
        # the run's first frame and its own boxes; smoothing can start a run on a frame that failed the test
        # (its boxes are still that frame's) or that has no fit at all (then the run's first frame with one)
        k = start if boxes[start] is not None else next(i for i in range(start, len(series)) if series[i])
        hand_box, obj_box = boxes[k]
        return ContactResult(frames[k], hand_box, obj_box, None, None, other_boxes=[])


#: dataset name → "module:Class" of its default detector
DETECTORS: dict[str, str] = {
    "epic_kitchens": "pipelines.stages.contact_frame:EpicDetectionsContact",
    "ego4d": "pipelines.stages.contact_frame:Ego4DAnnotatedContact",
    "hoi4d": "pipelines.stages.contact_frame:HOI4DGeometryContact",
    "model": "pipelines.models.contact:ModelContact",  # any dataset: a hand-object model's detections (raw video)
}


def make_detector(name: str, **options) -> ContactFrameDetector:
    return load_class(DETECTORS, name, "contact detector")(**options)
