"""A procedural, skin-coloured human hand with MANO's kinematic structure, and its poser.

Structure (see :mod:`deft_core.mano` for the conventions):

- a **wrist body** (``<prefix>wrist``), a mocap body whose frame is MANO's canonical frame (fingers
  along −x, palm facing −y, thumb on +z for the right hand), carrying the palm (an ellipsoid over four
  metacarpal capsules) and the thenar pad; the forearm (a skin capsule, then a sleeve) is a second
  mocap body ``<prefix>forearm`` that the poser aims from the wrist towards the shoulder;
- **15 finger bodies** (``<prefix>index1`` ... ``<prefix>thumb3``) at the template joint positions, each
  with a **ball joint** (``<prefix>index1_ball`` ...) and a slightly tapered capsule towards its child.
  Bodies are not rotated relative to the wrist at rest, so a ball joint's quaternion equals the MANO
  joint rotation (flat-hand-mean: identity = flat open hand);
- a site at each of the 21 MANO keypoints (``<prefix>kp<i>``, MANO-21 order: 16 joints then the tips
  thumb, index, middle, ring, pinky).

The left hand is the mirror image (x ↦ −x in the canonical frame) and takes left-hand MANO poses
directly. The hand is kinematic: the renderer sets its pose and never steps physics. Its geoms have
``contype=2, conaffinity=1``: they collide with ordinary geoms (contype/conaffinity 1: objects, table)
but not with each other, so true hand–object contacts can be read from ``data.contact``.
Units: metres, radians; quaternions (w, x, y, z).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from deft_core import mano
from deft_core.geometry import axis_angle_to_matrix, axis_angle_to_quaternion
from deft_core.world.mjcf import fmt, quat_z_to

SKIN_RGBA = (0.87, 0.67, 0.55, 1.0)  #: default skin colour
#: Capsule radius (m) of the bone starting at each pose joint (proximal, middle, distal phalanx).
_FINGER_RADII = {"index": (0.0098, 0.0088, 0.0080), "middle": (0.0102, 0.0092, 0.0083),
                 "ring": (0.0096, 0.0087, 0.0079), "pinky": (0.0086, 0.0078, 0.0071),
                 "thumb": (0.0125, 0.0108, 0.0095)}
_CHILD_OF = {1: 2, 2: 3, 3: 17, 4: 5, 5: 6, 6: 18, 7: 8, 8: 9, 9: 20, 10: 11, 11: 12, 12: 19, 13: 14, 14: 15, 15: 16}


@dataclass(frozen=True)
class HandMJCF:
    """MJCF fragments of one hand: ``body`` goes into ``<worldbody>``, ``assets`` into ``<asset>``."""

    prefix: str
    side: str
    body: str
    assets: str
    hand_geoms: tuple[str, ...]     #: geoms of the hand proper (palm + fingers): its box, its contacts
    forearm_geoms: tuple[str, ...]  #: forearm and sleeve geoms (visible, not part of the hand box)


def human_hand_mjcf(prefix: str = "hand_", side: str = "right", skin_rgba=SKIN_RGBA,
                    sleeve_rgba=(0.15, 0.22, 0.45, 1.0), scale: float = 1.0) -> HandMJCF:
    """Build the hand. ``scale`` multiplies every length (human size variation, e.g. 0.9–1.1)."""
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if not 0.5 < scale < 1.5:
        raise ValueError(f"scale {scale} outside (0.5, 1.5)")
    m = np.array([-1.0 if side == "left" else 1.0, 1.0, 1.0])
    J = mano.TEMPLATE_JOINTS * m * scale  # (21, 3) in the wrist frame
    skin, sleeve = f"{prefix}skin", f"{prefix}sleeve"
    assets = (f'<material name="{skin}" rgba="{fmt(skin_rgba)}" specular="0.15" shininess="0.2"/>\n'
              f'<material name="{sleeve}" rgba="{fmt(sleeve_rgba)}" specular="0.05"/>')
    hand_geoms: list[str] = []
    forearm_geoms: list[str] = []

    def geom(name, kind, size, pos, quat=None, material=skin, into=hand_geoms):
        into.append(prefix + name)
        q = f' quat="{fmt(quat)}"' if quat is not None else ""
        return (f'<geom name="{prefix}{name}" type="{kind}" size="{fmt(np.asarray(size) * 1.0)}" '
                f'pos="{fmt(pos)}"{q} material="{material}" contype="2" conaffinity="1" mass="0.01"/>')

    def capsule(name, p1, p2, r, material=skin, into=hand_geoms):
        p1, p2 = np.asarray(p1, float), np.asarray(p2, float)
        d = p2 - p1
        return geom(name, "capsule", (r, np.linalg.norm(d) / 2), (p1 + p2) / 2, quat_z_to(d), material, into)

    s = scale
    # --- wrist body: palm, metacarpals, thenar, forearm
    mcps = {"index": J[1], "middle": J[4], "pinky": J[7], "ring": J[10]}
    palm_c = 0.5 * (J[0] + 0.25 * (J[1] + J[4] + J[7] + J[10])) + np.array([0.0, -0.002 * s, 0.0])
    wrist_geoms = [geom("palm", "ellipsoid", np.array([0.047, 0.0135, 0.036]) * s, palm_c,
                        quat_z_to((0, 0, 1)))]
    for name, p in mcps.items():
        base = J[0] + np.array([-0.018 * s * m[0], -0.001 * s, 0.35 * p[2]])
        wrist_geoms.append(capsule(f"{name}_metacarpal", base, p, 0.0095 * s))
    wrist_geoms.append(capsule("heel", J[0] + np.array([-0.005, 0.0, -0.018]) * s * m,
                               J[0] + np.array([-0.005, 0.0, 0.012]) * s * m, 0.016 * s))
    wrist_geoms.append(capsule("thenar", J[0] + np.array([-0.012, -0.004, 0.006]) * s * m,
                               0.5 * (J[13] + J[14]) + np.array([0.0, 0.003, -0.004]) * s, 0.0125 * s))
    # forearm: its own mocap body (z axis from the wrist towards the elbow), so the arm can point to
    # the shoulder whatever the wrist rotation (the poser aims it; at rest it continues the hand's +x)
    arm_geoms = [capsule("forearm", np.array([0.0, 0.0, 0.01]) * s, np.array([0.0, 0.0, 0.06]) * s, 0.027 * s,
                         into=forearm_geoms),
                 capsule("sleeve", np.array([0.0, 0.0, 0.055]) * s, np.array([0.0, 0.0, 0.30]) * s, 0.033 * s, sleeve,
                         forearm_geoms)]
    sites = [f'<site name="{prefix}kp0" pos="0 0 0" size="0.003" group="4"/>']

    # --- fingers: one body per MANO joint, nested along each finger
    def finger_xml(j: int, finger: str, level: int) -> str:
        parent = mano.PARENTS[j]
        child = _CHILD_OF[j]
        rel = J[j] - J[parent]
        tip_r = _FINGER_RADII[finger][level]
        end = J[child] - J[j]
        if child >= 16:  # the distal phalanx ends one radius short of the tip vertex (skin surface)
            end = end - tip_r * end / np.linalg.norm(end)
        inner = [capsule(f"{mano.JOINT_NAMES[j]}_bone", np.zeros(3), end, tip_r)]
        inner.append(f'<site name="{prefix}kp{j}" pos="0 0 0" size="0.003" group="4"/>')
        if child >= 16:
            inner.append(f'<site name="{prefix}kp{child}" pos="{fmt(J[child] - J[j])}" size="0.003" group="4"/>')
            nested = ""
        else:
            nested = finger_xml(child, finger, level + 1)
        return (f'<body name="{prefix}{mano.JOINT_NAMES[j]}" pos="{fmt(rel)}">'
                f'<joint name="{prefix}{mano.JOINT_NAMES[j]}_ball" type="ball" damping="0.1"/>'
                + "".join(inner) + nested + "</body>")

    fingers = "".join(finger_xml(j, mano.FINGER_NAMES[(j - 1) // 3], 0) for j in (1, 4, 7, 10, 13))
    body = (f'<body name="{prefix}wrist" mocap="true">' + "".join(wrist_geoms) + "".join(sites)
            + fingers + "</body>" + f'<body name="{prefix}forearm" mocap="true">' + "".join(arm_geoms) + "</body>")
    return HandMJCF(prefix, side, body, assets, tuple(hand_geoms), tuple(forearm_geoms))


def standalone_hand_xml(hand: HandMJCF) -> str:
    """A minimal model holding just the hand (for tests and quick looks)."""
    return (f'<mujoco model="human_hand"><asset>{hand.assets}</asset><worldbody>'
            f'<light pos="0 0 1" dir="0 0 -1"/>{hand.body}</worldbody></mujoco>')


class HumanHandPoser:
    """Writes MANO poses into a compiled model holding a :func:`human_hand_mjcf` hand.

    ``set_pose(data, pose48, wrist_pos_world)``: ``pose48[:3]`` is the wrist rotation (axis-angle)
    taking the hand's canonical MANO frame to the **world** frame, ``pose48[3:]`` the 45-d pose in
    the hand's own MANO convention (left-hand values for a left hand), ``wrist_pos_world`` metres.
    """

    def __init__(self, model: mujoco.MjModel, prefix: str = "hand_"):
        self.model = model
        self.prefix = prefix
        bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, prefix + "wrist")
        if bid < 0:
            raise ValueError(f"model has no body {prefix + 'wrist'!r}; build it with human_hand_mjcf(prefix={prefix!r})")
        self.wrist_body = bid
        self.mocap_id = int(model.body_mocapid[bid])
        self.qpos_adr = np.array([model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT,
                                                                          f"{prefix}{n}_ball")]
                                  for n in mano.JOINT_NAMES[1:]])
        self.keypoint_sites = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, f"{prefix}kp{i}")
                                        for i in range(21)])
        geom_body = model.geom_bodyid
        arm_body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, prefix + "forearm")
        self.forearm_mocap_id = int(model.body_mocapid[arm_body])
        middle1 = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, prefix + "middle1")
        self.side = "left" if model.body_pos[middle1][0] > 0 else "right"  #: fingers along −x (right) / +x (left)
        hand_bodies = {bid, arm_body} | {mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, prefix + n)
                                         for n in mano.JOINT_NAMES[1:]}
        self.geom_ids = np.array([g for g in range(model.ngeom) if geom_body[g] in hand_bodies])
        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or "" for g in self.geom_ids]
        arm = ("forearm", "sleeve")
        self.hand_geom_ids = np.array([g for g, n in zip(self.geom_ids, names) if not n.endswith(arm)])
        self.forearm_geom_ids = np.array([g for g, n in zip(self.geom_ids, names) if n.endswith(arm)])

    def set_pose(self, data: mujoco.MjData, pose48: np.ndarray, wrist_pos_world: np.ndarray,
                 run_kinematics: bool = True, shoulder_world: np.ndarray | None = None) -> None:
        """Pose the hand. ``shoulder_world`` (metres), if given, aims the forearm between the hand's own
        axis and the direction to the shoulder (a wrist bends, an arm comes from the body)."""
        pose48 = np.asarray(pose48, dtype=np.float64)
        if pose48.shape != (48,) or not np.all(np.isfinite(pose48)):
            raise ValueError(f"pose48 must be 48 finite values, got shape {pose48.shape}")
        wrist = np.asarray(wrist_pos_world, dtype=np.float64)
        data.mocap_pos[self.mocap_id] = wrist
        data.mocap_quat[self.mocap_id] = axis_angle_to_quaternion(pose48[:3])
        quats = axis_angle_to_quaternion(pose48[3:].reshape(15, 3))
        for adr, q in zip(self.qpos_adr, quats):
            data.qpos[adr:adr + 4] = q
        hand_axis = axis_angle_to_matrix(pose48[:3])[:, 0] * (-1.0 if self.side == "left" else 1.0)
        arm = hand_axis
        if shoulder_world is not None:
            to_shoulder = np.asarray(shoulder_world, dtype=np.float64) - wrist
            arm = 0.4 * hand_axis + 0.6 * to_shoulder / max(np.linalg.norm(to_shoulder), 1e-9)
            if np.linalg.norm(arm) < 1e-6:
                arm = hand_axis
        data.mocap_pos[self.forearm_mocap_id] = wrist
        data.mocap_quat[self.forearm_mocap_id] = quat_z_to(arm)
        if run_kinematics:
            mujoco.mj_kinematics(self.model, data)

    def keypoints_world(self, data: mujoco.MjData) -> np.ndarray:
        """(21, 3) MANO-21 keypoints (16 joints + tips) in the world frame, after kinematics."""
        return data.site_xpos[self.keypoint_sites].copy()
