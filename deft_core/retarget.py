"""MANO → 16-DoF robot hand retargeting (paper Appendix C) and affordance prediction → grasp parameters ξ.

Retargeting
-----------
Each of MANO's 15 finger joints is decomposed into anatomical ``[twist, spread, bend]`` angles
(:func:`deft_core.mano.pose_to_anatomical`; positive spread swings a finger away from the thumb,
positive bend is flexion). Twist is impossible for a robot finger and dropped; then, per finger
(index, middle, ring — the pinky is dropped, the robot hand has four fingers)::

    MCP-side    = side_sign  · spread(MCP)      (side_sign = −1: positive robot side = towards the thumb)
    MCP-forward =              bend(MCP)
    PIP         =              bend(PIP)
    DIP         =              bend(DIP)

and the thumb the same way (LEAP's ``mano_to_leap_mapping``): CMC-side = ``thumb_side_sign`` ·
spread(thumb1), CMC-forward = bend(thumb1), MCP = bend(thumb2), IP = bend(thumb3). Every output is then
``scale · angle + offset`` (per joint, configurable; the LEAP authors stress these need tuning per hand)
and clipped to the robot hand's joint limits (:func:`hand_joint_limits`). Output order is
:data:`deft_core.grasp.HAND_JOINT_NAMES`, radians, 0 = flat open hand.

Affordance → ξ
--------------
:func:`affordance_to_grasp` lifts the predicted contact pixel to a 3-D point with the depth image, the
intrinsics and the camera extrinsics, moves the predicted wrist rotation from the camera frame to the
robot base frame, and retargets the 45-d hand pose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from deft_core.checks import is_real
from deft_core.geometry import (axis_angle_to_matrix, deproject_pixel, matrix_to_euler_xyz, transform_points)
from deft_core.grasp import HAND_JOINT_NAMES, GraspParams

N_HAND = 16

# LEAP hand simulation limits (LEAP_Hand_API leap_hand_utils.angle_safety_clip), a convention in which
# 0 = flat: per finger [MCP-side, MCP-forward, PIP, DIP] ×3, then the thumb [CMC-side, CMC-forward, MCP, IP].
_LEAP_LOWER = np.array([-1.047, -0.314, -0.506, -0.366] * 3 + [-0.349, -0.47, -1.20, -1.34])
_LEAP_UPPER = np.array([1.047, 2.23, 1.885, 2.042] * 3 + [2.094, 2.443, 1.90, 1.88])


@lru_cache(maxsize=1)
def hand_joint_limits() -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) joint limits (16 each, radians, 0 = flat) of the robot hand.

    Taken from the procedural robot hand (``deft_core.world.robot_hand.HAND_LOWER/HAND_UPPER``) when that
    module exists, otherwise LEAP's simulation limits (0 = flat) as a stand-in with the same layout."""
    try:
        from deft_core.world import robot_hand  # type: ignore[attr-defined]

        lo = np.asarray(robot_hand.HAND_LOWER, dtype=np.float64)
        hi = np.asarray(robot_hand.HAND_UPPER, dtype=np.float64)
        if lo.shape == (N_HAND,) and hi.shape == (N_HAND,) and np.all(lo <= 0) and np.all(hi >= 0):
            return lo.copy(), hi.copy()
    except (ImportError, AttributeError):
        pass
    return _LEAP_LOWER.copy(), _LEAP_UPPER.copy()


# MANO pose-joint rows (0..14) of deft_core.mano.JOINT_NAMES[1:]: index 0-2, middle 3-5, pinky 6-8,
# ring 9-11, thumb 12-14.
_FINGER_ROWS = {"index": (0, 1, 2), "middle": (3, 4, 5), "ring": (9, 10, 11)}
_THUMB_ROWS = (12, 13, 14)
_TWIST, _SPREAD, _BEND = 0, 1, 2


