"""Contact frame → v1 mapping: the object's own features beat the background when the object is raised."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.stages import contact_points as cp
from pipelines.stages.contact_mapping import estimate_object_motion, grow_box, map_contact_to_v1
from tests.pipeline.frames import SKIN_RGB, background

W, H = 456, 256
OBJ = (200, 90, 290, 180)        # object box in the contact frame (x1, y1, x2, y2)
HAND = (170, 120, 225, 175)      # hand box, overlapping the object's left edge


def _textured_object(seed: int) -> np.ndarray:
    """A colourful block texture for the object (distinct from the grey table)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 225, size=((OBJ[3] - OBJ[1]) // 6 + 1, (OBJ[2] - OBJ[0]) // 6 + 1, 3), dtype=np.uint8)
    tex = np.kron(small, np.ones((6, 6, 1), np.uint8))
    tex[..., 2] = np.maximum(tex[..., 2], 150)  # bluish: never skin-coloured
    return tex[:OBJ[3] - OBJ[1], :OBJ[2] - OBJ[0]]


def _pair(bg_shift=(9, -5), obj_shift=(-7, 6), textured: bool = True, seed: int = 4):
    """(contact frame, v1): between them the table moves by ``bg_shift`` px and the raised object by
    ``obj_shift`` px (parallax: it is nearer the camera). The hand covers part of the object in the
    contact frame only (in v1 it has not arrived yet)."""
    table = background(W + 40, H + 40, seed)
    obj = _textured_object(seed + 1) if textured else np.full((OBJ[3] - OBJ[1], OBJ[2] - OBJ[0], 3), (40, 60, 200), np.uint8)

    def frame(bg_dx, bg_dy, ob_dx, ob_dy, hand: bool):
        img = table[20 - bg_dy:20 - bg_dy + H, 20 - bg_dx:20 - bg_dx + W].copy()
        x1, y1 = OBJ[0] + ob_dx, OBJ[1] + ob_dy
        img[y1:y1 + obj.shape[0], x1:x1 + obj.shape[1]] = obj
        if hand:
            img[HAND[1]:HAND[3], HAND[0]:HAND[2]] = SKIN_RGB
        return img

    return frame(0, 0, 0, 0, True), frame(*bg_shift, *obj_shift, False)


def test_object_features_carry_points_on_a_raised_object():
    fc, v1 = _pair()
    m = map_contact_to_v1(fc, v1, HAND, OBJ)
    assert m.how == "object" and m.inliers >= 8, m.note
    probe = np.array([[230.0, 130.0], [260.0, 160.0], [215.0, 100.0]])  # points on the object
    err = np.linalg.norm(cp.apply_homography(m.H, probe) - (probe + [-7, 6]), axis=1)
    assert err.max() < 1.0
    # the background mapping alone carries them with the table's motion: the parallax error stays
    bg = map_contact_to_v1(fc, v1, HAND, OBJ, use_object=False)
    assert bg.how == "background"
    err_bg = np.linalg.norm(cp.apply_homography(bg.H, probe) - (probe + [-7, 6]), axis=1)
    assert err_bg.min() > 10.0  # |(9, -5) - (-7, 6)| = 19.4 px


def test_textureless_object_falls_back_to_the_background_and_says_why():
    fc, v1 = _pair(textured=False)
    m = map_contact_to_v1(fc, v1, HAND, OBJ)
    assert m.how == "background" and "object" in m.note
    np.testing.assert_allclose(cp.apply_homography(m.H, np.array([[50.0, 40.0]])), [[59.0, 35.0]], atol=1.0)


def test_object_shift_beyond_the_search_region_is_refused():
    fc, v1 = _pair()
    wrong_bg = np.array([[1.0, 0, 80.0], [0, 1.0, 0], [0, 0, 1.0]])  # puts the search region 80 px off
    fit = estimate_object_motion(fc, v1, HAND, OBJ, wrong_bg)
    assert fit.H is None and fit.reason.startswith("object:")


def test_without_parallax_the_background_fit_is_kept():
    """Object and table move alike: the background homography carries the object's inliers, so the
    8-DoF fit on many more features is kept, and the note says why."""
    fc, v1 = _pair(bg_shift=(9, -5), obj_shift=(9, -5))
    m = map_contact_to_v1(fc, v1, HAND, OBJ)
    assert m.how == "background" and "no parallax" in m.note
    np.testing.assert_allclose(cp.apply_homography(m.H, np.array([[240.0, 130.0]])), [[249.0, 125.0]], atol=1.0)


def test_object_carries_the_points_when_the_background_fit_fails():
    """Too few background inliers (a textureless table): the object's own fit maps the points."""
    fc, v1 = _pair()
    flat_bg = lambda img: np.where(cp._box_mask(img.shape[:2], OBJ)[..., None], img, 120).astype(np.uint8)  # noqa: E731
    fc, v1 = flat_bg(fc), flat_bg(v1)
    with pytest.raises(cp.ContactPointsError):
        map_contact_to_v1(fc, v1, HAND, OBJ, use_object=False)
    m = map_contact_to_v1(fc, v1, HAND, OBJ)
    assert m.how == "object" and m.background_inliers is None and "background failed" in m.note
    err = np.linalg.norm(cp.apply_homography(m.H, np.array([[250.0, 140.0]])) - [[243.0, 146.0]])
    assert err < 1.0


def test_same_frame_is_the_identity_and_grow_box():
    fc, _ = _pair()
    m = map_contact_to_v1(fc, fc, HAND, OBJ, same_frame=True)
    assert m.how == "identity" and m.inliers is None
    np.testing.assert_array_equal(m.H, np.eye(3))
    np.testing.assert_allclose(grow_box([10, 20, 30, 60], 0.5, 2.0), [-2, -2, 42, 82])


def test_no_background_features_raises_contact_points_error():
    flat = np.full((H, W, 3), 90, np.uint8)
    with pytest.raises(cp.ContactPointsError):
        map_contact_to_v1(flat, flat, HAND, OBJ)


def test_feature_fits_take_rgb_or_grey_frames_alike():
    from pipelines.stages import contact_points as cp

    a = background(seed=3)
    b = np.roll(a, (4, 6), axis=(0, 1))
    rgb = cp.estimate_homography(a, b, [np.array([10, 10, 30, 30])])
    grey = cp.estimate_homography(cp.as_grey(a), cp.as_grey(b), [np.array([10, 10, 30, 30])])
    np.testing.assert_allclose(rgb.H, grey.H)
    assert cp.as_grey(a).ndim == 2 and np.array_equal(cp.as_grey(cp.as_grey(a)), cp.as_grey(a))
