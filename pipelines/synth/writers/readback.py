"""Read a generated dataset back from its native files (not the sidecar), for ``deft data show``.

Each reader returns :class:`Action` items: the video to open, its fps, the contact frame as a 0-based
index into that video, and the annotated boxes (pixels, x1,y1,x2,y2) at the frames that have them.
Broken inputs (``--corrupt``) are skipped and reported in ``problems``.
"""

from __future__ import annotations

import csv
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.formats import epic_hoa
from deft_core.video import probe_video


@dataclass
class Action:
    dataset: str
    annotation_id: str
    video: Path
    fps: float
    contact_index: int                   #: 0-based frame index into ``video``
    text: str
    hands: dict[int, list] = field(default_factory=dict)    #: frame index → [(x1,y1,x2,y2, label)]
    objects: dict[int, list] = field(default_factory=dict)  #: frame index → [(x1,y1,x2,y2, label)]
    keypoints: dict[int, np.ndarray] = field(default_factory=dict)  #: frame index → (21, 2) px


class ReadbackError(ValueError):
    """A dataset's annotation file that cannot be read at all (the message names the file)."""


def _layout(root: Path) -> str | None:
    """The dataset whose layout markers sit directly in ``root`` (no walking below it)."""
    if (root / "v2" / "annotations" / "fho_main.json").is_file():
        return "ego4d"
    if (root / "EPIC_100_train.csv").is_file():
        return "epic_kitchens"
    if (root / "release.txt").is_file() and (root / "handpose").is_dir():
        return "hoi4d"
    return None


def detect_dataset(root: str | Path) -> str:
    """``ego4d`` / ``epic_kitchens`` / ``hoi4d`` from the layout under ``root``; ValueError otherwise (naming
    the datasets one level down, e.g. the parent folder of ``data synth all``)."""
    root = Path(root)
    found = _layout(root)
    if found:
        return found
    try:
        inside = sorted(p.name for p in root.iterdir() if p.is_dir() and _layout(p)) if root.is_dir() else []
    except OSError:  # an unreadable folder: no hint
        inside = []
    hint = f"; it holds datasets: give one of {', '.join(str(root / n) for n in inside)}" if inside else ""
    raise ValueError(f"{root}: not a recognised dataset layout (no v2/annotations/fho_main.json, "
                     f"EPIC_100_train.csv or release.txt + handpose/){hint}")


def read_actions(root: str | Path, problems: list[str] | None = None) -> list[Action]:
    root = Path(root)
    problems = [] if problems is None else problems
    return {"ego4d": _ego4d, "epic_kitchens": _epic, "hoi4d": _hoi4d}[detect_dataset(root)](root, problems)


def _xywh(b: dict) -> tuple:
    return (b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"])


def _ego4d(root: Path, problems: list[str]) -> list[Action]:
    path = root / "v2/annotations/fho_main.json"
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:  # a truncated download
        raise ReadbackError(f"{path}: truncated or malformed JSON ({exc})") from None
    out = []
    for video in doc["videos"]:
        path = root / "v2/full_scale" / f"{video['video_uid']}.mp4"
        for interval in video["annotated_intervals"]:
            for a in interval["narrated_actions"]:
                if a.get("is_rejected") or a.get("is_invalid_annotation") or a.get("stage") is None:
                    continue
                cf = a.get("critical_frames")
                if cf is None:
                    continue
                try:
                    contact = cf.get("contact_frame", cf["pnr_frame"])
                    act = Action("ego4d", a["uid"], path, video["video_metadata"]["fps"], int(contact), a["narration_text"])
                    for fr in a["frames"]:
                        for b in fr["boxes"]:
                            box = (*_xywh(b["bbox"]), b["object_type"])
                            target = act.hands if b["object_type"].endswith("_hand") else act.objects
                            target.setdefault(fr["frame_number"], []).append(box)
                except (AttributeError, KeyError, TypeError) as exc:
                    problems.append(f"fho_main.json action {a.get('uid')}: malformed ({type(exc).__name__}: {exc})")
                    continue
                out.append(act)
    return out


def _epic(root: Path, problems: list[str]) -> list[Action]:
    with (root / "EPIC_100_video_info.csv").open() as f:
        info = list(csv.DictReader(f))
    fps = {r["video_id"]: float(r["fps"]) for r in info}
    size = {r["video_id"]: tuple(int(v) for v in r["resolution"].split("x")) for r in info}
    dets_cache: dict[str, list] = {}
    out = []
    with (root / "EPIC_100_train.csv").open() as f:
        for row in csv.DictReader(f):
            vid = row["video_id"]
            try:
                start, stop = int(row["start_frame"]), int(row["stop_frame"])
                if vid not in dets_cache:
                    dets_cache[vid] = epic_hoa.read_hand_object_pickle(root / vid.split("_")[0] / "hand-objects" / f"{vid}.pkl")
            except (ValueError, TypeError, OSError) as exc:
                problems.append(f"EPIC_100_train.csv {row.get('narration_id')}: {type(exc).__name__}: {exc}")
                continue
            dets = dets_cache[vid]
            W, H = size[vid]
            contact = [any(h.state == epic_hoa.HandState.PORTABLE_OBJECT for h in dets[f - 1].hands)
                       for f in range(start, min(stop, len(dets)) + 1)]
            smooth = np.convolve(np.asarray(contact, float), np.ones(3) / 3, mode="same") > 0.5
            if not smooth.any():
                problems.append(f"{row['narration_id']}: no hand-object contact detected")
                continue
            cf = start + int(np.argmax(smooth))
            act = Action("epic_kitchens", row["narration_id"], root / vid.split("_")[0] / "videos" / f"{vid}.MP4",
                         fps[vid], cf - 1, row["narration"])
            for f in range(max(start, cf - 30), min(stop, len(dets)) + 1):
                d = dets[f - 1]
                act.hands[f - 1] = [(*epic_hoa.to_pixels(h.bbox, W, H), f"{'R' if h.side else 'L'} {h.score:.2f}")
                                    for h in d.hands]
                act.objects[f - 1] = [(*epic_hoa.to_pixels(o.bbox, W, H), f"obj {o.score:.2f}") for o in d.objects if o.score > 0.3]
            out.append(act)
    return out


def _hoi4d(root: Path, problems: list[str]) -> list[Action]:
    out = []
    for seq in (root / "release.txt").read_text().split():
        base = root / seq
        try:
            action = json.loads((base / "action/color.json").read_text())
            video = base / "align_rgb/image.mp4"
            n = probe_video(video).num_frames
            fps = n / float(action["info"]["duration"])
            grasp = [e for e in action["events"] if e["event"] == "Grasp"]
        except (OSError, ValueError, KeyError) as exc:
            problems.append(f"{seq}: {type(exc).__name__}: {exc}")
            continue
        if not grasp:
            problems.append(f"{seq}: no Grasp event")
            continue
        act = Action("hoi4d", seq, video, fps, int(round(grasp[0]["startTime"] * fps)), seq)
        for side in ("right", "left"):
            d = root / "handpose" / f"refinehandpose_{side}" / seq
            for p in d.glob("*.pickle") if d.is_dir() else []:
                with p.open("rb") as f:
                    kp = np.asarray(pickle.load(f)["kps2D"], float)
                t = int(p.stem)
                act.keypoints[t] = kp
                act.hands[t] = [(*kp.min(0), *kp.max(0), f"{side} (kps2D)")]
        if not act.hands:
            problems.append(f"{seq}: no hand-pose pickles")
        out.append(act)
    return out
