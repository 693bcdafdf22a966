"""Contact points at the contact frame, mapped to the first frame v1, summarised by a GMM.

Default (``mode="grasp_centre"``, :func:`grasp_centre_points`): points on the hand's skin around the
midpoint of the hand's skin centroid and the object centre. The HOI-Forecast / VRB outline recipe
(``mode="contour"``, below) puts the points on the hand's outline where it enters the object box; from an
egocentric view the hand covers the object and the true contacts lie under the fingers, inside the
silhouette: on the synthetic data the outline recipe is 13–20 % of the crop side off, the grasp centre
5–8 % (docs/extraction-jobs.md). The recipe stays available as ``mode="contour"`` and is the fallback.
Where the dataset has its own hand and object masks (HOI4D's ``2Dseg``) and depth,
:func:`contact_points_from_masks` replaces skin colour (:mod:`pipelines.stages.frame_masks`).

The recipe, at the contact frame (RGB uint8, pixels x right / y down):

1. skin mask: HSV in [(0,40,0),(25,255,255)] ∪ YCrCb in [(0,138,67),(255,173,133)], refined by
   erode/dilate markers → watershed → Otsu → 20×20 closing (:func:`skin_mask`); inside the object box,
   pixels nearer an object colour model than the hand's are removed (:func:`separate_from_object`);
2. the largest external contour of skin ∩ hand box, without the pixels where the box cuts the mask; its points inside hand box ∩ object box (2 px
   tolerance); with ≥ ``num_points`` of them: farthest-point sampling to ``num_sampling`` (20), then
   the ``num_points`` (5) nearest the object-box centre; otherwise fall back to skin pixels inside the
   intersection box, else the intersection box's pixels, sampled the same way (:func:`contact_points_at`);
3. a homography contact frame → v1 from ORB features outside the hand and object boxes,
   ``cv2.findHomography(..., RANSAC, 4.0)``, a similarity fit when that is degenerate (:func:`estimate_homography`);
   the pipeline first tries a similarity fitted on the object's own features and uses this background
   fit only when the object cannot carry it (:mod:`pipelines.stages.contact_mapping`: a raised object
   moves differently from the table under a moving head camera); points that land outside the
   (mapped) object box in v1 are discarded;
4. a diagonal :class:`sklearn.mixture.GaussianMixture` on the kept points, crop-normalised
   (:func:`fit_gmm`): means and variances, components sorted by (x, y) for determinism.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


class ContactPointsError(ValueError):
    """Contact points could not be extracted (the message says which step failed)."""


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB uint8 → (H, W) bool skin mask (HOI-Forecast's ``skin_extract``)."""
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    hsv = cv2.inRange(cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV), (0, 40, 0), (25, 255, 255))
    ycc = cv2.inRange(cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb), (0, 138, 67), (255, 173, 133))
    mask = cv2.bitwise_or(hsv, ycc)
    if not mask.any():
        return mask.astype(bool)
    sure_fg = cv2.erode(mask, None, iterations=3)
    sure_bg = cv2.dilate(mask, None, iterations=3)
    markers = np.zeros(mask.shape, np.int32)
    markers[sure_bg == 0] = 1        # certainly background
    markers[sure_fg > 0] = 2         # certainly skin; the band between is decided by watershed
    markers = cv2.watershed(bgr, markers)
    region = np.where(markers == 2, 255, 0).astype(np.uint8)
    _, region = cv2.threshold(region, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    region = cv2.morphologyEx(region, cv2.MORPH_CLOSE, np.ones((20, 20), np.uint8))
    return region > 0


def farthest_point_sampling(points: np.ndarray, n: int, seed_points: np.ndarray | None = None) -> np.ndarray:
    """Greedy FPS of ``points`` (N, 2) down to ``n``; starts from ``seed_points`` if given, else point 0."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) <= n:
        return pts
    chosen = [0] if seed_points is None or len(seed_points) == 0 else []
    d = np.full(len(pts), np.inf)
    for s in (seed_points if seed_points is not None and len(seed_points) else pts[:1]):
        d = np.minimum(d, np.sum((pts - s) ** 2, axis=1))
    while len(chosen) < n:
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, np.sum((pts - pts[i]) ** 2, axis=1))
    return pts[chosen]


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    return np.array([x1, y1, x2, y2]) if x2 > x1 and y2 > y1 else None


def _inside(pts: np.ndarray, box: np.ndarray, tol: float = 0.0) -> np.ndarray:
    return (pts[:, 0] >= box[0] - tol) & (pts[:, 0] <= box[2] + tol) & (pts[:, 1] >= box[1] - tol) & (pts[:, 1] <= box[3] + tol)


def _box_mask(shape, box, grow: float = 0.0) -> np.ndarray:
    h, w = shape
    m = np.zeros((h, w), bool)
    x1, y1 = max(0, int(np.floor(box[0] - grow))), max(0, int(np.floor(box[1] - grow)))
    x2, y2 = min(w, int(np.ceil(box[2] + grow))), min(h, int(np.ceil(box[3] + grow)))
    m[y1:y2, x1:x2] = True
    return m


def _lab_centres(pixels: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(pixels))
    cv2.setRNGSeed(0)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(pixels.astype(np.float32), k, None, crit, 2, cv2.KMEANS_PP_CENTERS)
    return centres


def separate_from_object(rgb: np.ndarray, skin: np.ndarray, hand_box, object_box, min_pixels: int = 30) -> np.ndarray:
    """Remove object pixels that the colour-threshold skin mask took for skin (warm-coloured objects:
    wood, lemons, red mugs). Colour models in CIELAB: the hand from skin pixels in the hand box outside
    the object box (2 k-means centres), the object from object-box pixels outside the hand box (3
    centres); inside the object box a skin pixel stays skin only when it is nearer the hand model.
    Returns ``skin`` unchanged when either region has fewer than ``min_pixels`` pixels."""
    shape = skin.shape
    in_h, in_o = _box_mask(shape, hand_box), _box_mask(shape, object_box)
    hand_ref = skin & in_h & ~_box_mask(shape, object_box, 2.0)
    obj_ref = in_o & ~_box_mask(shape, hand_box, 2.0)
    if hand_ref.sum() < min_pixels or obj_ref.sum() < min_pixels:
        return skin
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    ch, co = _lab_centres(lab[hand_ref], 2), _lab_centres(lab[obj_ref], 3)
    region = skin & in_o
    px = lab[region]
    dh = np.min(np.linalg.norm(px[:, None] - ch[None], axis=2), axis=1)
    do = np.min(np.linalg.norm(px[:, None] - co[None], axis=2), axis=1)
    out = skin.copy()
    out[region] = dh < do
    return out


def contact_points_at(rgb: np.ndarray, hand_box, object_box, num_points: int = 5, num_sampling: int = 20,
                      mask: np.ndarray | None = None, touch_tolerance_px: float = 4.0,
                      mode: str = "grasp_centre") -> tuple[np.ndarray, str]:
    """Contact points (≤ ``num_points``, 2) in pixels of the contact frame, and which path produced them
    ("grasp_centre", "contour", "skin" or "box").

    ``mode``: ``"grasp_centre"`` (default, :func:`grasp_centre_points`), ``"contour"`` (the
    HOI-Forecast recipe: hand outline inside hand box ∩ object box) or ``"region"`` (skin pixels inside the
    intersection instead of the outline). Boxes that only touch (a gap ≤ ``touch_tolerance_px``, common for
    detector boxes of a hand on an object) are grown by that much before intersecting. Raises
    :class:`ContactPointsError` if the boxes do not overlap even then."""
    hb, ob = np.asarray(hand_box, float), np.asarray(object_box, float)
    inter = intersect(hb, ob)
    if inter is None and touch_tolerance_px > 0:
        grow = np.array([-1, -1, 1, 1]) * touch_tolerance_px
        inter = intersect(hb + grow, ob + grow)
    if inter is None:
        raise ContactPointsError(f"hand box {hb.round(1).tolist()} and object box {ob.round(1).tolist()} do not overlap")
    h, w = rgb.shape[:2]
    skin = separate_from_object(rgb, skin_mask(rgb), hb, ob) if mask is None else mask
    hand_mask = np.zeros((h, w), np.uint8)
    x1, y1 = max(0, int(np.floor(hb[0]))), max(0, int(np.floor(hb[1])))
    x2, y2 = min(w, int(np.ceil(hb[2]))), min(h, int(np.ceil(hb[3])))
    hand_mask[y1:y2, x1:x2] = skin[y1:y2, x1:x2]
    contours, _ = cv2.findContours(hand_mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour_pts = np.zeros((0, 2))
    if contours:
        largest = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
        # the mask is cut at the hand box: contour pixels on the box border (not on the image border)
        # are that cut, not the hand's outline
        cut = np.zeros(len(largest), bool)
        for axis, lo_b, hi_b, lim in ((0, x1, x2, w), (1, y1, y2, h)):
            v = largest[:, axis]
            cut |= ((v <= lo_b + 1) & (lo_b > 0)) | ((v >= hi_b - 2) & (hi_b < lim))
        largest = largest[~cut]
        contour_pts = largest[_inside(largest, inter, tol=2.0)]
    centre = np.array([(ob[0] + ob[2]) / 2, (ob[1] + ob[3]) / 2])
    if mode not in ("grasp_centre", "contour", "region"):
        raise ValueError(f"mode must be 'grasp_centre', 'contour' or 'region', got {mode!r}")
    if mode == "grasp_centre":
        pts = grasp_centre_points(skin, hb, ob, num_points, num_sampling)
        if pts is not None:
            return pts, "grasp_centre"
        mode = "contour"
    if mode == "contour" and len(contour_pts) >= num_points:
        cand, how = farthest_point_sampling(contour_pts, num_sampling), "contour"
    else:
        ix1, iy1 = int(np.floor(inter[0])), int(np.floor(inter[1]))
        ix2, iy2 = int(np.ceil(inter[2])), int(np.ceil(inter[3]))
        ys, xs = np.nonzero(skin[max(0, iy1):min(h, iy2), max(0, ix1):min(w, ix2)])
        pix = np.stack([xs + max(0, ix1), ys + max(0, iy1)], 1).astype(np.float64)
        how = "skin"
        if len(pix) < num_points:
            gx, gy = np.meshgrid(np.linspace(inter[0], inter[2], 8), np.linspace(inter[1], inter[3], 8))
            pix, how = np.stack([gx.ravel(), gy.ravel()], 1), "box"
        seeds = contour_pts if len(contour_pts) and mode == "contour" else None
        cand = farthest_point_sampling(pix, num_sampling, seed_points=seeds)
    order = np.argsort(np.sum((cand - centre) ** 2, axis=1), kind="stable")
    return cand[order[:num_points]], how


def grasp_centre_points(skin: np.ndarray, hand_box, object_box, num_points: int = 5, num_sampling: int = 20,
                        radius_frac: float = 0.15, clip_px: float = 3.0) -> np.ndarray | None:
    """Contact points around the grasp centre, for views where the hand covers the object (egocentric).

    The outline recipe puts points where the hand's silhouette enters the object box; the true contacts
    lie under the fingers and palm, inside the silhouette, between the hand and the (partly hidden)
    object. Anchor = midpoint of the hand's skin centroid (skin ∩ hand box) and the object-box centre
    clamped into the hand box; candidates = skin pixels of the hand box within ``radius_frac`` × the hand
    box's diagonal of the anchor; farthest-point sampling to ``num_sampling``, the ``num_points`` nearest
    the anchor, clamped into the object box (± ``clip_px``: the contact is on the object). Pixels (x, y) of
    the contact frame. ``None`` when the hand box has fewer than ``num_points`` skin pixels (the caller
    falls back to the outline recipe). Measured on the synthetic datasets: docs/extraction-jobs.md."""
    hb, ob = np.asarray(hand_box, float), np.asarray(object_box, float)
    hand = skin & _box_mask(skin.shape, hb)
    ys, xs = np.nonzero(hand)
    if len(xs) < num_points:
        return None
    pix = np.stack([xs, ys], 1).astype(np.float64)
    anchor = 0.5 * pix.mean(0) + 0.5 * np.clip((ob[:2] + ob[2:]) / 2, hb[:2], hb[2:])
    d2 = np.sum((pix - anchor) ** 2, axis=1)
    r = radius_frac * float(np.hypot(hb[2] - hb[0], hb[3] - hb[1]))
    cand = pix[d2 <= r * r]
    if len(cand) < num_points:
        cand = pix[np.argsort(d2, kind="stable")[:num_points]]
    cand = farthest_point_sampling(cand[np.argsort(np.sum((cand - anchor) ** 2, 1), kind="stable")], num_sampling,
                                   seed_points=anchor[None])
    cand = cand[np.argsort(np.sum((cand - anchor) ** 2, axis=1), kind="stable")[:num_points]]
    return np.clip(cand, ob[:2] - clip_px, ob[2:] + clip_px)


def touch_points(hand_mask: np.ndarray, object_mask: np.ndarray, depth_m: np.ndarray, K, num_points: int = 5,
                 num_sampling: int = 20, tolerance_m: float = 0.01, max_points: int = 50_000) -> np.ndarray | None:
    """Where hand and object meet in 3-D: hand pixels whose back-projected point (``depth_m``, metres;
    intrinsics ``K``) lies within ``tolerance_m`` of the nearest distance any hand pixel has to the object's
    back-projected pixels. Farthest-point sampling to ``num_sampling``, the ``num_points`` nearest their
    centroid; (x, y) pixels. ``None`` when either mask has no pixel with depth (0 or non-finite = none).
    Each cloud is subsampled (evenly, deterministically) to ``max_points``."""
    from deft_core.geometry import deproject_pixel

    K = np.asarray(K, np.float64)
    clouds = []
    for m in (hand_mask, object_mask):
        ys, xs = np.nonzero(m & np.isfinite(depth_m) & (depth_m > 0))
        if len(xs) == 0:
            return None
        step = max(1, int(np.ceil(len(xs) / max_points)))
        px = np.stack([xs[::step], ys[::step]], 1).astype(np.float64)
        clouds.append((px, deproject_pixel(px, depth_m[ys[::step], xs[::step]], K)))
    from scipy.spatial import cKDTree

    (hpx, hxyz), (_, oxyz) = clouds
    d, _ = cKDTree(oxyz).query(hxyz)
    cand = hpx[d <= d.min() + tolerance_m]
    centre = cand.mean(0)
    cand = farthest_point_sampling(cand[np.argsort(np.sum((cand - centre) ** 2, 1), kind="stable")], num_sampling,
                                   seed_points=centre[None])
    return cand[np.argsort(np.sum((cand - centre) ** 2, axis=1), kind="stable")[:num_points]]


def contact_points_from_masks(hand_mask: np.ndarray, object_mask: np.ndarray | None, hand_box, object_box,
                              depth_m: np.ndarray | None = None, K=None, num_points: int = 5,
                              num_sampling: int = 20, clip_px: float = 3.0) -> tuple[np.ndarray | None, str]:
    """Contact points from a dataset's own hand and object masks (HOI4D's ``2Dseg``) instead of skin colour.

    ``"hand_mask"``: :func:`grasp_centre_points` on the hand mask. ``"hand_mask_depth"``, with a depth
    frame and intrinsics: those points and as many from :func:`touch_points` (where the hand's and the
    object's depth pixels meet; repeated when fewer were found), so their centroid is halfway between the
    two estimates: the grasp centre lies under the hand, where the hidden fingers close on the object,
    the touch points on the visible meeting line (not when ``object_mask`` is None or empty: the hand
    hides the whole object). The grasp-centre points are clamped into the object box (± ``clip_px``); the
    touch points are not: those more than 4 px outside it after the mapping to v1 are dropped there,
    which measured better than clamping them (full demo's HOI4D data: mean 9.97 against 10.30 %, median
    unchanged). Measured on the synthetic HOI4D data: docs/extraction-jobs.md.
    ``(None, why)`` when the hand box holds fewer than ``num_points`` of the mask's hand pixels (the mask
    and the box disagree): the caller then uses the skin recipe on the frame."""
    hand = np.asarray(hand_mask, bool)
    gc = grasp_centre_points(hand, hand_box, object_box, num_points, num_sampling, clip_px=clip_px)
    if gc is None:
        return None, f"the hand box holds fewer than {num_points} of the mask's hand pixels"
    if depth_m is not None and K is not None and object_mask is not None:
        tp = touch_points(hand, np.asarray(object_mask, bool), np.asarray(depth_m), K, num_points, num_sampling)
        if tp is not None:
            tp = np.resize(tp, gc.shape)  # as many as gc: the centroid is the midpoint
            return np.vstack([gc, tp]), "hand_mask_depth"
    return gc, "hand_mask"


@dataclass
class Homography:
    H: np.ndarray        #: 3×3, maps contact-frame pixels to v1 pixels
    inliers: int
    matches: int


def _feature_mask(shape, boxes, pad: float = 8.0) -> np.ndarray:
    m = np.full(shape[:2], 255, np.uint8)
    for b in boxes:
        if b is None:
            continue
        b = np.asarray(b, float)
        x1, y1 = max(0, int(b[0] - pad)), max(0, int(b[1] - pad))
        x2, y2 = min(shape[1], int(np.ceil(b[2] + pad))), min(shape[0], int(np.ceil(b[3] + pad)))
        m[y1:y2, x1:x2] = 0
    return m


def as_grey(img: np.ndarray) -> np.ndarray:
    """A frame as 8-bit grey for feature matching: (H, W) is returned as is, (H, W, 3) RGB converted."""
    img = np.ascontiguousarray(img)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def estimate_homography(src_rgb: np.ndarray, dst_rgb: np.ndarray, exclude_boxes, min_inliers: int = 15,
                        n_features: int = 2000) -> Homography:
    """Homography from ``src`` (contact frame) to ``dst`` (v1) with ORB features outside ``exclude_boxes``
    (hand and object boxes, in both frames) and RANSAC (reprojection threshold 4 px).

    A fit with fewer than ``min_inliers`` inliers, or a degenerate one (area scale of the linear part outside
    [0.25, 4], a mirror flip, or strong perspective terms — what RANSAC returns on a few chance matches), is
    replaced by a RANSAC similarity fit (``cv2.estimateAffinePartial2D``) if that has ``min_inliers`` and a
    scale in [0.5, 2]; otherwise refused. The frames are RGB or already grey (:func:`as_grey`)."""
    g1, g2 = as_grey(src_rgb), as_grey(dst_rgb)
    mask = _feature_mask(g1.shape, exclude_boxes)
    orb = cv2.ORB_create(nfeatures=n_features)
    k1, d1 = orb.detectAndCompute(g1, mask)
    k2, d2 = orb.detectAndCompute(g2, mask)
    if d1 is None or d2 is None or len(k1) < 4 or len(k2) < 4:
        raise ContactPointsError(f"homography: too few ORB features outside the hand/object boxes ({len(k1)}, {len(k2)})")
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(d1, d2)
    if len(matches) < 4:
        raise ContactPointsError(f"homography: only {len(matches)} feature matches")
    p1 = np.float32([k1[m.queryIdx].pt for m in matches])
    p2 = np.float32([k2[m.trainIdx].pt for m in matches])
    H, inl = cv2.findHomography(p1, p2, cv2.RANSAC, 4.0)
    n_in = int(inl.sum()) if inl is not None else 0
    if H is None or n_in < min_inliers:
        raise ContactPointsError(f"homography: {n_in} RANSAC inliers of {len(matches)} matches (< {min_inliers})")
    H = H / H[2, 2]
    det = float(np.linalg.det(H[:2, :2]))
    if not (0.25 <= det <= 4.0) or np.abs(H[2, :2]).max() > 5e-3:
        # fall back to a similarity (rotation, uniform scale, translation): 4 DoF cannot collapse the way
        # an 8-DoF fit on features clustered on a repetitive or near-linear background can
        A, inl_a = cv2.estimateAffinePartial2D(p1, p2, method=cv2.RANSAC, ransacReprojThreshold=4.0)
        n_a = int(inl_a.sum()) if inl_a is not None else 0
        scale = float(np.sqrt(abs(np.linalg.det(A[:, :2])))) if A is not None else 0.0
        if A is None or n_a < min_inliers or not (0.5 <= scale <= 2.0):
            raise ContactPointsError(f"homography: degenerate fit (det {det:.2f}, perspective {np.abs(H[2, :2]).max():.1e}) "
                                     f"from {n_in} inliers; similarity fallback: {n_a} inliers, scale {scale:.2f}")
        return Homography(np.vstack([A, [0.0, 0.0, 1.0]]), n_a, len(matches))
    return Homography(H, n_in, len(matches))


def apply_homography(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64).reshape(-1, 1, 2)
    return cv2.perspectiveTransform(pts, np.asarray(H, np.float64)).reshape(-1, 2)


def map_box(H: np.ndarray, box) -> np.ndarray:
    """Bounding box of a box's four corners mapped by ``H``."""
    b = np.asarray(box, float)
    c = apply_homography(H, np.array([[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]]))
    return np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()])


def fit_gmm(points: np.ndarray, n_components: int = 5, seed: int = 0, reg_covar: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal GMM on (K, 2) points → (means k×2, variances k×2), k = min(n_components, K).

    Components are sorted by (x, y). ``reg_covar`` is the variance floor in the points' units squared.
    """
    from sklearn.mixture import GaussianMixture

    pts = np.asarray(points, np.float64)
    k = max(1, min(n_components, len(np.unique(pts.round(6), axis=0))))
    gm = GaussianMixture(n_components=k, covariance_type="diag", random_state=seed, reg_covar=reg_covar).fit(pts)
    order = np.lexsort((gm.means_[:, 1], gm.means_[:, 0]))
    return gm.means_[order], gm.covariances_[order]
