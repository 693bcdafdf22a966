"""A dataset's own hand and object masks (and depth) at the contact frame, for the contact-point stage.

Only HOI4D ships them: ``2Dseg/mask`` (:mod:`pipelines.sources.hoi4d_masks`) and the aligned depth video
``align_depth/depth_video.avi`` (millimetres), which the HOI4D source puts on the record as
``contact["mask_dir"]``, ``contact["depth_path"]`` (with ``intrinsics_path`` and ``category``). Other
datasets, or a sequence without masks, get ``None`` and the skin-colour recipe
(:func:`pipelines.stages.contact_points.contact_points_at`).

A mask that is missing for the frame, unreadable or holds no right hand does not fail the clip: the
stage falls back to the skin recipe, and the row's ``contact_points_source`` says which was used. A mask
whose object is hidden (by the hand) keeps the hand (``object`` None, and no depth is read).
Masks are named by the decoded video's frame index (HOI4D's ``utils/decode.py`` numbers the frames
it extracts from 0), as is the depth video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.sources.base import ClipRecord
from pipelines.sources.hoi4d_masks import MaskError, hand_and_object_masks, load_motion_labels, mask_path, read_mask


@dataclass
class FrameMasks:
    hand: np.ndarray                #: (H, W) bool, the right hand
    object: np.ndarray | None       #: (H, W) bool, the part the hand touches; None when none is visible
    depth_m: np.ndarray | None      #: (H, W) metres (0 = no depth), or None
    K: np.ndarray | None            #: 3 × 3 intrinsics of the frame, or None
    note: str = ""                  #: why depth is missing, if it is


def frame_masks(record: ClipRecord, frame: int, size: tuple[int, int]) -> tuple[FrameMasks | None, str]:
    """(masks of ``frame`` resized to ``size`` = (width, height), "") or (None, why not)."""
    c = record.contact
    if not c.get("mask_dir"):
        return None, "no masks for this clip"
    if record.hand_hint == "left":  # the masks label the right hand (few categories name a left one)
        return None, "a left-hand clip: the masks label the right hand"
    index = record.decode_index(frame)
    path = mask_path(c["mask_dir"], index)
    if path is None:
        return None, f"no mask for frame {index} in {c['mask_dir']}"
    names = load_motion_labels().get(int(c.get("category") or -1))
    if not names:
        return None, f"category {c.get('category')!r} has no motion-segmentation labels"
    try:
        hand, obj = hand_and_object_masks(read_mask(path, size), names)
    except MaskError as exc:
        return None, f"{path}: {exc}"
    depth = K = None
    note = ""
    if obj is None:  # the hand hides the object: depth would not be used
        note = "no object pixels in the mask"
    elif c.get("depth_path") and c.get("intrinsics_path"):
        try:
            from deft_core.video import read_video

            d = read_video(c["depth_path"], indices=[index], gray16=True)[0]
            d = _fit_depth(d, size)
            depth, K = d.astype(np.float32) / 1000.0, np.load(c["intrinsics_path"])
        except Exception as exc:  # noqa: BLE001 - a broken depth video costs the depth cue, not the clip
            depth, note = None, f"depth unusable: {type(exc).__name__}: {exc}"
    else:
        note = "no depth video or intrinsics"
    return FrameMasks(hand, obj, depth, K, note), ""


def _fit_depth(d: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A depth frame at the RGB's ``size`` = (width, height): as is, or resized (nearest: no depths are
    invented across edges) when it has the same aspect ratio at another resolution, e.g. a sensor aligned
    to the colour camera at a lower one. Another aspect ratio is not the same view: ValueError."""
    h, w = d.shape[:2]
    if (w, h) == tuple(size):
        return d
    if abs(w / h - size[0] / size[1]) > 0.01 * size[0] / size[1]:
        raise ValueError(f"depth frame is {w}x{h}, the video {size[0]}x{size[1]} (another aspect ratio)")
    import cv2

    return cv2.resize(d, tuple(int(v) for v in size), interpolation=cv2.INTER_NEAREST)
