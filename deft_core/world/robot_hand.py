"""A 16-DoF four-finger anthropomorphic robot hand (LEAP/DASH-like, human proportions) as MJCF.

Joint order is exactly :data:`deft_core.grasp.HAND_JOINT_NAMES`: index, middle, ring, thumb ×
``[mcp_side, mcp_forward, pip, dip]`` (thumb: CMC-side, CMC-forward, MCP, IP). 0 = flat open hand;
positive forward/PIP/DIP angles close the finger towards the palm; positive side angles spread
towards the thumb. Limits are the LEAP Hand's simulation limits (``leap_hand_utils.angle_safety_clip``,
already 0 = flat), see ``docs/world.md``.

**Hand frame** (= the arm's flange frame, the body ``{prefix}mount``): z out of the flange along
the fingers, x the **palm normal** (the side the fingers close towards), y towards the thumb
(a right hand). Sites:

- ``{prefix}palm_center``: on the palm surface, z = outward palm normal (+x of the hand), x = finger
  direction (+z of the hand), y = z × x (−y of the hand: the side *away from* the thumb). Aligning it with an object site (z against z) puts the palm on the surface.
- ``{prefix}tcp``: the tool centre, 4 cm in front of the palm between the fingertips' closing arcs,
  same axes as ``palm_center``.
- ``{prefix}{finger}_tip``: each fingertip.

Actuators are compliant position servos named after the joints (``ctrl`` = target angle, rad;
``kp`` in N·m/rad, torque limited like current-limited Dynamixels). Units: metres, kilograms.
"""

from __future__ import annotations

import numpy as np

from deft_core.grasp import FINGERS, HAND_JOINT_NAMES
from deft_core.world.mjcf import COMPILER, attrs, frame_from_xz, quat_from_matrix

#: LEAP sim limits (rad), order HAND_JOINT_NAMES
_FINGER_LO, _FINGER_HI = [-1.047, -0.314, -0.506, -0.366], [1.047, 2.23, 1.885, 2.042]
_THUMB_LO, _THUMB_HI = [-0.349, -0.47, -1.20, -1.34], [2.094, 2.443, 1.90, 1.88]
HAND_LOWER = np.array(_FINGER_LO * 3 + _THUMB_LO)
HAND_UPPER = np.array(_FINGER_HI * 3 + _THUMB_HI)
HAND_JOINTS: tuple[str, ...] = HAND_JOINT_NAMES
HAND_ACTUATORS: tuple[str, ...] = HAND_JOINT_NAMES
#: servo stiffness (N·m/rad) and torque limit (N·m); side joints at 0.75 kp like LEAP's firmware setup
KP, KP_SIDE, TORQUE_LIMIT = 3.0, 2.25, 0.9

PALM_LENGTH, PALM_WIDTH, PALM_THICK, WRIST = 0.095, 0.085, 0.028, 0.03
#: (y offset of the MCP on the palm, proximal, middle, distal lengths) in metres
_FINGER_GEOM = {"index": (0.027, 0.046, 0.030, 0.026), "middle": (0.0, 0.050, 0.032, 0.027),
                "ring": (-0.027, 0.045, 0.029, 0.025)}
_THUMB_GEOM = (0.044, 0.036, 0.030)  # metacarpal, proximal, distal
_R = 0.0095  # finger link radius
PAD_FRICTION = (1.5, 0.02, 0.002)
#: thumb opposition (rad): the thumb's flexion plane is turned about the thumb's own long axis, so
#: flexing the thumb (CMC-forward, MCP, IP > 0) moves its tip out of the palm *and across it* towards the
#: index/middle fingertips (a human thumb's metacarpal is pronated the same way). At 0 joints the thumb's
#: links are unchanged (a turn about their own axis), so 0 = flat still holds.
THUMB_OPPOSITION = -0.5


