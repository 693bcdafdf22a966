"""Deliberately broken inputs (``deft data synth --corrupt K``), so the pipeline's error handling is tested.

Each corrupted clip has a video of its own (the plan guarantees it), so one corruption breaks exactly
one clip. Every corruption is recorded in the sidecar's ``manifest.json`` → ``corruptions``:
``{kind, clip_id, annotation_id, path, detail}`` with ``path`` relative to the dataset root.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np

from pipelines.synth.writers.common import ClipPlan, Placement

KINDS = {
    "ego4d": ("truncated_video", "malformed_json_entry", "missing_video"),
    "epic_kitchens": ("truncated_video", "missing_hand_objects", "malformed_csv_row"),
    "hoi4d": ("truncated_video", "missing_action_json", "malformed_action_json", "missing_handpose"),
}


def corruption_kinds(dataset: str) -> tuple[str, ...]:
    return KINDS[dataset]


def apply_corruptions(dataset: str, root: Path, plans: list[ClipPlan], placements: dict[str, Placement],
                      rng: np.random.Generator) -> list[dict]:
    """Break the inputs of every plan with ``corrupt`` set; returns the records for the manifest."""
    records = []
    for plan in plans:
        if not plan.corrupt:
            continue
        p = placements[plan.clip_id]
        fn = _APPLY[plan.corrupt]
        path, detail = fn(Path(root), p, plan, rng)
        records.append({"kind": plan.corrupt, "clip_id": plan.clip_id, "annotation_id": p.annotation_id,
                        "video_id": p.video_id, "path": str(path), "detail": detail})
    return records


def _truncated_video(root: Path, p: Placement, plan: ClipPlan, rng) -> tuple[str, str]:
    path = root / p.video_path
    size = path.stat().st_size
    keep = int(size * rng.uniform(0.3, 0.6))
    with path.open("r+b") as f:
        f.truncate(keep)
    return p.video_path, f"truncated from {size} to {keep} bytes"


def _missing_video(root: Path, p: Placement, plan: ClipPlan, rng) -> tuple[str, str]:
    (root / p.video_path).unlink()
    return p.video_path, "video file deleted"


def _malformed_json_entry(root: Path, p: Placement, plan: ClipPlan, rng) -> tuple[str, str]:
    from pipelines.synth.writers.ego4d import ANNOTATION_PATH

    path = root / ANNOTATION_PATH
    doc = json.loads(path.read_text())
    for video in doc["videos"]:
        for interval in video["annotated_intervals"]:
            for action in interval["narrated_actions"]:
                if action["uid"] == p.annotation_id:
                    action["critical_frames"] = "see frames"   # must be a dict of frame numbers
                    action.pop("end_frame", None)
                    for frame in action.get("frames") or []:
                        for box in frame["boxes"]:
                            box["bbox"] = [box["bbox"]["x"], box["bbox"]["y"]]  # must be {x, y, width, height}
                    path.write_text(json.dumps(doc, indent=1))
                    return ANNOTATION_PATH, f"action {p.annotation_id}: critical_frames is a string, end_frame missing, bboxes are lists"
    raise KeyError(f"{path}: narrated action {p.annotation_id} not found")


def _missing_hand_objects(root: Path, p: Placement, plan: ClipPlan, rng) -> tuple[str, str]:
    from pipelines.synth.writers.epic_kitchens import hand_objects_path

    rel = hand_objects_path(p.video_id)
    (root / rel).unlink()
    return rel, "hand-object pickle deleted"


def _malformed_csv_row(root: Path, p: Placement, plan: ClipPlan, rng) -> tuple[str, str]:
    from pipelines.synth.writers.epic_kitchens import TRAIN_CSV

    path = root / TRAIN_CSV
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith(p.annotation_id + ","):
            row = next(csv.reader([line]))
            row[6] = "frame?"          # start_frame must be an int
            row = row[:-1]             # and the row lacks all_noun_classes
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerow(row)
            lines[i] = buf.getvalue()
            path.write_text("".join(lines))
            return TRAIN_CSV, f"row {p.annotation_id}: start_frame 'frame?' and only {len(row)} columns"
    raise KeyError(f"{path}: narration_id {p.annotation_id} not found")


def _missing_action_json(root: Path, p: Placement, plan: ClipPlan, rng) -> tuple[str, str]:
    rel = f"{p.video_id}/action/color.json"
    (root / rel).unlink()
    return rel, "action annotation deleted"


def _malformed_action_json(root: Path, p: Placement, plan: ClipPlan, rng) -> tuple[str, str]:
    rel = f"{p.video_id}/action/color.json"
    text = (root / rel).read_text()
    (root / rel).write_text(text[: len(text) // 2])
    return rel, "JSON cut in half"


def _missing_handpose(root: Path, p: Placement, plan: ClipPlan, rng) -> tuple[str, str]:
    rel = p.extra["handpose_dir"]
    shutil.rmtree(root / rel)
    return rel, "hand-pose pickles deleted"


_APPLY = {"truncated_video": _truncated_video, "missing_video": _missing_video,
          "malformed_json_entry": _malformed_json_entry, "missing_hand_objects": _missing_hand_objects,
          "malformed_csv_row": _malformed_csv_row, "missing_action_json": _missing_action_json,
          "malformed_action_json": _malformed_action_json, "missing_handpose": _missing_handpose}
