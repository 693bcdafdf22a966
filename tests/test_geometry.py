import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from deft_core import geometry as g

finite = st.floats(-np.pi, np.pi, allow_nan=False)
vec3 = st.tuples(finite, finite, finite).map(np.array)
quat = st.tuples(*(st.floats(-1, 1, allow_nan=False) for _ in range(4))).filter(
    lambda q: np.linalg.norm(q) > 0.1).map(lambda q: np.array(q) / np.linalg.norm(q))


@settings(max_examples=200, deadline=None)
@given(vec3)
def test_axis_angle_matrix_round_trip_and_matches_scipy(r):
    R = g.axis_angle_to_matrix(r)
    np.testing.assert_allclose(R, Rotation.from_rotvec(r).as_matrix(), atol=1e-9)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(g.axis_angle_to_matrix(g.matrix_to_axis_angle(R)), R, atol=1e-8)


@settings(max_examples=200, deadline=None)
@given(quat)
def test_quaternion_matrix_round_trip(q):
    R = g.quaternion_to_matrix(q)
    # scipy uses (x, y, z, w)
    np.testing.assert_allclose(R, Rotation.from_quat(np.r_[q[1:], q[0]]).as_matrix(), atol=1e-9)
    q2 = g.matrix_to_quaternion(R)
    assert q2[0] >= 0
    np.testing.assert_allclose(np.abs(q2 @ q), 1.0, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.tuples(finite, st.floats(-1.5, 1.5), finite).map(np.array))
def test_euler_xyz_is_extrinsic_and_round_trips(e):
    R = g.euler_xyz_to_matrix(e)
    np.testing.assert_allclose(R, Rotation.from_euler("xyz", e).as_matrix(), atol=1e-9)
    np.testing.assert_allclose(g.euler_xyz_to_matrix(g.matrix_to_euler_xyz(R)), R, atol=1e-8)


@settings(max_examples=100, deadline=None)
@given(vec3, vec3)
def test_composition_matches_axis_angle_product(a, b):
    Ra, Rb = g.axis_angle_to_matrix(a), g.axis_angle_to_matrix(b)
    ref = (Rotation.from_rotvec(a) * Rotation.from_rotvec(b)).as_matrix()
    np.testing.assert_allclose(Ra @ Rb, ref, atol=1e-9)
    assert g.rotation_angle_between(Ra, Ra @ Rb) == pytest.approx(np.linalg.norm(Rotation.from_rotvec(b).as_rotvec()), abs=1e-6)


def test_batched_and_tiny_angles():
    r = np.array([[0, 0, 0], [1e-10, 0, 0], [0, np.pi, 0], [0.3, -0.2, 0.1]])
    R = g.axis_angle_to_matrix(r)
    assert R.shape == (4, 3, 3)
    np.testing.assert_allclose(R[0], np.eye(3))
    back = g.matrix_to_axis_angle(R)
    np.testing.assert_allclose(g.axis_angle_to_matrix(back), R, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(back[2]), np.pi, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(vec3, st.tuples(*(st.floats(-2, 2) for _ in range(3))).map(np.array))
def test_transform_inverse_and_points(r, t):
    T = g.make_transform(g.axis_angle_to_matrix(r), t)
    np.testing.assert_allclose(g.invert_transform(T) @ T, np.eye(4), atol=1e-9)
    p = np.array([[0.1, 0.2, 0.3], [-1, 0, 2]])
    np.testing.assert_allclose(g.transform_points(g.invert_transform(T), g.transform_points(T, p)), p, atol=1e-9)


def test_project_deproject_round_trip():
    K = g.intrinsics_from_fovy(58.0, 640, 480)
    uv = np.array([[10.0, 20.0], [320.0, 240.0], [600.5, 470.25]])
    depth = np.array([0.3, 1.0, 2.5])
    p = g.deproject_pixel(uv, depth, K)
    np.testing.assert_allclose(p[:, 2], depth)
    np.testing.assert_allclose(g.project_points(p, K), uv, atol=1e-9)


def test_look_at_points_camera_z_at_target():
    R = g.look_at([0.0, -0.5, 0.6], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    fwd = np.array([0.0, 0.5, -0.6]) / np.linalg.norm([0.0, 0.5, -0.6])
    np.testing.assert_allclose(R[:, 2], fwd, atol=1e-12)
    assert R[2, 1] < 0  # image "down" points downward in the world for a camera above the table


def test_wrap_angle():
    np.testing.assert_allclose(g.wrap_angle(np.array([0.0, np.pi + 0.1, -np.pi - 0.1, 3 * np.pi])), [0.0, -np.pi + 0.1, np.pi - 0.1, np.pi], atol=1e-12)
