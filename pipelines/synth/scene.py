"""Randomised tabletop scenes for the synthetic egocentric renderer.

World frame ("human frame"): origin on the table top in front of the person, x to the person's right,
y forward (away from the person), z up; the table top is z = 0. The person sits at y ≈ −0.45 m; their
head camera is a mocap body (``headcam``) the renderer moves every frame.

A scene holds the task object (+ the support object the task needs: pot, grapes, bagel, juicer),
1–3 distractors, a table whose colour never looks like skin (so skin segmentation works), random
lights, and one human hand (the acting one).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import mujoco
import numpy as np

from deft_core.tasks import TaskSpec
from deft_core.world.human_hand import HandMJCF, human_hand_mjcf
from deft_core.world.objects import ObjectMjcf, object_extent, object_mjcf, object_variants

DISTRACTOR_KINDS = ("cup", "spoon", "grapes", "spatula", "lemon", "pot", "bagel", "juicer")
CAMERA_FOVY = 62.0  #: vertical field of view of the head camera, degrees (wide, like GoPro-style ego cameras)


@dataclass
class PlacedObject:
    role: str            #: "target", "support" or "distractor"
    mjcf: ObjectMjcf
    pos: np.ndarray      #: footprint centre on the table (m)
    yaw: float           #: radians about +z


@dataclass
class Scene:
    xml: str
    hand: HandMJCF
    side: str
    objects: list[PlacedObject]
    info: dict = field(default_factory=dict)  #: lighting / colours chosen (goes into SynthClip.extra)

    @property
    def target(self) -> PlacedObject:
        return next(o for o in self.objects if o.role == "target")

    @property
    def support(self) -> PlacedObject | None:
        return next((o for o in self.objects if o.role == "support"), None)


def _table_rgb(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two table colours (checker/texture) whose hue or saturation keeps them apart from skin."""
    if rng.random() < 0.3:  # grey / dark / white laminate
        v = rng.uniform(0.15, 0.85)
        c1 = np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.0, 0.08), v))
    else:  # blue-green-purple
        c1 = np.array(colorsys.hsv_to_rgb(rng.uniform(0.3, 0.78), rng.uniform(0.25, 0.7), rng.uniform(0.3, 0.8)))
    c2 = np.clip(c1 * rng.uniform(0.8, 0.95), 0, 1)
    return c1, c2


def skin_rgba(rng: np.random.Generator) -> tuple:
    """A skin tone (light to medium-dark), kept inside a standard HSV skin range."""
    h = rng.uniform(0.04, 0.075)
    s = rng.uniform(0.3, 0.45)
    v = rng.uniform(0.55, 0.9)
    return (*colorsys.hsv_to_rgb(h, s, v), 1.0)


def _yaw_presenting(mjcf_probe: ObjectMjcf, region: str, present_vec: str, direction) -> float:
    """Yaw that turns the object's grasp-region normal (or −long axis) to face ``direction``."""
    if direction is None:
        return 0.0
    m = mujoco.MjModel.from_xml_string(f"<mujoco><asset>{mjcf_probe.assets}</asset><worldbody>{mjcf_probe.body}</worldbody></mujoco>")
    d = mujoco.MjData(m)
    mujoco.mj_kinematics(m, d)
    sid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, mjcf_probe.sites[region])
    v = d.site_xmat[sid].reshape(3, 3)[:, 2] if present_vec == "normal" else np.array([-1.0, 0.0, 0.0])
    return float(np.arctan2(direction[1], direction[0]) - np.arctan2(v[1], v[0]))