@dataclass
class RetargetConfig:
    """Per-joint linear correction ``q = scale · angle + offset`` (16 each, HAND_JOINT_NAMES order),
    the spread signs, and whether to clip to the joint limits (``lower``/``upper``, default the hand's)."""

    scale: np.ndarray = field(default_factory=lambda: np.ones(N_HAND))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(N_HAND))
    side_sign: float = -1.0
    thumb_side_sign: float = 1.0
    clip: bool = True
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("scale", "offset"):
            v = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if v.shape != (N_HAND,) or not np.all(np.isfinite(v)):
                raise ValueError(f"RetargetConfig.{name} must be {N_HAND} finite numbers, got {getattr(self, name)!r}")
            setattr(self, name, v)
        for name in ("side_sign", "thumb_side_sign"):
            v = getattr(self, name)
            if not is_real(v) or v not in (-1, 1):
                raise ValueError(f"RetargetConfig.{name} must be 1 or -1, got {v!r}")
            setattr(self, name, float(v))
        if not isinstance(self.clip, (bool, np.bool_)):
            raise ValueError(f"RetargetConfig.clip must be true or false, got {self.clip!r}")
        self.clip = bool(self.clip)
        lo, hi = hand_joint_limits()
        self.lower = lo if self.lower is None else np.asarray(self.lower, dtype=np.float64).reshape(-1)
        self.upper = hi if self.upper is None else np.asarray(self.upper, dtype=np.float64).reshape(-1)
        if self.lower.shape != (N_HAND,) or self.upper.shape != (N_HAND,) or not np.all(np.isfinite(self.lower)) \
                or not np.all(np.isfinite(self.upper)) or np.any(self.lower > self.upper):
            raise ValueError("RetargetConfig.lower/upper must be 16 finite limits each with lower <= upper")


