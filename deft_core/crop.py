"""The object crop of the affordance model's input, shared by extraction and the robot.

Extraction (:mod:`pipelines.stages.crop`) crops v1 around the object box padded by ``crop_pad_px``
(VRB's 20 px) and squared; the model trains on those crops. At run time
(:meth:`deft_core.affordance.AffordancePredictor.crop`) the robot's tight object box is padded and squared
the same way, with the padding scaled to the camera image (the export records it as a fraction of the
training frames' short side), so the model sees the framing it was trained on.
"""

from __future__ import annotations

import numpy as np


def square_box(box, image_size: tuple[int, int], pad: float = 20.0) -> np.ndarray:
    """Pad ``box`` by ``pad`` px, square it about its centre, keep it inside a (width, height) image.
    Returns integer-valued (x1, y1, x2, y2)."""
    w, h = image_size
    b = np.asarray(box, np.float64)
    if not (b[2] > b[0] and b[3] > b[1]):
        raise ValueError(f"object box {b.tolist()} is empty")
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    side = max(b[2] - b[0], b[3] - b[1]) + 2 * pad
    side = int(np.ceil(side))
    out = []
    for c, limit in ((cx, w), (cy, h)):
        if side >= limit:
            lo, hi = 0, limit
        else:
            lo = int(round(c - side / 2))
            lo = min(max(lo, 0), limit - side)
            hi = lo + side
        out.append((lo, hi))
    (x1, x2), (y1, y2) = out
    return np.array([x1, y1, x2, y2], dtype=np.float64)
