"""Object crop of the first frame v1 (VRB: box padded by 20 px and made square), JPEG-encoded.

Pixels: x right, y down, boxes (x1, y1, x2, y2) with x2/y2 exclusive. The square is centred on the
padded box; when it crosses the image border it is shifted inside, and only when it is larger than
the image is it clipped (then it is no longer square). Crop-normalised coordinates are
``((x - x1) / (x2 - x1), (y - y1) / (y2 - y1))`` in [0, 1] (the frame of ``contact_points`` /
``gmm_means`` in :mod:`deft_core.schema`); variances scale by the squared box size.
"""

from __future__ import annotations

import cv2
import numpy as np

from deft_core.crop import square_box  # noqa: F401 - the robot's predictor crops the same way


def crop_jpeg(rgb: np.ndarray, box, quality: int = 90) -> bytes:
    """JPEG bytes of ``rgb[y1:y2, x1:x2]`` (RGB uint8 in, standard JPEG out)."""
    x1, y1, x2, y2 = (int(v) for v in box)
    patch = np.ascontiguousarray(rgb[y1:y2, x1:x2])
    if patch.size == 0:
        raise ValueError(f"crop box {[x1, y1, x2, y2]} is empty for an image of shape {rgb.shape}")
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(patch, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def to_crop_normalised(points: np.ndarray, box) -> np.ndarray:
    """(K, 2) image pixels → crop-normalised [0, 1] (not clipped)."""
    b = np.asarray(box, np.float64)
    return (np.asarray(points, np.float64) - b[:2]) / (b[2:] - b[:2])


def variances_to_crop_normalised(variances: np.ndarray, box) -> np.ndarray:
    b = np.asarray(box, np.float64)
    return np.asarray(variances, np.float64) / (b[2:] - b[:2]) ** 2