def _link(name: str, length: float, axis, lo: float, hi: float, prefix: str, inner: str, pos=(0, 0, 0), quat=None, tip=False) -> str:
    geoms = [f"<geom {attrs(type='capsule', fromto=(0, 0, 0, 0, 0, length - (_R if tip else 0)), size=(_R,), material=f'{prefix}link', mass=0.025)}/>"]
    if tip:  # a soft, high-friction pad on the palm side of the fingertip
        geoms.append(f"<geom {attrs(name=f'{prefix}{name}_pad', type='sphere', size=(_R * 1.05,), pos=(0.001, 0, length - _R), material=f'{prefix}pad', friction=PAD_FRICTION, condim=4, solref=(0.01, 1), mass=0.005)}/>")
    joint = f"<joint {attrs(name=f'{prefix}{name}', axis=axis, range=(lo, hi), damping=0.08, armature=0.002, frictionloss=0.005)}/>"
    return (f"<body {attrs(name=f'{prefix}{name}_link', pos=pos, quat=quat)}>{joint}{''.join(geoms)}{inner}</body>")


def _finger(finger: str, prefix: str) -> str:
    y, l1, l2, l3 = _FINGER_GEOM[finger]
    i = FINGERS.index(finger) * 4
    lo, hi = HAND_LOWER[i:i + 4], HAND_UPPER[i:i + 4]
    tip_site = f"<site {attrs(name=f'{prefix}{finger}_tip', pos=(0, 0, l3), size=(0.004,), group=4)}/>"
    dip = _link(f"{finger}_dip", l3, (0, 1, 0), lo[3], hi[3], prefix, tip_site, pos=(0, 0, l2), tip=True)
    pip = _link(f"{finger}_pip", l2, (0, 1, 0), lo[2], hi[2], prefix, dip, pos=(0, 0, l1))
    fwd = _link(f"{finger}_mcp_forward", l1, (0, 1, 0), lo[1], hi[1], prefix, pip)
    # the side joint turns the whole finger about the palm normal (−x so that positive goes to +y)
    side = (f"<body {attrs(name=f'{prefix}{finger}_mcp_side_link', pos=(0, y, WRIST + PALM_LENGTH))}>"
            f"<joint {attrs(name=f'{prefix}{finger}_mcp_side', axis=(-1, 0, 0), range=(lo[0], hi[0]), damping=0.08, armature=0.002, frictionloss=0.005)}/>"
            f"<geom {attrs(type='sphere', size=(_R * 1.1,), material=f'{prefix}link', mass=0.02)}/>{fwd}</body>")
    return side


def _thumb(prefix: str) -> str:
    lo, hi = HAND_LOWER[12:], HAND_UPPER[12:]
    l1, l2, l3 = _THUMB_GEOM
    tip_site = f"<site {attrs(name=f'{prefix}thumb_tip', pos=(0, 0, l3), size=(0.004,), group=4)}/>"
    ip = _link("thumb_dip", l3, (0, 1, 0), lo[3], hi[3], prefix, tip_site, pos=(0, 0, l2), tip=True)
    mcp = _link("thumb_pip", l2, (0, 1, 0), lo[2], hi[2], prefix, ip, pos=(0, 0, l1))
    c, s_ = np.cos(THUMB_OPPOSITION / 2), np.sin(THUMB_OPPOSITION / 2)
    fwd = _link("thumb_mcp_forward", l1, (0, 1, 0), lo[1], hi[1], prefix, mcp, quat=(c, 0.0, 0.0, s_))
    # thumb frame at the CMC: z along the flat thumb (55° from the fingers towards +y), x = palm normal
    R = frame_from_xz((1, 0, 0), (0, np.sin(np.radians(55)), np.cos(np.radians(55))))
    return (f"<body {attrs(name=f'{prefix}thumb_mcp_side_link', pos=(0.004, PALM_WIDTH / 2 - 0.008, WRIST + 0.03), quat=quat_from_matrix(R))}>"
            f"<joint {attrs(name=f'{prefix}thumb_mcp_side', axis=(1, 0, 0), range=(lo[0], hi[0]), damping=0.08, armature=0.002, frictionloss=0.005)}/>"
            f"<geom {attrs(type='sphere', size=(_R * 1.2,), material=f'{prefix}link', mass=0.02)}/>{fwd}</body>")


