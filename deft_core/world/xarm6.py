"""UFactory xArm6 from its published kinematics: modified-DH table, joint limits, numpy FK and MJCF.

Sources (verified, see ``docs/world.md``): UFactory's modified-DH parameters (the ufactory_docs
kinematics article: T2_offset = −atan(284.5/53.5) = −1.3849179 rad, a2 = √(284.5² + 53.5²) =
289.48866 mm) and the official ROS description ``xArm-Developer/xarm_ros``
(``xarm_description/config/kinematics/default/xarm6_default_kinematics.yaml`` joint origins and
``xarm_description/urdf/xarm6/xarm6.urdf.xacro`` joint limits).

Modified (Craig) DH, one row per joint i: ``T_{i-1,i} = RotX(alpha_{i-1}) TransX(a_{i-1})
RotZ(q_i + offset_i) TransZ(d_i)``. Frame 0 is the **robot base frame** (origin at the centre of the
base's mounting face, z up, x forward — the xArm's controller frame); frame 6 is the **flange frame**
(origin on the tool flange face, z out of the flange). Units: metres, radians. Joint i's zero is the
xArm's own zero (the arm stretched up with the forearm horizontal).

The MJCF uses the DH frames directly as body frames, so MuJoCo's flange site equals
:func:`flange_pose` (tested), and the robot hand is mounted on the flange.
"""

from __future__ import annotations

import numpy as np

from deft_core.world.mjcf import attrs, capsule_between, quat_from_matrix

#: modified DH rows (alpha_{i-1} rad, a_{i-1} m, d_i m, offset_i rad) for joints 1..6
T2_OFFSET = -float(np.arctan2(284.5, 53.5))  # −1.3849179 rad
DH = np.array([
    [0.0, 0.0, 0.267, 0.0],
    [-np.pi / 2, 0.0, 0.0, T2_OFFSET],
    [0.0, float(np.hypot(284.5, 53.5)) / 1000.0, 0.0, -T2_OFFSET],
    [-np.pi / 2, 0.0775, 0.3425, 0.0],
    [np.pi / 2, 0.0, 0.0, 0.0],
    [-np.pi / 2, 0.076, 0.097, 0.0],
])
JOINT_NAMES: tuple[str, ...] = tuple(f"joint{i}" for i in range(1, 7))
#: UFactory joint limits (rad): J1/J4/J6 ±360°, J2 −118°..120°, J3 −225°..11°, J5 −97°..180°
LOWER = np.array([-2 * np.pi, -2.059, -3.927, -2 * np.pi, -1.69297, -2 * np.pi])
UPPER = np.array([2 * np.pi, 2.0944, 0.19198, 2 * np.pi, np.pi, 2 * np.pi])
#: maximum joint torques (N·m, xarm_ros URDF efforts) and a safe home configuration (rad)
EFFORT = np.array([50.0, 50.0, 32.0, 32.0, 32.0, 20.0])
#: home: flange 30 cm above the table, pointing down, in front of the robot
HOME = np.array([0.0, -0.35, -0.75, 0.0, 1.10, 0.0])
#: link masses (kg), rounded from the xarm_ros inertial parameters (base, link1..link6)
LINK_MASS = (2.7, 2.4, 2.1, 1.6, 1.1, 1.2, 0.2)
LINK_RADIUS = (0.06, 0.055, 0.05, 0.045, 0.042, 0.04, 0.038)


def _dh_link(alpha: float, a: float, d: float, theta: float) -> np.ndarray:
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    return np.array([[ct, -st, 0.0, a],
                     [st * ca, ct * ca, -sa, -sa * d],
                     [st * sa, ct * sa, ca, ca * d],
                     [0.0, 0.0, 0.0, 1.0]])


def forward_kinematics(q) -> list[np.ndarray]:
    """4×4 transforms base → frame i for i = 1..6 (metres) at joint angles ``q`` (6, radians)."""
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (6,):
        raise ValueError(f"xArm6 joint vector must have shape (6,), got {q.shape}")
    T = np.eye(4)
    out = []
    for (alpha, a, d, off), qi in zip(DH, q):
        T = T @ _dh_link(alpha, a, d, qi + off)
        out.append(T)
    return out


def flange_pose(q) -> np.ndarray:
    """4×4 transform of the flange frame in the robot base frame at joint angles ``q`` (rad)."""
    return forward_kinematics(q)[-1]


