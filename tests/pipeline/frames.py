"""Hand-made test images: a textured grey background, a blue object box and a skin-coloured hand blob."""

from __future__ import annotations

import cv2
import numpy as np

SKIN_RGB = (224, 172, 140)
OBJECT_RGB = (30, 40, 200)


def background(w: int = 456, h: int = 256, seed: int = 0) -> np.ndarray:
    """Grey random blocks (no skin hue), rich in ORB corners."""
    rng = np.random.default_rng(seed)
    small = rng.integers(20, 235, size=(h // 8 + 1, w // 8 + 1), dtype=np.uint8)
    g = cv2.resize(small, (w + 8, h + 8), interpolation=cv2.INTER_NEAREST)[:h, :w]
    return np.repeat(g[:, :, None], 3, axis=2).copy()


def scene(w: int = 456, h: int = 256, seed: int = 0, obj=(200, 100, 280, 180), hand_centre=(190, 140), hand_axes=(30, 18)):
    """RGB frame with the object box and an elliptical hand blob overlapping its left edge.

    Returns (frame, object_box, hand_box)."""
    img = background(w, h, seed)
    x1, y1, x2, y2 = obj
    img[y1:y2, x1:x2] = OBJECT_RGB
    cv2.ellipse(img, hand_centre, hand_axes, 0, 0, 360, SKIN_RGB, -1)
    cx, cy = hand_centre
    ax, ay = hand_axes
    return img, np.array(obj, float), np.array([cx - ax - 2, cy - ay - 2, cx + ax + 2, cy + ay + 2], float)
