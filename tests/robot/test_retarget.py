"""MANO → robot hand retargeting (Appendix C) and affordance prediction → ξ."""

from types import SimpleNamespace

import numpy as np
import pytest

from deft_core.geometry import (euler_xyz_to_matrix, invert_transform, look_at,
                                make_transform, project_points, transform_points, intrinsics_matrix)
from deft_core.grasp import HAND_JOINT_NAMES
from deft_core.retarget import (RetargetConfig, affordance_to_grasp, anatomical_to_hand, hand_joint_limits,
                                mano_to_hand, robust_depth)

mano = pytest.importorskip("deft_core.mano")

IDX = {n: i for i, n in enumerate(HAND_JOINT_NAMES)}
CLOSING = [IDX[f"{f}_{j}"] for f in ("index", "middle", "ring") for j in ("mcp_forward", "pip", "dip")]
SIDE = [IDX["index_mcp_side"], IDX["middle_mcp_side"], IDX["ring_mcp_side"]]


def _anat(spread=0.0, bend=0.0):
    a = np.zeros((15, 3))
    a[:, 1] = spread
    a[:, 2] = bend
    return a


def test_flat_hand_is_open():
    q = mano_to_hand(np.zeros(45))
    assert q.shape == (16,)
    np.testing.assert_allclose(q, 0.0, atol=1e-9)


def test_fist_closes_the_fingers():
    lo, hi = hand_joint_limits()
    fist = mano.anatomical_to_pose(_anat(bend=1.2))
    q = mano_to_hand(fist)
    np.testing.assert_allclose(q[CLOSING], np.minimum(1.2, hi[CLOSING]), atol=1e-6)
    np.testing.assert_allclose(q[SIDE], 0.0, atol=1e-6)
    # a fist beyond the hand's range ends exactly on the upper limits (closed, never past them)
    hard = mano_to_hand(mano.anatomical_to_pose(_anat(bend=2.9)))
    np.testing.assert_allclose(hard[CLOSING], hi[CLOSING], atol=1e-9)


def test_spread_moves_side_joints_towards_the_thumb_with_the_right_sign():
    # positive MANO spread swings index/middle/ring away from the thumb → negative robot side angle
    q = mano_to_hand(mano.anatomical_to_pose(_anat(spread=0.3)))
    np.testing.assert_allclose(q[SIDE], -0.3, atol=1e-6)
    np.testing.assert_allclose(q[CLOSING], 0.0, atol=1e-6)
    # and a single finger's spread moves only that finger's side joint
    a = np.zeros((15, 3))
    a[3, 1] = -0.2  # middle MCP towards the thumb
    q = mano_to_hand(mano.anatomical_to_pose(a))
    assert q[IDX["middle_mcp_side"]] == pytest.approx(0.2, abs=1e-6)
    assert np.abs(np.delete(q, IDX["middle_mcp_side"])).max() < 1e-6


def test_thumb_and_pinky_mapping():
    a = np.zeros((15, 3))
    a[12] = [0.0, 0.4, 0.5]   # thumb1: spread, bend
    a[13, 2] = 0.6             # thumb2 bend
    a[14, 2] = 0.7             # thumb3 bend
    a[6:9, 2] = 1.0            # the pinky is dropped
    q = anatomical_to_hand(a)
    np.testing.assert_allclose(q[12:], [0.4, 0.5, 0.6, 0.7], atol=1e-9)
    np.testing.assert_allclose(q[:12], 0.0, atol=1e-9)


def test_limits_scale_offset_and_batch():
    lo, hi = hand_joint_limits()
    rng = np.random.default_rng(0)
    poses = rng.normal(0, 1.5, size=(64, 45))
    q = mano_to_hand(poses)
    assert q.shape == (64, 16)
    assert np.all(q >= lo - 1e-12) and np.all(q <= hi + 1e-12)
    cfg = RetargetConfig(scale=np.full(16, 0.5), offset=np.full(16, 0.1), clip=False)
    q2 = anatomical_to_hand(_anat(bend=1.0), cfg)
    np.testing.assert_allclose(q2[CLOSING], 0.6)
    with pytest.raises(ValueError, match="scale"):
        RetargetConfig(scale=np.ones(3))
    with pytest.raises(ValueError, match="45"):
        mano_to_hand(np.zeros(44))


def test_robust_depth_ignores_holes_and_outliers():
    d = np.full((40, 60), 0.8, np.float32)
    d[18:23, 28:33] = 0.0          # a hole at the pixel
    d[20, 27] = np.nan
    assert robust_depth(d, (30, 20), radius=1) == pytest.approx(0.8)
    d2 = np.zeros((40, 60), np.float32)
    with pytest.raises(ValueError, match="no valid depth"):
        robust_depth(d2, (30, 20))
    with pytest.raises(ValueError, match="outside"):
        robust_depth(d, (60, 5))


def test_affordance_to_grasp_recovers_point_rotation_and_hand():
    K = intrinsics_matrix(400.0, 400.0, 159.5, 119.5)
    eye, target = np.array([0.9, 0.1, 0.7]), np.array([0.45, 0.0, 0.05])
    T_base_cam = make_transform(look_at(eye, target), eye)
    point = np.array([0.42, 0.05, 0.06])
    p_cam = transform_points(invert_transform(T_base_cam), point)
    uv = project_points(p_cam, K)
    depth = np.full((240, 320), 2.0, np.float32)
    u, v = np.round(uv).astype(int)
    depth[v - 4: v + 5, u - 4: u + 5] = p_cam[2]
    depth[v, u] = 0.0  # hole exactly at the contact pixel
    R_base_wrist = euler_xyz_to_matrix([2.8, 0.2, -0.4])
    from deft_core.geometry import matrix_to_axis_angle
    wrist_cam = matrix_to_axis_angle(T_base_cam[:3, :3].T @ R_base_wrist)
    pose = mano.anatomical_to_pose(_anat(bend=0.5))
    pred = SimpleNamespace(contact_pixel=uv, wrist_rotation=wrist_cam, hand_pose=pose)
    xi = affordance_to_grasp(pred, depth, K, T_base_cam)
    np.testing.assert_allclose(xi.mu, point, atol=1e-6)
    np.testing.assert_allclose(euler_xyz_to_matrix(xi.theta), R_base_wrist, atol=1e-9)
    np.testing.assert_allclose(xi.hand, mano_to_hand(pose))
    # plain dicts work too; bad fields are named
    xi2 = affordance_to_grasp(dict(contact_pixel=uv, wrist_rotation=wrist_cam, hand_pose=pose), depth, K, T_base_cam)
    np.testing.assert_allclose(xi2.to_vector(), xi.to_vector())
    with pytest.raises(ValueError, match="hand_pose"):
        affordance_to_grasp(dict(contact_pixel=uv, wrist_rotation=wrist_cam, hand_pose=np.zeros(10)), depth, K, T_base_cam)
