"""HOI4D's 2-D motion segmentation: ``<seq>/2Dseg/mask/<frame:05d>.png``, one colour image per frame.

Each pixel's colour is a label index in the PASCAL VOC palette (index 0 black = nothing annotated, 1 =
(128, 0, 0), 2 = (0, 128, 0), ...; :func:`voc_palette`), stored as RGB. What an index means depends on
the object category: ``definitions/motion segmentation/label.csv`` (shipped as
``data/hoi4d_motion_segmentation_labels.csv``) names index ``i`` of each category, and index 2 is always
"Right Hand" (e.g. C2 Mug: 1 Mug, 2 Right Hand, 3 Mug — the second mug of a pouring task; C7 Bowl: 1 Bowl,
2 Right Hand, 3 Ball). HOI4D's 4-D segmentation script looks for a ``refine_2Dseg`` folder; a
``refine_2Dseg/mask`` is accepted where ``2Dseg/mask`` is missing, and then ``2Dseg/shift_mask``, which
public HOI4D loaders fall back to for sequences of cameras that ship only that folder (:data:`MASK_FOLDERS`;
neither checked against the real release).

Which object the hand grasps is not annotated per frame: at the contact frame, :func:`hand_and_object_masks`
takes the labelled part with most pixels next to the hand's.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np

LABELS_CSV = Path(__file__).with_name("data") / "hoi4d_motion_segmentation_labels.csv"
RIGHT_HAND, LEFT_HAND = "Right Hand", "Left Hand"
#: where a sequence's masks may be, relative to its folder (first found wins)
MASK_FOLDERS = ("2Dseg/mask", "refine_2Dseg/mask", "2Dseg/shift_mask")


class MaskError(ValueError):
    """A 2Dseg mask cannot be used (unreadable, unknown colours, no right hand)."""


def voc_palette(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 RGB colours of label indices 0..n-1: the PASCAL VOC palette, which HOI4D's masks use
    (index bits 0/1/2 spread over the high bits of R/G/B)."""
    cmap = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, rgb = i, [0, 0, 0]
        for j in range(8):
            for ch in range(3):
                rgb[ch] |= ((c >> ch) & 1) << (7 - j)
            c >>= 3
        cmap[i] = rgb
    return cmap


@functools.lru_cache(maxsize=4)
def load_motion_labels(path: str | Path = LABELS_CSV) -> dict[int, list[str]]:
    """``label.csv`` → {category id: [name of index 1, name of index 2, ...]} (empty cells dropped at the end).
    Read once per path and shared: callers must not change it."""
    out: dict[int, list[str]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            names = [(row.get(k) or "").strip() for k in row if k and k.lower().startswith(("lable", "label"))]
            while names and not names[-1]:
                names.pop()
            out[int(row["Category ID"].strip().lstrip("C"))] = names
    return out


def encode_labels(labels: np.ndarray) -> np.ndarray:
    """(H, W) label indices → (H, W, 3) uint8 RGB mask image (the inverse of :func:`decode_labels`)."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError("label indices must be in 0..255")
    return voc_palette()[labels.astype(np.uint8)]


def decode_labels(rgb: np.ndarray, n: int = 16) -> tuple[np.ndarray, int]:
    """(H, W, 3) RGB mask image → ((H, W) uint8 label indices, number of pixels whose colour is none of
    the first ``n`` palette colours; those are labelled 0)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise MaskError(f"a 2Dseg mask must be an RGB image, got shape {rgb.shape}")
    code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    pal = voc_palette(n).astype(np.int32)
    keys = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    out = np.zeros(code.shape, np.uint8)
    known = np.zeros(code.shape, bool)
    for i, k in enumerate(keys):
        hit = code == k
        out[hit] = i
        known |= hit
    return out, int((~known).sum())


def mask_path(mask_dir: str | Path, frame: int) -> Path | None:
    """The mask file of ``frame`` (``00012.png``, or unpadded ``12.png``), or None."""
    d = Path(mask_dir)
    for name in (f"{frame:05d}.png", f"{frame}.png"):
        if (d / name).is_file():
            return d / name
    return None


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask image → (H, W) label indices, resized (nearest) to ``size`` = (width, height) of the
    decoded video when that differs. Raises :class:`MaskError` for an unreadable file or one where more
    than half the pixels carry colours that are no label's."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MaskError(f"{path}: not a readable image")
    labels, unknown = decode_labels(bgr[..., ::-1])
    if unknown > labels.size // 2:
        raise MaskError(f"{path}: {unknown} of {labels.size} pixels have colours outside HOI4D's label palette")
    if size is not None and (labels.shape[1], labels.shape[0]) != tuple(size):
        labels = cv2.resize(labels, tuple(int(v) for v in size), interpolation=cv2.INTER_NEAREST)
    return labels


def hand_and_object_masks(labels: np.ndarray, names: list[str], touch_px: int = 3) -> tuple[np.ndarray, np.ndarray | None]:
    """(right-hand mask, grasped-object mask) of a frame's label indices, given the category's part names
    (``names[i - 1]`` is index ``i``). The object is the part (any index other than the hands) with most
    pixels within ``touch_px`` of the hand's; with none that near, the largest part; None when no part is
    visible (the hand can hide a small object entirely). Raises :class:`MaskError` when the frame has no
    right-hand pixels."""
    import cv2

    idx = {i + 1: name for i, name in enumerate(names) if name}
    hand_ids = [i for i, name in idx.items() if name == RIGHT_HAND]
    hand = np.isin(labels, hand_ids)
    if not hand.any():
        raise MaskError("no right-hand pixels in the mask")
    parts = [i for i, name in idx.items() if name not in (RIGHT_HAND, LEFT_HAND) and (labels == i).any()]
    if not parts:
        return hand, None
    k = np.ones((2 * touch_px + 1, 2 * touch_px + 1), np.uint8)
    near = cv2.dilate(hand.astype(np.uint8), k) > 0
    touching = {i: int(((labels == i) & near).sum()) for i in parts}
    best = max(parts, key=lambda i: (touching[i], int((labels == i).sum())))
    return hand, labels == best
