"""Rotations and rigid frames.

Conventions (used everywhere in the project):

- Rotation matrices act on column vectors: ``p_parent = R @ p_child``.
- Axis-angle (rotation vector) ``r``: unit axis times angle in radians, angle in [0, π].
- Euler ``xyz`` means **extrinsic** rotations about the fixed x, then y, then z axes, i.e.
  ``R = Rz(c) @ Ry(b) @ Rx(a)`` for angles ``(a, b, c)`` (scipy's lowercase ``'xyz'``).
  This is the convention of the grasp parameters' wrist rotation θ (DESIGN.md §3).
- Quaternions are ``(w, x, y, z)`` (MuJoCo's order), unit norm.
- Camera frames follow OpenCV: x right, y down, z forward (out of the lens). MuJoCo cameras look
  down their −z with y up; :data:`MUJOCO_TO_OPENCV_CAMERA` converts between the two.
- A rigid transform ``T_a_b`` (4×4) maps points in frame ``b`` to frame ``a``: ``p_a = T_a_b @ p_b``.

Every function accepts a single item or a batch (leading dimensions) unless stated.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-9

#: Rotation taking a vector expressed in a MuJoCo camera frame (x right, y up, looking along −z)
#: to the OpenCV camera frame (x right, y down, looking along +z). It is its own inverse.
MUJOCO_TO_OPENCV_CAMERA = np.diag([1.0, -1.0, -1.0])


def _skew(v: np.ndarray) -> np.ndarray:
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = np.zeros_like(x)
    return np.stack([np.stack([o, -z, y], -1), np.stack([z, o, -x], -1), np.stack([-y, x, o], -1)], -2)


def axis_angle_to_matrix(r: np.ndarray) -> np.ndarray:
    """Rodrigues' formula. ``r``: (..., 3) rotation vectors → (..., 3, 3) matrices."""
    r = np.asarray(r, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1, keepdims=True)
    small = theta[..., 0] < 1e-8
    axis = r / np.where(theta < 1e-8, 1.0, theta)
    K = _skew(axis)
    s = np.sin(theta)[..., None]
    c = np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), K.shape)
    R = eye + s * K + (1.0 - c) * (K @ K)
    if np.any(small):  # first-order expansion keeps tiny rotations exact to float precision
        R = np.where(small[..., None, None], eye + _skew(r), R)
    return R


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices → (..., 3) rotation vectors with angle in [0, π]."""
    q = matrix_to_quaternion(R)
    return quaternion_to_axis_angle(q)


def quaternion_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (w, x, y, z) → (..., 3) rotation vectors (angle in [0, π])."""
    q = np.asarray(q, dtype=np.float64)
    q = q * np.where(q[..., :1] < 0, -1.0, 1.0)  # pick the hemisphere with w >= 0
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    scale = np.where(s < 1e-12, 2.0, angle / np.where(s < 1e-12, 1.0, s))
    return v * scale