def build_scene(task: TaskSpec, rng: np.random.Generator, side: str, object_split: str, task_grasp) -> Scene:
    from pipelines.synth.grasps import side_vec  # local: grasps imports nothing from here

    variants = object_variants(task.object_kind, object_split)
    if not variants:
        raise ValueError(f"no {task.object_kind!r} variants in split {object_split!r}")
    variant = variants[rng.integers(len(variants))]
    sx = -1.0 if side == "left" else 1.0
    placed: list[PlacedObject] = []
    # target object: in front of the acting hand, within reach
    if task.object_kind == "drawer":
        pos = np.array([sx * rng.uniform(0.0, 0.06), rng.uniform(0.2, 0.26), 0.0])
    else:
        pos = np.array([sx * rng.uniform(0.02, 0.12), rng.uniform(0.0, 0.1), 0.0])
    probe = object_mjcf(variant, "probe/")
    present = None if task_grasp.present is None else side_vec(task_grasp.present, side)
    yaw = _yaw_presenting(probe, task.grasp_region, task_grasp.present_vec, present) + rng.normal(0, 0.25 if present is not None else 3.0)
    placed.append(PlacedObject("target", object_mjcf(variant, "target/", pos, yaw), pos, yaw))
    radii = [object_extent(variant).footprint_radius]
    centres = [pos[:2]]

    def free_spot(r, region):
        for _ in range(200):
            p = np.array([rng.uniform(*region[0]), rng.uniform(*region[1])])
            if all(np.linalg.norm(p - c) > r + rc + 0.015 for c, rc in zip(centres, radii)):
                return p
        return None

    if task.support_kind:
        sv = object_variants(task.support_kind, object_split)
        sv = sv[rng.integers(len(sv))]
        r = object_extent(sv).footprint_radius
        p = free_spot(r, ((-sx * 0.2, -sx * 0.02) if sx > 0 else (sx * -0.02, 0.2), (0.02, 0.2)))
        if p is None:
            p = np.array([-sx * 0.16, 0.16])
        spos = np.array([p[0], p[1], 0.0])
        placed.append(PlacedObject("support", object_mjcf(sv, "support/", spos, rng.uniform(-np.pi, np.pi)), spos, 0.0))
        radii.append(r)
        centres.append(p)
    used = {task.object_kind, task.support_kind}
    kinds = [k for k in DISTRACTOR_KINDS if k not in used]
    for i in range(int(rng.integers(1, 4))):
        kind = kinds[rng.integers(len(kinds))]
        dv = object_variants(kind)[rng.integers(len(object_variants(kind)))]
        r = object_extent(dv).footprint_radius
        p = free_spot(r, ((-0.32, 0.32), (0.12, 0.32)))  # behind / beside the work area, off the reach path
        if p is None:
            continue
        dpos = np.array([p[0], p[1], 0.0])
        placed.append(PlacedObject("distractor", object_mjcf(dv, f"distractor{i}/", dpos, rng.uniform(-np.pi, np.pi)), dpos, 0.0))
        radii.append(r)
        centres.append(p)

    skin = skin_rgba(rng)
    sleeve = (*colorsys.hsv_to_rgb(rng.uniform(0.45, 1.0), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.7)), 1.0)
    hand = human_hand_mjcf("hand_", side, skin, sleeve)  # scale 1: the MANO template (betas = 0) is exact GT
    c1, c2 = _table_rgb(rng)
    builtin = ["flat", "checker", "gradient"][rng.integers(3)]
    ambient = rng.uniform(0.25, 0.45)
    key_dir = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.2, 0.6), -1.0])
    key_diffuse = rng.uniform(0.45, 0.8)
    objects_xml = "".join(o.mjcf.body for o in placed)
    assets_xml = "".join(o.mjcf.assets for o in placed)
    f = lambda v: " ".join(f"{x:.4g}" for x in np.atleast_1d(v))  # noqa: E731
    xml = f"""<mujoco model="synth_scene">
<statistic extent="0.9" center="0 0.05 0.05"/>
<visual><global offwidth="1280" offheight="960"/><quality shadowsize="2048"/><map shadowclip="0.6"/>
<headlight ambient="{f([ambient] * 3)}" diffuse="0.25 0.25 0.25" specular="0.05 0.05 0.05"/></visual>
<asset>{hand.assets}{assets_xml}
<texture name="table_tex" type="2d" builtin="{builtin}" rgb1="{f(c1)}" rgb2="{f(c2)}" width="128" height="128" mark="random" random="0.02" markrgb="{f(c2 * 0.9)}"/>
<material name="table_mat" texture="table_tex" texrepeat="{rng.uniform(2, 8):.3g} {rng.uniform(2, 8):.3g}" specular="0.1"/>
<material name="floor_mat" rgba="{f(np.r_[np.array(colorsys.hsv_to_rgb(rng.uniform(0.4, 0.8), 0.2, rng.uniform(0.15, 0.4))), 1])}"/>
</asset>
<worldbody>
<light name="key" directional="true" pos="0 0 2" dir="{f(key_dir)}" diffuse="{f([key_diffuse] * 3)}" castshadow="true"/>
<light name="fill" pos="{f([rng.uniform(-1, 1), rng.uniform(-1, 0.5), 1.5])}" dir="0 0.2 -1" diffuse="{f([rng.uniform(0.1, 0.3)] * 3)}" castshadow="false"/>
<geom name="table" type="box" pos="0 0.1 -0.02" size="0.6 0.45 0.02" material="table_mat"/>
<geom name="floor" type="plane" pos="0 0 -0.75" size="4 4 0.1" material="floor_mat"/>
<body name="headcam" mocap="true"><camera name="head" fovy="{CAMERA_FOVY}"/></body>
{objects_xml}{hand.body}
</worldbody></mujoco>"""
    info = {"table_rgb": c1.round(3).tolist(), "table_texture": builtin, "ambient": round(float(ambient), 3),
            "key_light_dir": key_dir.round(3).tolist(), "skin_rgba": [round(float(c), 3) for c in skin]}
    return Scene(xml, hand, side, placed, info)
