"""EPIC-KITCHENS-100 layout: videos, narration CSV, video info, hand-object detection pickles.

- ``PXX/videos/PXX_YY.MP4`` at the video's own fps (59.94 = 60000/1001, 50 for ``PXX_1YY``
  extension videos, some 29.97); RGB frames are numbered from 1.
- ``EPIC_100_train.csv``: the 15 columns of the real ``EPIC_100_validation.csv`` (no ``uid``);
  ``narration_timestamp`` ``HH:MM:SS.mmm``, ``start/stop_timestamp`` ``HH:MM:SS.ss`` where frame f
  (1-based) is at ``(f - 1) / fps`` seconds; ``all_nouns`` / ``all_noun_classes`` as Python list
  literals like the real file; verb/noun classes from the real class lists (copied to the root).
- ``EPIC_100_video_info.csv``: ``video_id,duration,fps,resolution``.
- ``PXX/hand-objects/PXX_YY.pkl``: one ``Detections`` per frame (see ``pipelines.formats.epic_hoa``),
  derived from the clip's true boxes with detector-like noise: box jitter (σ 1.5 px), score jitter,
  ~3 % missed hands, ~5 % missed objects, ~2 % wrong contact state, occasional low-score false
  positive objects. Hand state is PORTABLE_OBJECT while the hand touches the object, else NO_CONTACT.
"""

from __future__ import annotations

import ast
import csv
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipelines.formats import epic_hoa
from pipelines.synth.clip import SynthClip
from deft_core.video import VideoWriter
from pipelines.synth.writers.common import ClipPlan, DatasetWriter, Placement, box_xyxy_valid

COLUMNS = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
           "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
           "noun_class", "all_nouns", "all_noun_classes")
TRAIN_CSV = "EPIC_100_train.csv"
VIDEO_INFO_CSV = "EPIC_100_video_info.csv"
CLASS_FILES = ("EPIC_100_verb_classes.csv", "EPIC_100_noun_classes.csv")
_DATA = Path(__file__).parent


def video_path(video_id: str) -> str:
    return f"{video_id.split('_')[0]}/videos/{video_id}.MP4"


def hand_objects_path(video_id: str) -> str:
    return f"{video_id.split('_')[0]}/hand-objects/{video_id}.pkl"


def format_timestamp(seconds: float, decimals: int) -> str:
    """Seconds → ``HH:MM:SS.s…`` with ``decimals`` decimals (EPIC: 3 for narrations, 2 for start/stop)."""
    scale = 10 ** decimals
    total = int(round(max(0.0, seconds) * scale))
    whole, frac = divmod(total, scale)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{frac:0{decimals}d}"


@lru_cache(maxsize=None)
def _class_index(kind: str) -> dict[str, tuple[int, str]]:
    """instance word → (class id, class key) from the real EPIC class list."""
    index: dict[str, tuple[int, str]] = {}
    with (_DATA / f"EPIC_100_{kind}_classes.csv").open() as f:
        for row in csv.DictReader(f):
            cid, key = int(row["id"]), row["key"]
            for inst in ast.literal_eval(row["instances"]):
                index.setdefault(inst, (cid, key))
            index[key] = (cid, key)
    return index


def verb_class(verb: str) -> tuple[str, int]:
    """Task verb ("pick up") → EPIC verb token ("pick-up") and its class id (0, "take")."""
    token = verb.strip().replace(" ", "-")
    hit = _class_index("verb").get(token) or _class_index("verb").get(token.split("-")[0])
    if hit is None:
        raise KeyError(f"verb {verb!r} has no class in EPIC_100_verb_classes.csv")
    return token, hit[0]


def noun_class(noun: str) -> tuple[str, int]:
    """Noun ("grapes") → EPIC noun token ("grape") and its class id."""
    idx = _class_index("noun")
    for token in (noun, noun.rstrip("s"), noun[:-2] if noun.endswith("es") else noun):
        if token in idx:
            return token, idx[token][0]
    raise KeyError(f"noun {noun!r} has no class in EPIC_100_noun_classes.csv")


def _nouns_in_order(words: list[str], clip: SynthClip) -> list[tuple[str, int]]:
    """The narration's nouns (main noun first, as in the release): the clip's noun, the grasped object and
    the task's second object, ordered by where they appear in the narration words."""
    from deft_core.tasks import TASKS

    spec = TASKS.get(clip.task)
    candidates = [clip.noun, clip.object_kind] + ([spec.support_kind] if spec and spec.support_kind else [])
    found: dict[str, tuple[int, tuple[str, int]]] = {}
    for cand in candidates:
        token, cls = noun_class(cand)
        skip = len(clip.verb.split())  # the verb itself may be a noun instance ("scoop" is a spoon)
        pos = next((i for i, w in enumerate(words) if i >= skip and noun_class_or_none(w) == cls), None)
        if cand == clip.noun and pos is None:
            pos = len(words)
        if pos is not None and token not in found:
            found[token] = (pos, (token, cls))
    return [v for _, v in sorted(found.values())]


def noun_class_or_none(word: str) -> int | None:
    try:
        return noun_class(word)[1]
    except KeyError:
        return None