def robot_hand_mjcf(prefix: str = "hand/") -> tuple[str, str, str]:
    """MJCF of the hand: ``(body_xml, assets_xml, actuator_xml)``; the body ``{prefix}mount`` is the hand frame.

    The including model must use ``<compiler angle="radian"/>`` (:data:`deft_core.world.mjcf.COMPILER`).
    Joints and actuators are named ``{prefix}{name}`` for ``name`` in :data:`HAND_JOINT_NAMES`.
    """
    pc_R = frame_from_xz((0, 0, 1), (1, 0, 0))
    pc_q = quat_from_matrix(pc_R)
    palm_z = WRIST + PALM_LENGTH / 2
    body = (f"<body {attrs(name=f'{prefix}mount', gravcomp=1)}>"
            f"<geom {attrs(type='cylinder', size=(0.035, WRIST / 2), pos=(0, 0, WRIST / 2), material=f'{prefix}link', mass=0.15)}/>"
            f"<geom {attrs(name=f'{prefix}palm', type='box', size=(PALM_THICK / 2, PALM_WIDTH / 2, PALM_LENGTH / 2), pos=(0, 0, palm_z), material=f'{prefix}palm', friction=PAD_FRICTION, condim=4, mass=0.35)}/>"
            f"<site {attrs(name=f'{prefix}palm_center', pos=(PALM_THICK / 2, 0, palm_z), quat=pc_q, size=(0.006,), group=4)}/>"
            f"<site {attrs(name=f'{prefix}tcp', pos=(PALM_THICK / 2 + 0.04, 0, palm_z + 0.02), quat=pc_q, size=(0.006,), group=4)}/>"
            + "".join(_finger(f, prefix) for f in ("index", "middle", "ring")) + _thumb(prefix) + "</body>")
    # gravity compensation for every hand body (the real servos hold the fingers' weight)
    body = body.replace("_link\" ", "_link\" gravcomp=\"1\" ")
    # hand geoms never collide with each other or the arm (contype 2 vs conaffinity 1), only with the world
    body = body.replace("<geom ", '<geom contype="2" conaffinity="1" ')
    assets = (f"<material {attrs(name=f'{prefix}link', rgba=(0.15, 0.15, 0.17, 1), specular=0.2)}/>"
              f"<material {attrs(name=f'{prefix}palm', rgba=(0.22, 0.22, 0.25, 1), specular=0.2)}/>"
              f"<material {attrs(name=f'{prefix}pad', rgba=(0.85, 0.85, 0.82, 1), specular=0.1)}/>")
    acts = "".join(
        f"<position {attrs(name=f'{prefix}{n}', joint=f'{prefix}{n}', kp=(KP_SIDE if n.endswith('side') else KP), kv=0.05, ctrlrange=(HAND_LOWER[i], HAND_UPPER[i]), forcerange=(-TORQUE_LIMIT, TORQUE_LIMIT))}/>"
        for i, n in enumerate(HAND_JOINT_NAMES))
    return body, assets, acts


def standalone_hand_xml(prefix: str = "hand/") -> str:
    """The hand alone, fixed in space with fingers pointing along world +z (for tests and viewing)."""
    body, assets, acts = robot_hand_mjcf(prefix)
    return (f'<mujoco model="robot_hand">{COMPILER}<option timestep="0.002" integrator="implicitfast"/><asset>{assets}</asset>'
            f'<worldbody><light pos="0 0 1"/>{body}</worldbody><actuator>{acts}</actuator></mujoco>')
