"""Write HOI4D ``objpose/<frame>.json`` files for a generated HOI4D-format dataset from its sidecar.

The synthetic HOI4D writer does not write ``objpose/`` (real HOI4D does), and the HOI4D contact
detector needs it. This helper (tests and measurements only, clearly a stand-in for the missing
annotation) places, per frame, a thin camera-facing box at 0.5 m whose projection is the true 2-D
object box (``object_boxes`` of the sidecar; the nearest visible one while the hand hides it), in HOI4D's JSON layout (``dataList`` of
``{label, center, rotation, dimensions}``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_objpose_from_truth(root: str | Path, depth_m: float = 0.5) -> int:
    root = Path(root)
    n = 0
    for line in (root / "_groundtruth" / "clips.jsonl").read_text().splitlines():
        rec = json.loads(line)
        truth = np.load(root / "_groundtruth" / f"{rec['clip_id']}.npz")
        seq = root / rec["annotation_id"]
        if not seq.is_dir():
            continue
        out = seq / "objpose"
        out.mkdir(exist_ok=True)
        K = truth["K"]
        boxes = truth["object_boxes"]
        seen = np.flatnonzero(np.all(np.isfinite(boxes), axis=1))
        if seen.size == 0:
            continue
        for t in range(len(boxes)):
            # an object hidden behind the hand still has a pose (HOI4D's come from 3-D fits): nearest visible box
            box = boxes[seen[np.abs(seen - t).argmin()]]
            x1, y1, x2, y2 = (float(v) for v in box)
            z = depth_m
            cx, cy = ((x1 + x2) / 2 - K[0, 2]) * z / K[0, 0], ((y1 + y2) / 2 - K[1, 2]) * z / K[1, 1]
            dims = {"length": (x2 - x1) * z / K[0, 0], "width": (y2 - y1) * z / K[1, 1], "height": 1e-4}
            item = {"label": rec["object_kind"], "center": {"x": cx, "y": cy, "z": z}, "rotation": {"x": 0, "y": 0, "z": 0},
                    "dimensions": dims}
            (out / f"{t + rec['frame_offset']}.json").write_text(json.dumps({"dataList": [item]}))
            n += 1
    return n
