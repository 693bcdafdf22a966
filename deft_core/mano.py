"""MANO hand conventions of the project: joint order, template skeleton, anatomical axes, mirroring,
the OpenPose keypoint map and forward kinematics (joints only, no mesh).

Frames and units
----------------
- **MANO canonical (wrist) frame** of the right hand, as in the MANO release: at rest the fingers
  point along −x, the palm faces −y (the back of the hand is +y) and the thumb lies on the +z side.
  The procedural human hand (:mod:`deft_core.world.human_hand`) uses exactly these axes for its wrist
  body, so a wrist rotation from real MANO data means the same thing on our hand.
- **Pose vector** (48): ``[0:3]`` global wrist rotation (axis-angle, radians) taking the canonical
  frame to the camera/world frame; ``[3:48]`` 15 finger joints × axis-angle in MANO joint order
  (index1-3, middle1-3, pinky1-3, ring1-3, thumb1-3). Each joint's rotation is expressed in
  wrist-aligned axes (MANO's convention: local frames are not rotated at rest), relative to its parent.
  **Flat-hand-mean**: all zeros = flat open hand.
- **Translation**: in this project ``trans`` is the *wrist joint position* (metres) in the camera/world
  frame. Real MANO's ``trans`` differs by the template root offset: ``wrist = MANO_ROOT_OFFSET + trans``
  (for betas = 0); use :func:`wrist_to_mano_trans` / :func:`mano_trans_to_wrist` when writing/reading
  files that carry MANO's own ``trans`` (e.g. HOI4D pickles).
- Left hands use the right-hand model on mirrored data: negate the y and z axis-angle components
  (FrankMocap / WiLoR convention), see :func:`mirror_pose`.

Source of the template: the right-hand MANO (v1.2, betas = 0) rest joints as regressed by MANO's
``J_regressor`` from ``v_template`` — the widely reproduced constant whose wrist is
(0.09566993, 0.00638343, 0.00618631) m (e.g. D-Grasp / ArtiGrasp ``MANO_BIAS``, and the joints-only
MANO re-implementations that hard-code the 21 rest joints). Fingertips are MANO vertices
745 (thumb), 317 (index), 444 (middle), 556 (ring), 673 (pinky), in HaMeR's order. Values are rounded
to 0.1 mm; the anatomical axes follow manotorch's ``AxisLayer`` idea (bone direction + a dorsal "up"
reference, the thumb with its own reference) — see :func:`anatomical_frames`.
"""

from __future__ import annotations

import numpy as np

from deft_core.geometry import axis_angle_to_matrix, matrix_to_axis_angle

#: MANO's 16 joints in order (wrist + 15); the 45-d pose covers JOINT_NAMES[1:].
JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "index1", "index2", "index3",
    "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3",
    "ring1", "ring2", "ring3",
    "thumb1", "thumb2", "thumb3",
)
FINGER_NAMES: tuple[str, ...] = ("index", "middle", "pinky", "ring", "thumb")  #: MANO finger order
#: The 5 fingertips appended after the 16 joints (indices 16..20), HaMeR's order.
TIP_NAMES: tuple[str, ...] = ("thumb_tip", "index_tip", "middle_tip", "ring_tip", "pinky_tip")
KEYPOINT_NAMES_MANO21: tuple[str, ...] = JOINT_NAMES + TIP_NAMES

#: Parent of each of the 16 joints (−1 for the wrist).
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
#: Parent joint of each fingertip 16..20 (thumb, index, middle, ring, pinky).
TIP_PARENTS: tuple[int, ...] = (15, 3, 6, 12, 9)
NUM_JOINTS = 16
NUM_POSE = 45

#: MANO-21 (16 joints + 5 tips) → OpenPose-21 order (0 wrist, 1-4 thumb, 5-8 index, 9-12 middle,
#: 13-16 ring, 17-20 little): ``openpose = mano21[MANO_TO_OPENPOSE]`` (HaMeR's mano_wrapper map).
MANO_TO_OPENPOSE: tuple[int, ...] = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)

#: Template root (wrist) position in MANO's own model coordinates, metres (betas = 0).
MANO_ROOT_OFFSET = np.array([0.09566993, 0.00638343, 0.00618631])

# Rest joints of the right-hand MANO template in MANO model coordinates (m): 16 joints, then the tips
# (thumb, index, middle, ring, pinky). See the module docstring for the source.
_TEMPLATE_MODEL = np.array([
    [0.09567, 0.00638, 0.00619],    # wrist
    [0.00757, 0.00118, 0.02687],    # index1 (MCP)
    [-0.02511, 0.00519, 0.02909],   # index2 (PIP)
    [-0.04726, 0.00389, 0.02898],   # index3 (DIP)
    [0.00101, 0.00490, 0.00283],    # middle1
    [-0.03017, 0.00677, -0.00277],  # middle2
    [-0.05308, 0.00551, -0.00671],  # middle3
    [0.02688, -0.00356, -0.03702],  # pinky1
    [0.00987, -0.00350, -0.04952],  # pinky2
    [-0.00600, -0.00419, -0.05985],  # pinky3
    [0.01393, 0.00243, -0.02049],   # ring1
    [-0.01438, 0.00449, -0.02559],  # ring2
    [-0.03790, 0.00280, -0.03322],  # ring3
    [0.07158, -0.00914, 0.03200],   # thumb1 (CMC)
    [0.05195, -0.00825, 0.05570],   # thumb2 (MCP)
    [0.02973, -0.01368, 0.07022],   # thumb3 (IP)
    [0.00223, -0.01810, 0.09091],   # thumb tip
    [-0.07052, 0.00461, 0.03302],   # index tip
    [-0.07899, 0.00615, -0.01204],  # middle tip
    [-0.06080, 0.00734, -0.04020],  # ring tip
    [-0.02190, -0.00163, -0.07013],  # pinky tip
])