def axis_angle_to_quaternion(r: np.ndarray) -> np.ndarray:
    """(..., 3) rotation vectors → (..., 4) unit quaternions (w, x, y, z)."""
    r = np.asarray(r, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1, keepdims=True)
    half = 0.5 * theta
    k = np.where(theta < 1e-12, 0.5, np.sin(half) / np.where(theta < 1e-12, 1.0, theta))
    return np.concatenate([np.cos(half), r * k], axis=-1)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (w, x, y, z), normalised here → (..., 3, 3)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices → (..., 4) unit quaternions (w, x, y, z) with w >= 0.

    Uses the numerically stable branch on the largest diagonal term (Shepperd's method).
    """
    R = np.asarray(R, dtype=np.float64)
    batch = R.shape[:-2]
    m = R.reshape(-1, 3, 3)
    out = np.empty((m.shape[0], 4))
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    diag = np.stack([m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], -1)
    choice = np.where(tr > diag.max(-1), 3, diag.argmax(-1))
    for i in range(m.shape[0]):
        a = m[i]
        c = choice[i]
        if c == 3:
            s = 2.0 * np.sqrt(max(tr[i] + 1.0, _EPS))
            out[i] = [0.25 * s, (a[2, 1] - a[1, 2]) / s, (a[0, 2] - a[2, 0]) / s, (a[1, 0] - a[0, 1]) / s]
        elif c == 0:
            s = 2.0 * np.sqrt(max(1.0 + a[0, 0] - a[1, 1] - a[2, 2], _EPS))
            out[i] = [(a[2, 1] - a[1, 2]) / s, 0.25 * s, (a[0, 1] + a[1, 0]) / s, (a[0, 2] + a[2, 0]) / s]
        elif c == 1:
            s = 2.0 * np.sqrt(max(1.0 + a[1, 1] - a[0, 0] - a[2, 2], _EPS))
            out[i] = [(a[0, 2] - a[2, 0]) / s, (a[0, 1] + a[1, 0]) / s, 0.25 * s, (a[1, 2] + a[2, 1]) / s]
        else:
            s = 2.0 * np.sqrt(max(1.0 + a[2, 2] - a[0, 0] - a[1, 1], _EPS))
            out[i] = [(a[1, 0] - a[0, 1]) / s, (a[0, 2] + a[2, 0]) / s, (a[1, 2] + a[2, 1]) / s, 0.25 * s]
    out /= np.linalg.norm(out, axis=-1, keepdims=True)
    out *= np.where(out[:, :1] < 0, -1.0, 1.0)
    return out.reshape(*batch, 4)


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([i, o, o], -1), np.stack([o, c, -s], -1), np.stack([o, s, c], -1)], -2)


def _rot_y(a: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, o, s], -1), np.stack([o, i, o], -1), np.stack([-s, o, c], -1)], -2)


def _rot_z(a: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, o], -1), np.stack([s, c, o], -1), np.stack([o, o, i], -1)], -2)


def euler_xyz_to_matrix(e: np.ndarray) -> np.ndarray:
    """(..., 3) extrinsic xyz Euler angles (rad) → (..., 3, 3): ``Rz(e2) @ Ry(e1) @ Rx(e0)``."""
    e = np.asarray(e, dtype=np.float64)
    return _rot_z(e[..., 2]) @ _rot_y(e[..., 1]) @ _rot_x(e[..., 0])


def matrix_to_euler_xyz(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) → (..., 3) extrinsic xyz Euler angles with pitch in [−π/2, π/2].

    At gimbal lock (|pitch| = π/2) the roll is set to 0 and the yaw absorbs the rest.
    """
    R = np.asarray(R, dtype=np.float64)
    sy = -R[..., 2, 0]
    pitch = np.arcsin(np.clip(sy, -1.0, 1.0))
    cp = np.sqrt(R[..., 2, 1] ** 2 + R[..., 2, 2] ** 2)
    locked = cp < 1e-9
    roll = np.where(locked, 0.0, np.arctan2(R[..., 2, 1], R[..., 2, 2]))
    yaw = np.where(locked, np.arctan2(-R[..., 0, 1], R[..., 1, 1]), np.arctan2(R[..., 1, 0], R[..., 0, 0]))
    return np.stack([roll, pitch, yaw], -1)


def axis_angle_to_euler_xyz(r: np.ndarray) -> np.ndarray:
    return matrix_to_euler_xyz(axis_angle_to_matrix(r))


def euler_xyz_to_axis_angle(e: np.ndarray) -> np.ndarray:
    return matrix_to_axis_angle(euler_xyz_to_matrix(e))


def rotation_angle_between(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """Geodesic angle (rad) between rotation matrices, in [0, π]."""
    Rrel = np.swapaxes(np.asarray(Ra), -1, -2) @ np.asarray(Rb)
    cos = (np.trace(Rrel, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.arccos(np.clip(cos, -1.0, 1.0))


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Wrap angles to (−π, π]."""
    return -((-np.asarray(a) + np.pi) % (2 * np.pi) - np.pi)


# ----------------------------------------------------------------------------------- frames


def make_transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """4×4 homogeneous transform from a rotation matrix and a translation (metres)."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def invert_transform(T: np.ndarray) -> np.ndarray:
    R, t = T[:3, :3], T[:3, 3]
    return make_transform(R.T, -R.T @ t)


def transform_points(T: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Apply a 4×4 transform to (..., 3) points."""
    p = np.asarray(p, dtype=np.float64)
    return p @ T[:3, :3].T + T[:3, 3]


def deproject_pixel(uv: np.ndarray, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel(s) ``(u, v)`` (x right, y down) with metric depth along the optical axis → 3-D points
    in the OpenCV camera frame, through the 3×3 intrinsics ``K``."""
    uv = np.asarray(uv, dtype=np.float64)
    z = np.asarray(depth, dtype=np.float64)
    x = (uv[..., 0] - K[0, 2]) / K[0, 0] * z
    y = (uv[..., 1] - K[1, 2]) / K[1, 1] * z
    return np.stack([x, y, z], -1)


def project_points(p: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 3) points in the OpenCV camera frame → (..., 2) pixels. Points must have z > 0."""
    p = np.asarray(p, dtype=np.float64)
    z = p[..., 2]
    return np.stack([K[0, 0] * p[..., 0] / z + K[0, 2], K[1, 1] * p[..., 1] / z + K[1, 2]], -1)


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def intrinsics_from_fovy(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """Pinhole intrinsics of a camera with vertical field of view ``fovy_deg`` (MuJoCo's ``fovy``)
    and square pixels, principal point at the image centre."""
    f = 0.5 * height / np.tan(np.deg2rad(fovy_deg) / 2.0)
    return intrinsics_matrix(f, f, (width - 1) / 2.0, (height - 1) / 2.0)


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Rotation (world ← OpenCV camera) of a camera at ``eye`` looking at ``target``.
    Columns are the camera's x (right), y (down) and z (forward) axes in world coordinates."""
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:  # looking straight along `up`: pick any perpendicular
        x = np.cross(z, [0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.cross(z, [1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)