def _body_frame(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Position and rotation of DH frame i+1 in frame i at q = 0 (what a MuJoCo body needs)."""
    T = _dh_link(*DH[i, :3], DH[i, 3])
    return T[:3, 3], T[:3, :3]


def xarm6_mjcf(prefix: str = "arm/", hand_body: str = "", kp=(2500, 2500, 1800, 600, 600, 300)) -> tuple[str, str, str]:
    """MJCF of the xArm6: ``(body_xml, assets_xml, actuator_xml)``.

    ``body_xml`` is the base body ``{prefix}base`` placed at the parent's origin (the robot base
    frame); ``hand_body`` (a ``<body>`` string, e.g. from :func:`robot_hand_mjcf`) is inserted on the
    flange, whose frame is the site ``{prefix}flange``. Joints ``{prefix}joint1..6`` carry the UFactory
    limits; the links have gravity compensation (like the real controller) and high-gain position
    actuators named after the joints (``ctrl`` = joint target, rad; force limited to the URDF efforts).
    """
    mat = f"{prefix}white"
    assets = (f"<material {attrs(name=mat, rgba=(0.92, 0.92, 0.92, 1), specular=0.5, shininess=0.5)}/>"
              f"<material {attrs(name=f'{prefix}grey', rgba=(0.35, 0.36, 0.38, 1), specular=0.3)}/>")
    base_geom = f"<geom {attrs(type='cylinder', size=(LINK_RADIUS[0], 0.07), pos=(0, 0, 0.07), material=mat, mass=LINK_MASS[0])}/>"
    inner = hand_body
    # build from the flange inwards
    for i in range(5, -1, -1):
        pos, R = _body_frame(i)
        r, m = LINK_RADIUS[i + 1], LINK_MASS[i + 1]
        geoms = [f"<geom {attrs(type='cylinder', size=(r, r * 0.9), material=f'{prefix}grey', mass=m * 0.3)}/>"]  # joint housing
        if i < 5:
            npos, _ = _body_frame(i + 1)
            a = np.array([DH[i + 1, 1], 0.0, 0.0])
            segs = [(np.zeros(3), a), (a, npos)]
            for p1, p2 in segs:
                if np.linalg.norm(p2 - p1) > 1e-6:
                    g = capsule_between(p1, p2, r * 0.85, material=mat)
                    g.mass = m * 0.7 / 2
                    geoms.append(g.xml())
        else:
            geoms.append(f"<geom {attrs(type='cylinder', size=(r, 0.006), pos=(0, 0, -0.006), material=f'{prefix}grey', mass=m * 0.7)}/>")
        name = f"{prefix}link{i + 1}"
        site = (f"<site {attrs(name=f'{prefix}flange', size=(0.01,), rgba=(1, 0, 0, 0), group=4)}/>" if i == 5 else "")
        joint = (f"<joint {attrs(name=f'{prefix}joint{i + 1}', axis=(0, 0, 1), range=(LOWER[i], UPPER[i]), damping=(40 if i < 3 else 15), armature=(0.2 if i < 3 else 0.05), frictionloss=0.2)}/>")
        inner = (f"<body {attrs(name=name, pos=pos, quat=quat_from_matrix(R), gravcomp=1)}>{joint}"
                 + "".join(geoms) + site + inner + "</body>")
    # the base's column reaches up to joint 2's housing
    column = capsule_between((0, 0, 0.14), (0, 0, 0.267 - 0.06), LINK_RADIUS[0] * 0.85, material=mat)
    column.mass = 0.5
    arm = f"{base_geom}{column.xml()}{inner[:len(inner) - len(hand_body) - 6 * len('</body>')]}"
    # arm geoms collide with the world but not with each other or the hand (contype 2 / conaffinity 1)
    arm = arm.replace("<geom ", '<geom contype="2" conaffinity="1" ')
    body = f"<body {attrs(name=f'{prefix}base')}>{arm}{hand_body}{'</body>' * 6}</body>"
    acts = "".join(
        f"<position {attrs(name=f'{prefix}{n}', joint=f'{prefix}{n}', kp=float(k), ctrlrange=(LOWER[i], UPPER[i]), forcerange=(-EFFORT[i], EFFORT[i]))}/>"
        for i, (n, k) in enumerate(zip(JOINT_NAMES, kp)))
    return body, assets, acts