#: (21, 3) rest joints + tips of the right hand in the wrist frame (wrist at the origin), metres.
TEMPLATE_JOINTS = _TEMPLATE_MODEL - _TEMPLATE_MODEL[0]

#: Unit palm normal (pointing out of the palm) and finger direction in the wrist frame.
PALM_NORMAL = np.array([0.0, -1.0, 0.0])
FINGER_DIRECTION = np.array([-1.0, 0.0, 0.0])
THUMB_SIDE = np.array([0.0, 0.0, 1.0])

# child of each of the 15 pose joints (the next joint along the finger, or the tip)
_CHILD = (2, 3, 17, 5, 6, 18, 8, 9, 20, 11, 12, 19, 14, 15, 16)
_THUMB_UP = np.array([1.0, 1.0, 1.0]) / np.sqrt(3.0)  # manotorch's thumb reference
_FINGER_UP = np.array([0.0, 1.0, 0.0])  # dorsal side


def _as_pose45(pose: np.ndarray, name: str = "pose") -> np.ndarray:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-1] == 45:
        return pose.reshape(*pose.shape[:-1], 15, 3)
    if pose.shape[-2:] == (15, 3):
        return pose
    raise ValueError(f"{name} must have shape (..., 45) or (..., 15, 3), got {pose.shape}")


def anatomical_frames() -> np.ndarray:
    """(15, 3, 3) rotation matrices whose columns are each pose joint's anatomical axes
    ``[twist, spread, bend]`` in the wrist frame.

    - twist: unit bone direction from the joint towards its child (template rest pose);
    - spread: the palmar normal (−y for fingers; minus manotorch's (1,1,1) dorsal reference for the
      thumb) made orthogonal to the twist axis. A positive spread swings a finger away from the thumb
      (towards −z, the little-finger side);
    - bend: ``twist × spread`` (so the frame is a proper rotation). A **positive bend is flexion**:
      the child moves towards the palm (along the spread axis).
    """
    frames = np.empty((15, 3, 3))
    for k in range(15):
        j = k + 1
        t = TEMPLATE_JOINTS[_CHILD[k]] - TEMPLATE_JOINTS[j]
        t /= np.linalg.norm(t)
        up = _THUMB_UP if k >= 12 else _FINGER_UP
        s = -(up - (up @ t) * t)
        s /= np.linalg.norm(s)
        frames[k] = np.stack([t, s, np.cross(t, s)], axis=1)
    return frames


ANATOMICAL_FRAMES = anatomical_frames()


def _rx(a):
    c, s = np.cos(a), np.sin(a)
    o, i = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([i, o, o], -1), np.stack([o, c, -s], -1), np.stack([o, s, c], -1)], -2)


def _ry(a):
    c, s = np.cos(a), np.sin(a)
    o, i = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, o, s], -1), np.stack([o, i, o], -1), np.stack([-s, o, c], -1)], -2)


def _rz(a):
    c, s = np.cos(a), np.sin(a)
    o, i = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, o], -1), np.stack([s, c, o], -1), np.stack([o, o, i], -1)], -2)


def pose_to_anatomical(pose45: np.ndarray) -> np.ndarray:
    """45-d MANO finger pose (right hand, flat-hand-mean) → (..., 15, 3) angles ``[twist, spread, bend]``
    in radians per joint, in MANO joint order.

    Each joint rotation ``R`` is written in its anatomical frame ``A`` (:func:`anatomical_frames`) and
    decomposed as ``A.T @ R @ A = Rs(spread) @ Rt(twist) @ Rb(bend)`` (intrinsic: spread about the palm
    normal first, then twist, then bend about the moved flexion axis — the order of a robot finger's
    MCP side then MCP forward joints). The decomposition is singular only at |twist| = 90°.
    """
    R = axis_angle_to_matrix(_as_pose45(pose45, "pose45"))
    A = ANATOMICAL_FRAMES
    Ra = np.swapaxes(A, -1, -2) @ R @ A  # in (t, s, b) = (x, y, z) coordinates
    twist = np.arcsin(np.clip(-Ra[..., 1, 2], -1.0, 1.0))
    bend = np.arctan2(Ra[..., 1, 0], Ra[..., 1, 1])
    spread = np.arctan2(Ra[..., 0, 2], Ra[..., 2, 2])
    return np.stack([twist, spread, bend], -1)