class EpicKitchensWriter(DatasetWriter):
    name = "epic_kitchens"

    def __init__(self, root: Path, *, seed: int):
        super().__init__(root, seed=seed)
        self.rows: list[dict] = []
        self.video_info: list[tuple[str, float, float, str]] = []
        self._writer: VideoWriter | None = None
        self._video_id = ""
        self._dets: list = []
        self._n_actions = 0

    def open_video(self, video_id: str, fps: float) -> None:
        self._writer = VideoWriter(self._track(self.root / video_path(video_id)), fps)
        self._video_id, self._dets, self._n_actions = video_id, [], 0

    def add_clip(self, clip: SynthClip, plan: ClipPlan) -> Placement:
        offset = self._writer.num_frames          # frames already in the video
        self._writer.append(clip.frames)
        W, H = clip.size
        for t in range(clip.num_frames):
            self._dets.append(self._detections(clip, t, offset + t + 1, W, H))
        fps = float(self._writer.rate)
        first = offset + 1                          # dataset (1-based) frame of clip frame 0
        start_f, stop_f = clip.action_start + first, clip.action_end + first
        narration_id = f"{self._video_id}_{self._n_actions}"
        self._n_actions += 1
        verb, vcls = verb_class(clip.verb)
        words = [w for w in clip.narration.split() if w not in ("the", "a", "an")]
        nouns_cls = _nouns_in_order(words, clip)
        start_s, stop_s = (start_f - 1) / fps, (stop_f - 1) / fps
        said = max(0.0, start_s + float(self.rng.uniform(-0.3, 0.5)))
        self.rows.append({
            "narration_id": narration_id, "participant_id": self._video_id.split("_")[0], "video_id": self._video_id,
            "narration_timestamp": format_timestamp(said, 3), "start_timestamp": format_timestamp(start_s, 2),
            "stop_timestamp": format_timestamp(stop_s, 2), "start_frame": start_f, "stop_frame": stop_f,
            "narration": " ".join(words), "verb": verb, "verb_class": vcls, "noun": nouns_cls[0][0],
            "noun_class": nouns_cls[0][1], "all_nouns": str([n for n, _ in nouns_cls]),
            "all_noun_classes": str([c for _, c in nouns_cls]),
        })
        return Placement(video_id=self._video_id, video_path=video_path(self._video_id), annotation_id=narration_id,
                         frame_offset=first, extra={"hand_objects": hand_objects_path(self._video_id)})

    def _detections(self, clip: SynthClip, t: int, frame_number: int, W: int, H: int):
        rng = self.rng
        det = epic_hoa.Detections(video_id=self._video_id, frame_number=frame_number)
        obj = clip.object_boxes[t]
        obj_ok = box_xyxy_valid(obj)
        hands = []
        for box, acting in [(clip.hand_boxes[t], True), (clip.other_hand_boxes[t], False)]:
            if not box_xyxy_valid(box) or rng.random() < 0.03:
                continue
            contact = bool(acting and clip.in_contact[t])
            if rng.random() < 0.02:
                contact = not contact
            side_right = (clip.hand_side == "right") == acting
            jit = box + rng.normal(0, 1.5, 4)
            h = epic_hoa.HandDetection(score=float(np.clip(rng.normal(0.93, 0.04), 0.5, 0.999)),
                                       state=epic_hoa.HandState.PORTABLE_OBJECT if contact else epic_hoa.HandState.NO_CONTACT,
                                       side=epic_hoa.HandSide.RIGHT if side_right else epic_hoa.HandSide.LEFT)
            h.bbox.CopyFrom(epic_hoa.normalise_box(*jit, W, H))
            if obj_ok:
                d = ((obj[:2] + obj[2:]) - (jit[:2] + jit[2:])) / 2
                h.object_offset.x = float(np.clip(d[0] / W, -1, 1))
                h.object_offset.y = float(np.clip(d[1] / H, -1, 1))
            hands.append(h)
        for i in rng.permutation(len(hands)):
            det.hands.append(hands[i])
        if obj_ok and rng.random() >= 0.05:
            o = det.objects.add(score=float(np.clip(rng.normal(0.8, 0.1), 0.05, 0.99)))
            o.bbox.CopyFrom(epic_hoa.normalise_box(*(obj + rng.normal(0, 1.5, 4)), W, H))
        if rng.random() < 0.15:  # a low-score false positive somewhere in the frame
            x, y = rng.uniform(0, W * 0.8), rng.uniform(0, H * 0.8)
            o = det.objects.add(score=float(rng.uniform(0.02, 0.3)))
            o.bbox.CopyFrom(epic_hoa.normalise_box(x, y, x + rng.uniform(0.05, 0.2) * W, y + rng.uniform(0.05, 0.2) * H, W, H))
        return det

    def close_video(self) -> None:
        info = self._writer.close()
        epic_hoa.write_hand_object_pickle(self._track(self.root / hand_objects_path(self._video_id)), self._dets)
        fps = float(info.fps)
        self.video_info.append((self._video_id, info.num_frames / fps, fps, f"{info.width}x{info.height}"))
        self._writer, self._dets = None, []

    def finish(self) -> None:
        rows = sorted(self.rows, key=lambda r: r["narration_id"])  # the release sorts narration ids as strings
        with self._track(self.root / TRAIN_CSV).open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        with self._track(self.root / VIDEO_INFO_CSV).open("w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["video_id", "duration", "fps", "resolution"])
            for vid, dur, fps, res in sorted(self.video_info):
                w.writerow([vid, repr(round(dur, 6)), repr(fps), res])
        for name in CLASS_FILES:
            shutil.copyfile(_DATA / name, self._track(self.root / name))
