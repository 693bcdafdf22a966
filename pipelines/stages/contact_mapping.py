"""Map contact-frame pixels to the first frame v1: on the object first, the background second.

The head camera moves between v1 and the contact frame. A homography fitted on the background (the
table plane, :func:`~pipelines.stages.contact_points.estimate_homography`) carries points *on the table*
correctly, but points on an object that stands above the table (a cup's body, a drawer's handle) move
differently between the two views (parallax). The object is rigid and static until it is touched, so
the mapping that carries the contact points is the one that carries the object's own pixels.

:func:`map_contact_to_v1`:

1. ``"background"`` fit first (ORB outside the hand/object boxes, RANSAC homography); it places the
   search region for the object and is the fallback;
2. ``"object"``: ORB features inside the contact frame's object box (minus the hand box, grown by
   ``hand_pad_px``) matched (Lowe ratio 0.8) to features of v1 inside the search region — the object box
   carried by the background homography, grown by ``search_grow`` of its size + ``search_pad_px`` (twice
   that around the unmoved box when the background fit failed) — and a RANSAC similarity (rotation,
   uniform scale, translation, ``cv2.estimateAffinePartial2D``, 3 px). Accepted with ≥ ``min_inliers``
   inliers, an inlier ratio ≥ ``min_inlier_ratio``, a scale within [0.7, 1.4] and the object centre
   inside the search margin;
3. choice: the object fit when the background fit failed, or when the background homography carries
   fewer than ``agree_fraction`` (0.8) of the object's inliers to within 1.5 px (parallax); otherwise the
   background (no measurable parallax: its 8-DoF fit on many more features is kept). Neither: a
   :class:`~pipelines.stages.contact_points.ContactPointsError` naming both reasons.

Pixels: x right, y down, decoded-frame pixels of both frames. The returned 3×3 matrix maps
contact-frame pixels to v1 pixels. Measured on the synthetic datasets: docs/extraction-jobs.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from deft_core.schema import CONTACT_MAPPINGS
from pipelines.stages import contact_points as cp

#: the values of :attr:`ContactMapping.how` (the shard's ``contact_mapping`` column)
MAPPINGS = CONTACT_MAPPINGS


@dataclass
class ContactMapping:
    H: np.ndarray       #: 3×3, contact-frame pixels → v1 pixels
    how: str            #: one of :data:`MAPPINGS`
    inliers: int | None  #: RANSAC inliers of the fit used (None for the identity)
    note: str = ""      #: why a better mapping was not used (empty when the first one was)
    background_inliers: int | None = None  #: inliers of the background homography (always fitted, except identity)


def grow_box(box, frac: float, pad_px: float) -> np.ndarray:
    """(x1, y1, x2, y2) grown on every side by ``frac`` × its width/height + ``pad_px`` pixels."""
    b = np.asarray(box, float)
    gx, gy = frac * (b[2] - b[0]) + pad_px, frac * (b[3] - b[1]) + pad_px
    return b + np.array([-gx, -gy, gx, gy])


def _mask(shape, box, minus=None, minus_pad: float = 0.0) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[cp._box_mask(shape, box)] = 255
    if minus is not None:
        m[cp._box_mask(shape, minus, minus_pad)] = 0
    return m


@dataclass
class ObjectFit:
    H: np.ndarray | None   #: 3×3 similarity, contact frame → v1 (None: the object cannot carry the mapping)
    inliers: int           #: RANSAC inliers among the object's matches
    background_agree: int  #: of those inliers, how many the background homography also carries (< 1.5 px)
    reason: str = ""       #: why ``H`` is None


def estimate_object_motion(src_rgb: np.ndarray, dst_rgb: np.ndarray, hand_box, object_box, H_prior: np.ndarray | None,
                           min_inliers: int = 8, min_inlier_ratio: float = 0.15, hand_pad_px: float = 4.0,
                           search_grow: float = 0.25, search_pad_px: float = 10.0,
                           ratio: float = 0.8, n_features: int = 1000) -> ObjectFit:
    """Similarity transform contact frame (``src``) → v1 (``dst``) fitted on the object's own features
    (see the module doc). ``H_prior``: the background homography, which places the v1 search region and
    is scored on the object's inliers; ``None`` when it failed (the region is then the object box itself,
    grown twice as much: the camera moves little between the two frames). Frames RGB or grey."""
    g1, g2 = cp.as_grey(src_rgb), cp.as_grey(dst_rgb)
    ob = np.asarray(object_box, float)
    prior = np.eye(3) if H_prior is None else np.asarray(H_prior, float)
    grow = 1.0 if H_prior is not None else 2.0
    predicted = cp.map_box(prior, ob)
    region = grow_box(predicted, grow * search_grow, grow * search_pad_px)
    # small objects have little texture: FAST's threshold low and the border/patch small enough for them
    orb = cv2.ORB_create(nfeatures=n_features, edgeThreshold=8, patchSize=15, fastThreshold=5)
    k1, d1 = orb.detectAndCompute(g1, _mask(g1.shape, ob, hand_box, hand_pad_px))
    k2, d2 = orb.detectAndCompute(g2, _mask(g2.shape, region))
    n1, n2 = len(k1), len(k2)
    if d1 is None or d2 is None or n1 < min_inliers or n2 < min_inliers:
        return ObjectFit(None, 0, 0, f"object: too few features ({n1} on the object, {n2} in the v1 search region)")
    # Lowe's ratio test: textures repeat (blocks, stripes); keep only distinctive matches
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(d1, d2, k=2)
    matches = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    if len(matches) < min_inliers:
        return ObjectFit(None, 0, 0, f"object: {len(matches)} matches (< {min_inliers})")
    p1 = np.float32([k1[m.queryIdx].pt for m in matches])
    p2 = np.float32([k2[m.trainIdx].pt for m in matches])
    A, inl = cv2.estimateAffinePartial2D(p1, p2, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    n = int(inl.sum()) if inl is not None else 0
    if A is None or n < min_inliers or n < min_inlier_ratio * len(matches):
        return ObjectFit(None, n, 0, f"object: {n} RANSAC inliers of {len(matches)} matches")
    scale = float(np.sqrt(abs(np.linalg.det(A[:, :2]))))
    if not 0.7 <= scale <= 1.4:
        return ObjectFit(None, n, 0, f"object: implausible scale {scale:.2f}")
    H = np.vstack([A, [0.0, 0.0, 1.0]])
    centre = np.array([[(ob[0] + ob[2]) / 2, (ob[1] + ob[3]) / 2]])
    shift = np.abs(cp.apply_homography(H, centre) - cp.apply_homography(prior, centre))[0]
    limit = (region[2:] - region[:2] - (predicted[2:] - predicted[:2])) / 2
    if np.any(shift > limit + 1e-6):
        return ObjectFit(None, n, 0, f"object: shift {shift.round(1).tolist()} px from the prior exceeds the search margin")
    agree = 0
    if H_prior is not None:
        q1, q2 = p1[inl.ravel() > 0], p2[inl.ravel() > 0]
        agree = int((np.linalg.norm(cp.apply_homography(prior, q1) - q2, axis=1) < 1.5).sum())
    return ObjectFit(H, n, agree)


def map_contact_to_v1(contact_rgb: np.ndarray, v1_rgb: np.ndarray, hand_box, object_box, other_boxes=(),
                      min_homography_inliers: int = 15, use_object: bool = True, same_frame: bool = False,
                      agree_fraction: float = 0.8, **object_options) -> ContactMapping:
    """The contact-frame → v1 mapping for the contact points (module doc). ``same_frame``: the contact
    frame is v1 (identity).

    Model selection: the object's similarity is used when the background homography fails, or when the
    background carries fewer than ``agree_fraction`` of the object's inliers (parallax: the object moved
    differently from the table). When the background carries the object too, it is kept (fitted on many
    more features, 8 degrees of freedom). Raises :class:`~pipelines.stages.contact_points.ContactPointsError`
    when neither mapping can be fitted (the message gives both reasons)."""
    if same_frame:
        return ContactMapping(np.eye(3), "identity", None)
    contact_rgb, v1_rgb = cp.as_grey(contact_rgb), cp.as_grey(v1_rgb)  # once for both fits
    try:
        bg = cp.estimate_homography(contact_rgb, v1_rgb, [hand_box, object_box, *(other_boxes or [])],
                                    min_inliers=min_homography_inliers)
    except cp.ContactPointsError as exc:
        if not use_object:
            raise
        bg, bg_error = None, str(exc)
    if not use_object:
        return ContactMapping(bg.H, "background", bg.inliers, "object mapping disabled", bg.inliers)
    fit = estimate_object_motion(contact_rgb, v1_rgb, hand_box, object_box, None if bg is None else bg.H, **object_options)
    if bg is None:
        if fit.H is None:
            raise cp.ContactPointsError(f"{bg_error}; {fit.reason}")
        return ContactMapping(fit.H, "object", fit.inliers, f"background failed: {bg_error}", None)
    if fit.H is not None and fit.background_agree < agree_fraction * fit.inliers:
        return ContactMapping(fit.H, "object", fit.inliers, "", bg.inliers)
    why = fit.reason or f"background carries {fit.background_agree} of the object's {fit.inliers} inliers (no parallax)"
    return ContactMapping(bg.H, "background", bg.inliers, why, bg.inliers)
