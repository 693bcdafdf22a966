"""Minimal stand-ins for detectron2's ``Boxes`` / ``Instances`` (same attribute names and ``.to``), so the
adapters are tested without detectron2, plus fake predictors returning Hands23 / Detic-style outputs."""

from __future__ import annotations

import numpy as np
import torch


class Boxes:
    def __init__(self, tensor):
        self.tensor = torch.as_tensor(tensor, dtype=torch.float32).reshape(-1, 4)


class Instances:
    def __init__(self, image_size, **fields):
        self.image_size = image_size
        for k, v in fields.items():
            setattr(self, k, v)

    def to(self, device):
        return self

    def __len__(self):
        return len(self.scores)


def hands23_instances(h, w, rows):
    """rows: dicts with box, score, cls (0 hand), and for pred_dz: link, side, grasp, touch, contact."""
    dz = np.full((len(rows), 25), -1.0, np.float32)
    for i, r in enumerate(rows):
        dz[i, 4] = r.get("link", -1)
        dz[i, 5] = r.get("side", 0)
        dz[i, 6] = r.get("grasp", 0)
        dz[i, 7] = r.get("touch", 0)
        dz[i, 8] = r.get("contact", 0)
    return Instances((h, w), pred_boxes=Boxes([r["box"] for r in rows]), scores=torch.tensor([r["score"] for r in rows]),
                     pred_classes=torch.tensor([r["cls"] for r in rows]), pred_dz=torch.from_numpy(dz))


class FakeHands23Predictor:
    """Calls ``rows_for(bgr)`` → rows; records the images it saw (to check the BGR order)."""

    def __init__(self, rows_for):
        self.rows_for, self.seen = rows_for, []

    def __call__(self, bgr):
        self.seen.append(bgr)
        return {"instances": hands23_instances(bgr.shape[0], bgr.shape[1], self.rows_for(bgr))}


class FakeDeticPredictor:
    def __init__(self, detections):
        self.detections, self.vocabulary = detections, None  # detections: list of (box, score, class name)

    def set_vocabulary(self, names):
        self.vocabulary = list(names)

    def __call__(self, bgr):
        rows = [(b, s, self.vocabulary.index(n)) for b, s, n in self.detections if n in self.vocabulary]
        return {"instances": Instances(bgr.shape[:2], pred_boxes=Boxes([r[0] for r in rows]),
                                       scores=torch.tensor([r[1] for r in rows], dtype=torch.float32),
                                       pred_classes=torch.tensor([r[2] for r in rows], dtype=torch.int64))}
