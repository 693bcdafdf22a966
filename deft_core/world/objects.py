"""The tabletop objects of DEFT's nine tasks, as procedural MuJoCo bodies (no external files).

Kinds (``deft_core.tasks``): grasped objects ``cup``, ``drawer``, ``spoon``, ``grapes``, ``spatula``,
``lemon``; support objects ``pot`` (pot or jar to stir in), ``bagel``, ``juicer``. Every kind has
variants that differ in shape, size and colour, each tagged ``split="train"`` or ``"test"`` (like the
paper's train/test objects). See ``docs/world.md`` for the full list.

API (stable)::

    object_variants(kind=None, split=None) -> list[ObjectVariant]
    get_variant(name) -> ObjectVariant
    object_mjcf(variant, prefix, pos=(0, 0, 0), yaw=0.0) -> ObjectMjcf   # .body, .assets, .sites, ...
    object_extent(variant) -> ObjectExtent                               # bounding box, footprint

**Object frame.** Origin at the centre of the object's footprint *on the table surface* (so ``pos``
is the point of the table the object stands on), +z up, +x the long axis (spoon, spatula, lemon, grape
stem; the cup's handle points along +x; the drawer cabinet's front faces −x and the drawer opens
along −x). ``yaw`` (radians) rotates the object about +z. Units: metres, kilograms.

**Grasp-region sites.** ``ObjectMjcf.sites`` maps region names to site names. Regions are those of
``TaskSpec.grasp_region``: cup ``body`` (outer wall opposite the handle, mid-height) and ``handle``;
drawer ``handle`` (on the drawer, moves with it); spoon ``handle``, ``handle_back`` (near the free
end) and ``handle_top`` (the free end's cap); grapes ``stem``; spatula ``handle``; lemon ``top``.
Every object also has ``body`` (its main part, e.g. the top of a lemon or the bowl of a spoon) and
``center`` (the centre of its bounding box, axes of the object frame). Each site frame has its origin
on the surface to touch and its **z axis the outward surface normal** (a hand approaches along −z);
its x axis is the object's long axis at that point where it has one (a handle's axis, pointing from
the free end towards the tool head; vertical for the cup's handle and wall; for ``handle_top`` the
handle's upward normal).

**Physics choices.** Hollow cups, pots and drawers are built from boxes (MuJoCo collides convex
shapes only) with walls ≥ 5 mm thick; lemons and grapes use ``condim=6`` with rolling friction so
they do not roll away. A bunch of grapes is one **rigid** body (grapes never detach; "pick grape"
then fails only by dropping the bunch); ``shape="single"`` variants are loose single grapes for
scooping. The drawer cabinet is fixed (no free joint); the drawer is a child body on a slide joint
named ``ObjectMjcf.joints["drawer"]`` whose position is the opening in metres (initially 3 cm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deft_core.world import object_shapes
from deft_core.world.mjcf import Geom, aabb_of, assign_masses, attrs, fmt, site_xml, yaw_quat

KINDS: tuple[str, ...] = ("cup", "drawer", "spoon", "grapes", "spatula", "lemon", "pot", "bagel", "juicer")
SPLITS: tuple[str, ...] = ("train", "test")


@dataclass(frozen=True)
class ObjectVariant:
    """One object. ``rgba`` is the main colour, ``rgba2`` the secondary (handle, stem, reamer...).

    ``dims`` holds named sizes in metres (see the builders in ``object_shapes``), ``mass`` is in kg
    (for the drawer: the sliding drawer's mass; the cabinet is fixed).
    """

    name: str
    kind: str
    split: str
    shape: str
    rgba: tuple
    rgba2: tuple
    mass: float
    dims: tuple = ()

    def dim(self, key: str) -> float:
        for k, v in self.dims:
            if k == key:
                return float(v)
        raise KeyError(f"object variant {self.name!r} has no dimension {key!r}; it has {[k for k, _ in self.dims]}")


def _v(name, kind, split, shape, rgba, rgba2, mass, **dims) -> ObjectVariant:
    return ObjectVariant(name, kind, split, shape, tuple(rgba), tuple(rgba2), mass, tuple(sorted(dims.items())))


_VARIANTS: tuple[ObjectVariant, ...] = (
    _v("mug_red", "cup", "train", "mug", (0.80, 0.15, 0.12, 1), (0.80, 0.15, 0.12, 1), 0.30,
       radius=0.040, height=0.095, wall=0.006, taper=1.0, handle_gap=0.030, handle_radius=0.0065),
    _v("mug_blue_tall", "cup", "train", "mug", (0.15, 0.30, 0.75, 1), (0.90, 0.90, 0.90, 1), 0.33,
       radius=0.036, height=0.115, wall=0.006, taper=1.0, handle_gap=0.032, handle_radius=0.006),
    _v("cup_green_conical", "cup", "test", "conical", (0.20, 0.62, 0.30, 1), (0.20, 0.62, 0.30, 1), 0.25,
       radius=0.033, height=0.090, wall=0.005, taper=1.30, handle_gap=0.028, handle_radius=0.006),
    _v("mug_white_wide", "cup", "test", "mug", (0.92, 0.92, 0.88, 1), (0.55, 0.35, 0.20, 1), 0.36,
       radius=0.047, height=0.082, wall=0.007, taper=1.0, handle_gap=0.034, handle_radius=0.0075),
    _v("drawer_oak", "drawer", "train", "bar", (0.62, 0.45, 0.28, 1), (0.75, 0.75, 0.78, 1), 0.40,
       width=0.30, depth=0.26, height=0.16, handle_radius=0.0065, handle_length=0.10, initial_opening=0.03),
    _v("drawer_white_pull", "drawer", "test", "pull", (0.90, 0.90, 0.88, 1), (0.15, 0.15, 0.15, 1), 0.35,
       width=0.26, depth=0.22, height=0.19, handle_radius=0.006, handle_length=0.08, initial_opening=0.03),
    _v("spoon_steel", "spoon", "train", "oval", (0.72, 0.74, 0.78, 1), (0.72, 0.74, 0.78, 1), 0.045,
       length=0.18, handle_radius=0.0055, bowl_length=0.056, bowl_width=0.038),
    _v("spoon_blue_plastic", "spoon", "train", "oval", (0.20, 0.45, 0.85, 1), (0.20, 0.45, 0.85, 1), 0.025,
       length=0.165, handle_radius=0.006, bowl_length=0.05, bowl_width=0.036),
    _v("spoon_wood_large", "spoon", "test", "round", (0.68, 0.50, 0.30, 1), (0.60, 0.42, 0.25, 1), 0.06,
       length=0.23, handle_radius=0.0075, bowl_length=0.06, bowl_width=0.052),
    _v("grapes_green_bunch", "grapes", "train", "bunch", (0.55, 0.78, 0.30, 1), (0.45, 0.35, 0.20, 1), 0.20,
       grape_radius=0.009, rows=4, cols=3),
    _v("grapes_red_bunch", "grapes", "test", "bunch", (0.50, 0.10, 0.22, 1), (0.40, 0.32, 0.18, 1), 0.26,
       grape_radius=0.0105, rows=3, cols=3),
    _v("grape_single_purple", "grapes", "train", "single", (0.35, 0.12, 0.40, 1), (0.40, 0.32, 0.18, 1), 0.008,
       grape_radius=0.010),
    _v("grape_single_green", "grapes", "test", "single", (0.60, 0.80, 0.35, 1), (0.40, 0.32, 0.18, 1), 0.006,
       grape_radius=0.0075),
    _v("spatula_black", "spatula", "train", "narrow", (0.12, 0.12, 0.12, 1), (0.12, 0.12, 0.12, 1), 0.07,
       length=0.27, handle_radius=0.0075, blade_length=0.075, blade_width=0.06),
    _v("spatula_red_wide", "spatula", "test", "wide", (0.80, 0.20, 0.15, 1), (0.55, 0.40, 0.25, 1), 0.09,
       length=0.24, handle_radius=0.009, blade_length=0.085, blade_width=0.09),
    _v("lemon_yellow", "lemon", "train", "lemon", (0.96, 0.85, 0.20, 1), (0.96, 0.85, 0.20, 1), 0.11,
       half_length=0.040, radius=0.030),
    _v("lemon_large_pale", "lemon", "train", "lemon", (0.98, 0.93, 0.45, 1), (0.98, 0.93, 0.45, 1), 0.14,
       half_length=0.046, radius=0.033),
    _v("lime_green", "lemon", "test", "lime", (0.40, 0.70, 0.20, 1), (0.40, 0.70, 0.20, 1), 0.07,
       half_length=0.032, radius=0.028),
    _v("pot_steel", "pot", "train", "pot", (0.65, 0.66, 0.70, 1), (0.20, 0.20, 0.20, 1), 1.0,
       radius=0.085, height=0.085, wall=0.006, taper=1.0),
    _v("jar_blue", "pot", "test", "jar", (0.25, 0.45, 0.70, 1), (0.25, 0.45, 0.70, 1), 0.7,
       radius=0.055, height=0.12, wall=0.006, taper=0.92),
    _v("bagel_plain", "bagel", "train", "bagel", (0.80, 0.62, 0.38, 1), (0.80, 0.62, 0.38, 1), 0.09,
       ring_radius=0.040, tube_radius=0.018),
    _v("bagel_dark_large", "bagel", "test", "bagel", (0.48, 0.30, 0.16, 1), (0.48, 0.30, 0.16, 1), 0.12,
       ring_radius=0.048, tube_radius=0.020),
    _v("juicer_white", "juicer", "train", "low", (0.93, 0.93, 0.93, 1), (0.93, 0.93, 0.93, 1), 0.45,
       radius=0.075, cone_radius=0.032, cone_height=0.045),
    _v("juicer_orange_tall", "juicer", "test", "tall", (0.95, 0.55, 0.15, 1), (0.98, 0.75, 0.35, 1), 0.55,
       radius=0.085, cone_radius=0.036, cone_height=0.06),
)
_BY_NAME = {v.name: v for v in _VARIANTS}


def object_variants(kind: str | None = None, split: str | None = None) -> list[ObjectVariant]:
    """All variants, optionally of one ``kind`` and/or one ``split`` ("train" / "test")."""
    if kind is not None and kind not in KINDS:
        raise KeyError(f"unknown object kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    return [v for v in _VARIANTS if (kind is None or v.kind == kind) and (split is None or v.split == split)]


def get_variant(name: str) -> ObjectVariant:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown object variant {name!r}; known: {', '.join(_BY_NAME)}") from None


@dataclass(frozen=True)
class ObjectExtent:
    """Axis-aligned bounding box of an object at rest, in the object frame (metres, before ``yaw``).

    ``footprint_radius`` is the radius of the smallest circle about the origin that contains the
    footprint for any yaw: keep two objects' origins ``r1 + r2`` apart and they never overlap.
    """

    lo: np.ndarray
    hi: np.ndarray

    @property
    def half_sizes(self) -> np.ndarray:
        return (self.hi - self.lo) / 2

    @property
    def center(self) -> np.ndarray:
        return (self.hi + self.lo) / 2

    @property
    def footprint_radius(self) -> float:
        corners = np.array([[x, y] for x in (self.lo[0], self.hi[0]) for y in (self.lo[1], self.hi[1])])
        return float(np.linalg.norm(corners, axis=1).max())


@dataclass(frozen=True)
class ObjectMjcf:
    """MJCF snippets for one object instance. All names start with the instance ``prefix``.

    ``body``: a ``<body>`` element for ``<worldbody>``; ``assets``: elements for ``<asset>``;
    ``sites``: grasp region → site name; ``root_body``: the top body's name; ``free_joint``: its free
    joint's name (None for fixed objects such as the drawer cabinet); ``joints``: other joints
    (``{"drawer": name}``); ``bodies``: every body's name (for contact and success checks).
    """

    body: str
    assets: str
    sites: dict[str, str]
    root_body: str
    free_joint: str | None
    joints: dict[str, str] = field(default_factory=dict)
    bodies: tuple[str, ...] = ()
    variant: ObjectVariant | None = None


def _all_geoms(part: object_shapes.Part, offset=np.zeros(3)) -> list[Geom]:
    out = []
    for g in (g for g in part.geoms if g.collide):
        out.append(Geom(g.type, g.size, tuple(np.asarray(g.pos) + offset), g.quat, mesh_vertices=g.mesh_vertices))
    for _, pos, _, child in part.children:
        out += _all_geoms(child, offset + np.asarray(pos))
    return out


def object_extent(variant: ObjectVariant) -> ObjectExtent:
    """The bounding box of ``variant`` at rest (drawer at its initial opening)."""
    part = object_shapes.BUILDERS[variant.kind](variant)
    lo, hi = aabb_of(_all_geoms(part))
    return ObjectExtent(lo, hi)


def _body_xml(part, name: str, prefix: str, pos, quat, joint_xml: str, sites: dict, joints: dict, bodies: list) -> str:
    assign_masses(part.geoms, part.mass)
    bodies.append(name)
    lines = [f"<body {attrs(name=name, pos=pos, quat=quat)}>", joint_xml]
    for g in part.geoms:
        lines.append(g.xml().replace("{P}", prefix))
    for region, (spos, x_axis, z_axis) in part.sites.items():
        sname = f"{prefix}{region}"
        sites[region] = sname
        lines.append(site_xml(sname, spos, x_axis, z_axis))
    for suffix, cpos, joint, child in part.children:
        jname = f"{prefix}{suffix}_joint"
        joints[suffix] = jname
        jxml = f"<joint {attrs(name=jname, **joint)}/>" if joint else ""
        lines.append(_body_xml(child, f"{prefix}{suffix}", prefix, cpos, None, jxml, sites, joints, bodies))
    lines.append("</body>")
    return "\n".join(line for line in lines if line)


def object_mjcf(variant: ObjectVariant, prefix: str, pos=(0.0, 0.0, 0.0), yaw: float = 0.0) -> ObjectMjcf:
    """MJCF for one instance of ``variant`` standing on the point ``pos`` (metres, world frame), yawed by ``yaw`` rad."""
    if not isinstance(variant, ObjectVariant):
        variant = get_variant(str(variant))
    if not prefix:
        raise ValueError("object_mjcf needs a non-empty name prefix (e.g. 'cup/') so instances cannot collide")
    pos = np.asarray(pos, dtype=np.float64)
    if pos.shape != (3,) or not np.all(np.isfinite(pos)):
        raise ValueError(f"object position must be 3 finite numbers (metres), got {pos}")
    part = object_shapes.BUILDERS[variant.kind](variant)
    lo, hi = aabb_of(_all_geoms(part))
    part.sites.setdefault("center", (tuple((lo + hi) / 2), (1, 0, 0), (0, 0, 1)))
    sites: dict[str, str] = {}
    joints: dict[str, str] = {}
    bodies: list[str] = []
    root = f"{prefix}root"
    free = None if part.fixed else f"{prefix}free"
    jxml = "" if part.fixed else f"<freejoint {attrs(name=free)}/>"
    body = _body_xml(part, root, prefix, pos, yaw_quat(yaw), jxml, sites, joints, bodies)
    mats = [f"<material {attrs(name=f'{prefix}mat', rgba=variant.rgba, specular=0.3, shininess=0.4)}/>",
            f"<material {attrs(name=f'{prefix}mat2', rgba=variant.rgba2, specular=0.3, shininess=0.4)}/>"]
    meshes = {g.mesh.replace("{P}", prefix): g.mesh_vertices for g in _iter_geoms(part) if g.type == "mesh"}
    mats += [f"<mesh {attrs(name=n, vertex=fmt(v.ravel()))}/>" for n, v in meshes.items()]
    return ObjectMjcf(body=body, assets="\n".join(mats), sites=sites, root_body=root, free_joint=free,
                      joints=joints, bodies=tuple(bodies), variant=variant)


def _iter_geoms(part):
    yield from part.geoms
    for *_, child in part.children:
        yield from _iter_geoms(child)


def standalone_xml(variant: ObjectVariant | str, table: bool = True) -> str:
    """A minimal complete model: one object on a ground plane (z = 0). Used by tests and ``deft-robot world``."""
    obj = object_mjcf(get_variant(variant) if isinstance(variant, str) else variant, "obj/")
    floor = '<geom name="floor" type="plane" size="1 1 0.05" rgba="0.5 0.5 0.5 1"/>' if table else ""
    return (f'<mujoco model="object"><option timestep="0.002"/><asset>{obj.assets}</asset>'
            f'<worldbody><light pos="0 0 2" dir="0 0 -1"/>{floor}{obj.body}</worldbody></mujoco>')
