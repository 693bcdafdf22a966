"""The robot's simulated workcell: table, xArm6 + 16-DoF hand, a task's objects, an overhead RGB-D camera.

Frames and units (metres, radians):

- **World = robot base frame**: origin at the centre of the xArm's base mounting face, which stands on
  the table; z up, x forward (towards the objects), y to the robot's left. The **table top is z = 0**.
- Objects are placed (origin = footprint centre on the table, see ``objects``) uniformly at random in
  the reachable region ``PLACE_X`` × ``PLACE_Y`` (drawers further back in ``DRAWER_X``), with a
  kind-dependent random yaw about the nominal orientation (handles of spoons, spatulas and grape stems
  point at the robot, the drawer's front faces it), without overlap, all from ``seed``.
- Camera ``overhead``: a fixed RGB-D camera above and behind the robot's base, looking over it at the
  workspace — the paper's egocentric placement (its Fig. 4: "above the robot to maintain an egocentric
  viewpoint, consistent with the affordance model's training data"; wrist rotations predicted in the
  camera frame only transfer from a view like the head camera's); 640×480, ``fovy`` 42.5° (RealSense
  D435-like colour intrinsics). The arm at ``home`` stands in that view, so the initial image I₀ is
  taken with the arm folded aside (:data:`CAPTURE_Q`), as a real robot would move out of the way. :class:`SceneInfo`
  gives its OpenCV intrinsics ``K`` and extrinsics ``T_base_cam`` (OpenCV axes: x right, y down,
  z forward) — what the real robot's camera calibration produces.
- Keyframe ``home``: arm at :data:`deft_core.world.xarm6.HOME`, hand open, objects at their placement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deft_core.geometry import intrinsics_from_fovy, look_at, make_transform
from deft_core.grasp import HAND_JOINT_NAMES
from deft_core.tasks import get_task
from deft_core.world import objects as objs
from deft_core.world.mjcf import COMPILER, attrs, fmt
from deft_core.world.robot_hand import robot_hand_mjcf
from deft_core.world.xarm6 import HOME, JOINT_NAMES, xarm6_mjcf

PLACE_X, PLACE_Y, DRAWER_X = (0.36, 0.58), (-0.20, 0.20), (0.56, 0.62)
CAMERA_EYE, CAMERA_TARGET = (-0.35, 0.0, 1.00), (0.47, 0.0, 0.0)
#: arm joints (rad) while I₀ is taken: folded to the robot's right, below the camera's view of the table
CAPTURE_Q = np.array([1.57, -1.9, -2.2, 0.0, 0.0, 0.0])
CAMERA_WIDTH, CAMERA_HEIGHT, CAMERA_FOVY = 640, 480, 42.5
TABLE_X, TABLE_Y, TABLE_THICKNESS = (-0.30, 1.00), (-0.65, 0.65), 0.04
#: random yaw half-range (rad) about the nominal orientation, per object kind. The paper randomises the
#: object's *position* on the table (§5); the operator who resets the scene puts an object that has a
#: front (cup handle, spoon, spatula, grape stem, drawer) back roughly the same way round, so those turn
#: by at most ±0.5 rad (drawer ±0.25); round objects (lemon, pot, bagel, juicer) by any angle. Until
#: 2026-11-26 cups turned by ±π (docs/finetune-cli.md has what that did to fine-tuning).
YAW_RANGE = {"cup": 0.5, "drawer": 0.25, "spoon": 0.5, "spatula": 0.5, "grapes": 0.5, "lemon": np.pi,
             "pot": np.pi, "bagel": np.pi, "juicer": np.pi}
#: which grape shape a task needs (a whole bunch to pick up, a single grape to scoop)
_GRAPE_SHAPE = {"pick_grape": "bunch", "scoop_grape": "single"}


@dataclass(frozen=True)
class PlacedObject:
    role: str            #: "object" (grasped) or "support"
    variant: str
    prefix: str
    pos: tuple           #: (x, y, 0) on the table, metres, base frame
    yaw: float           #: radians about +z
    mjcf: objs.ObjectMjcf


@dataclass(frozen=True)
class SceneInfo:
    """What a simulator backend needs to know about a scene built by :func:`build_robot_scene`."""

    task: str | None
    seed: int
    objects: dict[str, PlacedObject]
    arm_joints: tuple[str, ...]
    arm_actuators: tuple[str, ...]
    hand_joints: tuple[str, ...]
    hand_actuators: tuple[str, ...]
    home_q: np.ndarray
    flange_site: str = "arm/flange"
    palm_site: str = "hand/palm_center"
    tcp_site: str = "hand/tcp"
    camera: str = "overhead"
    camera_size: tuple = (CAMERA_WIDTH, CAMERA_HEIGHT)
    K: np.ndarray = field(default_factory=lambda: intrinsics_from_fovy(CAMERA_FOVY, CAMERA_WIDTH, CAMERA_HEIGHT))
    T_base_cam: np.ndarray = field(default_factory=lambda: make_transform(look_at(CAMERA_EYE, CAMERA_TARGET), np.asarray(CAMERA_EYE)))
    table_height: float = 0.0


def _pick_variant(kind: str, split: str, rng, shape: str | None) -> objs.ObjectVariant:
    cands = [v for v in objs.object_variants(kind, split) if shape is None or v.shape == shape]
    if not cands:
        raise ValueError(f"no {split} variant of kind {kind!r}" + (f" with shape {shape!r}" if shape else ""))
    return cands[int(rng.integers(len(cands)))]


def _place(variants, rng, margin: float = 0.02, tries: int = 500):
    placed = []  # (variant, pos, radius)
    for v in variants:
        r = objs.object_extent(v).footprint_radius
        xr = DRAWER_X if v.kind == "drawer" else PLACE_X
        for _ in range(tries):
            p = np.array([rng.uniform(*xr), rng.uniform(*PLACE_Y), 0.0])
            if all(np.linalg.norm(p[:2] - q[:2]) >= r + rq + margin for _, q, rq in placed):
                break
        else:
            raise RuntimeError(f"could not place {v.name} without overlap in {tries} tries")
        placed.append((v, p, r))
    return [(v, p, float(rng.uniform(-YAW_RANGE[v.kind], YAW_RANGE[v.kind]))) for v, p, _ in placed]


def build_robot_scene(task: str | None, variant_names=None, seed: int = 0, split: str = "train",
                      timestep: float = 0.002) -> tuple[str, SceneInfo]:
    """MJCF XML of the workcell for ``task`` (None: robot and table only) and its :class:`SceneInfo`.

    ``variant_names``: ``{"object": name, "support": name}`` or a sequence ``[object, support]`` to
    choose the object variants; missing ones are drawn from ``split`` with ``seed``, which also draws
    placement and yaw. Requires ``mujoco`` (the model is compiled once to write the ``home`` keyframe).
    """
    rng = np.random.default_rng(seed)
    roles: list[tuple[str, objs.ObjectVariant]] = []
    if task is not None:
        spec = get_task(task)
        names = dict(variant_names) if isinstance(variant_names, dict) else dict(zip(("object", "support"), variant_names or ()))
        unknown = set(names) - {"object", "support"}
        if unknown:
            raise ValueError(f"variant_names has unknown roles {sorted(unknown)}; use 'object' and 'support'")
        for role, kind in (("object", spec.object_kind), ("support", spec.support_kind)):
            if kind is None:
                if role in names:
                    raise ValueError(f"task {task!r} has no support object, but variant_names gives {names[role]!r}")
                continue
            shape = _GRAPE_SHAPE.get(task) if kind == "grapes" else None
            if role in names:
                v = objs.get_variant(names[role])
                if v.kind != kind:
                    raise ValueError(f"task {task!r} needs a {kind} as its {role}, but {v.name!r} is a {v.kind}")
            else:
                v = _pick_variant(kind, split, rng, shape)
            roles.append((role, v))
    elif variant_names:
        raise ValueError("variant_names needs a task")
    # support objects are bigger: place them first
    order = sorted(range(len(roles)), key=lambda i: roles[i][0] != "support")
    placement = _place([roles[i][1] for i in order], rng)
    placed: dict[str, PlacedObject] = {}
    for i, (v, p, yaw) in zip(order, placement):
        role = roles[i][0]
        prefix = "obj/" if role == "object" else "support/"
        placed[role] = PlacedObject(role, v.name, prefix, tuple(float(x) for x in p), yaw, objs.object_mjcf(v, prefix, p, yaw))

    hand_body, hand_assets, hand_acts = robot_hand_mjcf("hand/")
    arm_body, arm_assets, arm_acts = xarm6_mjcf("arm/", hand_body=hand_body)
    info = SceneInfo(task=task, seed=seed, objects=placed,
                     arm_joints=tuple(f"arm/{n}" for n in JOINT_NAMES), arm_actuators=tuple(f"arm/{n}" for n in JOINT_NAMES),
                     hand_joints=tuple(f"hand/{n}" for n in HAND_JOINT_NAMES), hand_actuators=tuple(f"hand/{n}" for n in HAND_JOINT_NAMES),
                     home_q=HOME.copy())
    R_cv = info.T_base_cam[:3, :3]
    R_mj = R_cv @ np.diag([1.0, -1.0, -1.0])
    (x0, x1), (y0, y1), t = TABLE_X, TABLE_Y, TABLE_THICKNESS
    table = (f"<geom {attrs(name='table', type='box', size=((x1 - x0) / 2, (y1 - y0) / 2, t / 2), pos=((x0 + x1) / 2, (y0 + y1) / 2, -t / 2), material='table', friction=(0.8, 0.005, 0.0001))}/>"
             f"<geom {attrs(name='floor', type='plane', size=(3, 3, 0.1), pos=(0, 0, -0.75), material='floor', contype=0, conaffinity=0)}/>")
    lights = ('<light name="key" pos="0.6 -0.8 1.8" dir="-0.15 0.4 -1" diffuse="0.7 0.7 0.7" specular="0.2 0.2 0.2" castshadow="true"/>'
              '<light name="fill" pos="0.4 0.9 1.4" dir="0 -0.5 -1" diffuse="0.35 0.35 0.35" specular="0 0 0" castshadow="false"/>')
    camera = f"<camera {attrs(name='overhead', pos=CAMERA_EYE, xyaxes=np.concatenate([R_mj[:, 0], R_mj[:, 1]]), fovy=CAMERA_FOVY)}/>"
    assets = ('<texture name="grid" type="2d" builtin="checker" rgb1="0.62 0.60 0.56" rgb2="0.58 0.56 0.52" width="256" height="256"/>'
              '<material name="table" texture="grid" texrepeat="6 6" specular="0.1"/>'
              '<material name="floor" rgba="0.3 0.3 0.32 1"/>' + arm_assets + hand_assets + "".join(o.mjcf.assets for o in placed.values()))
    body_xml = arm_body + "".join(o.mjcf.body for o in placed.values())
    xml = (f'<mujoco model="deft_{task or "robot"}">{COMPILER}'
           f'<option timestep="{timestep}" integrator="implicitfast" cone="elliptic" impratio="5"/>'
           f'<visual><global offwidth="1280" offheight="960"/><headlight ambient="0.35 0.35 0.35" diffuse="0.3 0.3 0.3"/>'
           f'<quality shadowsize="2048"/></visual>'
           f"<asset>{assets}</asset><worldbody>{lights}{camera}{table}{body_xml}</worldbody>"
           f"<actuator>{arm_acts}{hand_acts}</actuator>{{KEY}}</mujoco>")
    return xml.replace("{KEY}", _home_key(xml.replace("{KEY}", ""), info)), info


def _home_key(xml: str, info: SceneInfo) -> str:
    import mujoco

    m = mujoco.MjModel.from_xml_string(xml)
    qpos = m.qpos0.copy()
    ctrl = np.zeros(m.nu)
    for name, q in zip(info.arm_joints, info.home_q):
        qpos[m.jnt_qposadr[m.joint(name).id]] = q
        ctrl[m.actuator(name).id] = q
    return f'<keyframe><key name="home" qpos="{fmt(qpos)}" ctrl="{fmt(ctrl)}"/></keyframe>'