def anatomical_to_pose(angles: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pose_to_anatomical`: (..., 15, 3) ``[twist, spread, bend]`` radians →
    (..., 45) MANO axis-angle pose (right hand, flat-hand-mean)."""
    angles = np.asarray(angles, dtype=np.float64)
    if angles.shape[-2:] != (15, 3):
        raise ValueError(f"angles must have shape (..., 15, 3), got {angles.shape}")
    Ra = _ry(angles[..., 1]) @ _rx(angles[..., 0]) @ _rz(angles[..., 2])
    A = ANATOMICAL_FRAMES
    R = A @ Ra @ np.swapaxes(A, -1, -2)
    return matrix_to_axis_angle(R).reshape(*angles.shape[:-2], 45)


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """Mirror a MANO pose between left and right hands (x ↦ −x reflection of the hand): negate the
    y and z components of every axis-angle triple. Works on 3-, 45- or 48-d vectors (last axis)."""
    pose = np.array(pose, dtype=np.float64, copy=True)
    if pose.shape[-1] % 3:
        raise ValueError(f"pose length must be a multiple of 3, got {pose.shape[-1]}")
    pose[..., 1::3] *= -1.0
    pose[..., 2::3] *= -1.0
    return pose


def mano_joint_transforms(pose48: np.ndarray, trans: np.ndarray = (0.0, 0.0, 0.0)) -> np.ndarray:
    """(16, 4, 4) world transforms of the 16 joints of the right hand.

    ``pose48``: global wrist axis-angle + 45-d pose (flat-hand-mean); ``trans``: wrist position (m).
    Joint ``j``'s frame is the wrist frame carried along the chain; its origin is the joint centre.
    """
    pose48 = np.asarray(pose48, dtype=np.float64)
    if pose48.shape != (48,):
        raise ValueError(f"pose48 must have shape (48,), got {pose48.shape}")
    trans = np.asarray(trans, dtype=np.float64)
    if trans.shape != (3,):
        raise ValueError(f"trans must have shape (3,), got {trans.shape}")
    R = axis_angle_to_matrix(pose48.reshape(16, 3))
    G = np.zeros((16, 4, 4))
    G[:, 3, 3] = 1.0
    G[0, :3, :3] = R[0]
    G[0, :3, 3] = trans
    for j in range(1, 16):
        p = PARENTS[j]
        G[j, :3, :3] = G[p, :3, :3] @ R[j]
        G[j, :3, 3] = G[p, :3, :3] @ (TEMPLATE_JOINTS[j] - TEMPLATE_JOINTS[p]) + G[p, :3, 3]
    return G


def mano_joint_positions(pose48: np.ndarray, trans: np.ndarray = (0.0, 0.0, 0.0), side: str = "right") -> np.ndarray:
    """Forward kinematics of the template hand: (21, 3) positions (metres) of the 16 joints then the 5
    fingertips (thumb, index, middle, ring, pinky), in the frame that ``pose48[:3]`` and ``trans`` (the
    wrist position) map into (camera or world).

    ``side="left"`` evaluates MANO's left hand, the mirror image (x ↦ −x in the canonical frame) of the
    right one: ``left(pose, t) = M · right(mirror_pose(pose), M t)`` with ``M = diag(−1, 1, 1)``, where
    ``pose`` is in the left model's own convention (as real left-hand MANO fits are).
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if side == "left":
        M = np.diag([-1.0, 1.0, 1.0])
        return mano_joint_positions(mirror_pose(pose48), M @ np.asarray(trans, dtype=np.float64)) @ M
    G = mano_joint_transforms(pose48, trans)
    out = np.empty((21, 3))
    out[:16] = G[:, :3, 3]
    for i, p in enumerate(TIP_PARENTS):
        out[16 + i] = G[p, :3, :3] @ (TEMPLATE_JOINTS[16 + i] - TEMPLATE_JOINTS[p]) + G[p, :3, 3]
    return out


def to_openpose(mano21: np.ndarray) -> np.ndarray:
    """Reorder (..., 21, D) MANO-ordered keypoints (16 joints + tips) into OpenPose order."""
    mano21 = np.asarray(mano21)
    if mano21.shape[-2] != 21:
        raise ValueError(f"expected 21 keypoints on axis -2, got shape {mano21.shape}")
    return mano21[..., list(MANO_TO_OPENPOSE), :]


def wrist_to_mano_trans(wrist_pos: np.ndarray) -> np.ndarray:
    """Wrist joint position → MANO's ``trans`` parameter (betas = 0): ``trans = wrist − root offset``."""
    return np.asarray(wrist_pos, dtype=np.float64) - MANO_ROOT_OFFSET


def mano_trans_to_wrist(mano_trans: np.ndarray) -> np.ndarray:
    """MANO's ``trans`` parameter (betas = 0) → wrist joint position, same frame."""
    return np.asarray(mano_trans, dtype=np.float64) + MANO_ROOT_OFFSET