def anatomical_to_hand(angles: np.ndarray, config: RetargetConfig | None = None) -> np.ndarray:
    """(..., 15, 3) anatomical ``[twist, spread, bend]`` angles (rad, MANO joint order) → (..., 16) robot
    hand joints (rad, HAND_JOINT_NAMES order), scaled, offset and clipped per ``config``."""
    cfg = config or RetargetConfig()
    a = np.asarray(angles, dtype=np.float64)
    if a.shape[-2:] != (15, 3):
        raise ValueError(f"anatomical angles must have shape (..., 15, 3), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("anatomical angles contain non-finite values")
    cols = []
    for finger in ("index", "middle", "ring"):
        mcp, pip, dip = _FINGER_ROWS[finger]
        cols += [cfg.side_sign * a[..., mcp, _SPREAD], a[..., mcp, _BEND], a[..., pip, _BEND], a[..., dip, _BEND]]
    t1, t2, t3 = _THUMB_ROWS
    cols += [cfg.thumb_side_sign * a[..., t1, _SPREAD], a[..., t1, _BEND], a[..., t2, _BEND], a[..., t3, _BEND]]
    q = np.stack(cols, -1) * cfg.scale + cfg.offset
    if cfg.clip:
        q = np.clip(q, cfg.lower, cfg.upper)
    return q


def mano_to_hand(pose45: np.ndarray, config: RetargetConfig | None = None) -> np.ndarray:
    """45-d MANO finger pose (right hand, flat-hand-mean, MANO joint order) or (..., 45) batch →
    (..., 16) robot hand joint angles in radians (Appendix C)."""
    from deft_core.mano import pose_to_anatomical

    p = np.asarray(pose45, dtype=np.float64)
    if p.shape[-1] != 45:
        raise ValueError(f"a MANO hand pose has 45 values (15 joints × axis-angle), got shape {p.shape}")
    return anatomical_to_hand(pose_to_anatomical(p), config)


# ------------------------------------------------------------------------------------ affordance → ξ


def robust_depth(depth: np.ndarray, uv, radius: int = 3, max_radius: int = 24, max_depth_m: float = 10.0) -> float:
    """Median of the valid depths (finite, > 0, < ``max_depth_m``) in a (2r+1)² window around pixel
    ``uv`` = (u, v) (x right, y down); the window grows (doubling up to ``max_radius``) over holes.
    Raises ``ValueError`` naming the pixel if no valid depth is found."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be an (H, W) image in metres, got shape {depth.shape}")
    h, w = depth.shape
    u, v = int(round(float(uv[0]))), int(round(float(uv[1])))
    if not (0 <= u < w and 0 <= v < h):
        raise ValueError(f"contact pixel ({uv[0]:.1f}, {uv[1]:.1f}) is outside the {w}x{h} depth image")
    r = max(0, int(radius))
    while True:
        win = depth[max(0, v - r): v + r + 1, max(0, u - r): u + r + 1].astype(np.float64)
        ok = np.isfinite(win) & (win > 0) & (win < max_depth_m)
        if ok.any():
            return float(np.median(win[ok]))
        if r >= max_radius:
            raise ValueError(f"no valid depth within {max_radius} px of contact pixel ({u}, {v})")
        r = min(max_radius, max(1, 2 * r))


def _field(prediction, name: str, size: int) -> np.ndarray:
    if isinstance(prediction, dict):
        if name not in prediction:
            raise ValueError(f"affordance prediction is missing {name!r}")
        value = prediction[name]
    elif hasattr(prediction, name):
        value = getattr(prediction, name)
    else:
        raise ValueError(f"affordance prediction has no attribute {name!r}")
    a = np.asarray(value, dtype=np.float64).reshape(-1)
    if a.shape != (size,) or not np.all(np.isfinite(a)):
        raise ValueError(f"affordance prediction field {name!r} must be {size} finite numbers, got shape {np.shape(value)}")
    return a


def affordance_to_grasp(prediction, depth: np.ndarray, K: np.ndarray, T_base_camera: np.ndarray, *,
                        R_mano_robot: np.ndarray | None = None,
                        retarget: RetargetConfig | Callable[[np.ndarray], np.ndarray] | None = None,
                        depth_radius: int = 3, contact_offset_m: float = 0.0) -> GraspParams:
    """Turn one affordance prediction into grasp parameters ξ (robot base frame).

    ``prediction``: an object or dict with ``contact_pixel`` (2: u, v pixels of the full image this
    ``depth`` belongs to, x right / y down), ``wrist_rotation`` (3: axis-angle, MANO wrist orientation in
    the OpenCV camera frame) and ``hand_pose`` (45: MANO, flat-hand-mean). ``depth``: (H, W) metres,
    aligned to the image; ``K``: 3×3 intrinsics; ``T_base_camera``: 4×4 camera → base transform.

    - μ: the median valid depth around the pixel (:func:`robust_depth`) deprojected through ``K`` and moved
      to the base frame; ``contact_offset_m`` pushes it further along the viewing ray (e.g. half the
      object's thickness when the hand should grasp the surface point's interior);
    - θ: ``R_base = R_base_camera · R_camera(wrist_rotation) · R_mano_robot`` as extrinsic Euler xyz, where
      ``R_mano_robot`` (default identity) rotates the robot hand's wrist frame into MANO's wrist frame;
    - P: :func:`mano_to_hand` of ``hand_pose`` with ``retarget`` (a :class:`RetargetConfig`, default the
      identity map), or ``retarget(hand_pose)`` when ``retarget`` is a callable (a hand-specific
      retargeter such as :class:`robot.sim.retarget_fit.FingertipRetargeter`).
    """
    K = np.asarray(K, dtype=np.float64)
    T = np.asarray(T_base_camera, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"K must be 3x3, got {K.shape}")
    if T.shape != (4, 4) or not np.allclose(T[3], [0, 0, 0, 1]):
        raise ValueError(f"T_base_camera must be a 4x4 rigid transform, got shape {T.shape}")
    uv = _field(prediction, "contact_pixel", 2)
    rot = _field(prediction, "wrist_rotation", 3)
    pose = _field(prediction, "hand_pose", 45)
    z = robust_depth(depth, uv, radius=depth_radius)
    p_cam = deproject_pixel(uv, z, K)
    if contact_offset_m:
        p_cam = p_cam + contact_offset_m * p_cam / np.linalg.norm(p_cam)
    mu = transform_points(T, p_cam)
    R = T[:3, :3] @ axis_angle_to_matrix(rot)
    if R_mano_robot is not None:
        R = R @ np.asarray(R_mano_robot, dtype=np.float64)
    theta = matrix_to_euler_xyz(R)
    hand = np.asarray(retarget(pose), dtype=np.float64) if callable(retarget) else mano_to_hand(pose, retarget)
    return GraspParams(mu=mu, theta=theta, hand=hand)


__all__ = ["HAND_JOINT_NAMES", "RetargetConfig", "anatomical_to_hand", "mano_to_hand", "hand_joint_limits",
           "robust_depth", "affordance_to_grasp"]
