"""Property tests of the project's MANO conventions (deft_core.mano)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deft_core import mano
from deft_core.geometry import axis_angle_to_matrix

angle = st.floats(-1.4, 1.4, allow_nan=False)
angles15 = st.lists(st.tuples(st.floats(-1.2, 1.2), angle, angle), min_size=15, max_size=15).map(np.array)
pose45 = st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=45, max_size=45).map(np.array)


@settings(max_examples=100, deadline=None)
@given(angles15)
def test_anatomical_round_trip(a):
    pose = mano.anatomical_to_pose(a)
    np.testing.assert_allclose(mano.pose_to_anatomical(pose), a, atol=1e-7)


@settings(max_examples=100, deadline=None)
@given(pose45)
def test_pose_round_trip_through_anatomical(p):
    back = mano.anatomical_to_pose(mano.pose_to_anatomical(p))
    np.testing.assert_allclose(axis_angle_to_matrix(back.reshape(15, 3)), axis_angle_to_matrix(p.reshape(15, 3)), atol=1e-7)


def test_pure_bend_gives_only_bend_and_flexes_towards_palm():
    for k in range(15):
        a = np.zeros((15, 3))
        a[k, 2] = 0.7
        pose = mano.anatomical_to_pose(a)
        got = mano.pose_to_anatomical(pose)
        np.testing.assert_allclose(got, a, atol=1e-9)
        # the rotation axis of a pure bend is the joint's bend axis
        r = pose.reshape(15, 3)[k]
        np.testing.assert_allclose(r / np.linalg.norm(r), mano.ANATOMICAL_FRAMES[k][:, 2], atol=1e-9)
        # positive bend moves the fingertip to the palm side (the spread axis is the palmar normal)
        tips = mano.mano_joint_positions(np.r_[np.zeros(3), pose])
        rest = mano.TEMPLATE_JOINTS
        finger = k // 3
        tip = [17, 18, 20, 19, 16][finger]
        moved = tips[tip] - rest[tip]
        spread_axis = mano.ANATOMICAL_FRAMES[k][:, 1]
        assert moved @ spread_axis > 1e-3, (k, moved)
    # a pure finger bend in MANO axes: index MCP flexion is about −z... check sign of a raw rotation
    pose = np.zeros(45)
    pose[2] = 0.5  # +z rotation of index1 in wrist axes turns the finger (−x) towards −y, the palm
    assert mano.pose_to_anatomical(pose)[0, 2] > 0.45
    assert np.all(np.linalg.det(mano.ANATOMICAL_FRAMES) > 0.999)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-3, 3, allow_nan=False), min_size=48, max_size=48).map(np.array))
def test_mirror_twice_is_identity(p):
    np.testing.assert_array_equal(mano.mirror_pose(mano.mirror_pose(p)), p)


def test_fk_of_zeros_is_template_and_trans_is_wrist():
    t = np.array([0.1, -0.2, 0.5])
    np.testing.assert_allclose(mano.mano_joint_positions(np.zeros(48), t), mano.TEMPLATE_JOINTS + t, atol=1e-12)
    left = mano.mano_joint_positions(np.zeros(48), t, side="left")
    np.testing.assert_allclose(left, mano.TEMPLATE_JOINTS * [-1, 1, 1] + t, atol=1e-12)


def test_fk_global_rotation_rotates_about_wrist_and_bones_keep_length():
    rng = np.random.default_rng(0)
    pose = rng.normal(0, 0.5, 48)
    j = mano.mano_joint_positions(pose, np.zeros(3))
    np.testing.assert_allclose(j[0], 0, atol=1e-12)
    for c, p in list(enumerate(mano.PARENTS))[1:] + [(16 + i, p) for i, p in enumerate(mano.TIP_PARENTS)]:
        np.testing.assert_allclose(np.linalg.norm(j[c] - j[p]),
                                   np.linalg.norm(mano.TEMPLATE_JOINTS[c] - mano.TEMPLATE_JOINTS[p]), atol=1e-12)


def test_left_fk_is_mirror_of_right_fk():
    rng = np.random.default_rng(1)
    pose = rng.normal(0, 0.4, 48)
    t = rng.normal(0, 0.1, 3)
    M = np.diag([-1.0, 1.0, 1.0])
    left = mano.mano_joint_positions(mano.mirror_pose(pose), M @ t, side="left")
    np.testing.assert_allclose(left, mano.mano_joint_positions(pose, t) @ M, atol=1e-12)


def test_openpose_map_and_template_layout():
    assert sorted(mano.MANO_TO_OPENPOSE) == list(range(21))
    op = mano.to_openpose(np.arange(21)[:, None])
    assert op[4, 0] == 16 and op[8, 0] == 17 and op[20, 0] == 20  # thumb, index, little tips
    T = mano.TEMPLATE_JOINTS
    assert T[4, 0] < -0.08 and abs(T[4, 1]) < 0.01  # middle MCP ~9.5 cm along −x
    assert T[18, 0] < T[4, 0]  # middle tip beyond its MCP
    assert T[16, 2] > 0.07  # thumb on +z
    np.testing.assert_allclose(mano.mano_trans_to_wrist(mano.wrist_to_mano_trans([1, 2, 3])), [1, 2, 3])


def test_bad_shapes_raise():
    import pytest
    with pytest.raises(ValueError, match="pose48"):
        mano.mano_joint_positions(np.zeros(45))
    with pytest.raises(ValueError, match="pose45"):
        mano.pose_to_anatomical(np.zeros(44))
