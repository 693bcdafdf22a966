"""Geometry builders for the tabletop objects (used by :mod:`deft_core.world.objects`).

Each builder turns an :class:`~deft_core.world.objects.ObjectVariant` into a :class:`Part` tree of
:class:`~deft_core.world.mjcf.Geom` records and grasp sites, in the **object frame**: origin at the
centre of the object's footprint on the table surface, +z up, +x the object's long axis (spoon,
spatula, lemon, grape stem) or the direction its handle points (cup); the drawer's front faces −x.
Materials are referred to as ``"{P}mat"`` / ``"{P}mat2"`` and names as ``"{P}..."``; the
caller substitutes the prefix. Units: metres, kilograms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deft_core.world.mjcf import Geom, capsule_between, quat_from_matrix, quat_z_to

M1, M2 = "{P}mat", "{P}mat2"
UP = (0.0, 0.0, 1.0)


@dataclass
class Part:
    """A body: its geoms, its sites ``region -> (pos, x_axis, z_axis)``, its mass and child bodies."""

    geoms: list[Geom]
    mass: float
    sites: dict[str, tuple] = field(default_factory=dict)
    #: (name suffix, position in parent, joint attributes dict or None, Part)
    children: list[tuple[str, tuple, dict | None, "Part"]] = field(default_factory=list)
    fixed: bool = False


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def _ring_wall(r_bot: float, r_top: float, z0: float, z1: float, t: float, n: int, mat: str, **kw) -> list[Geom]:
    """A hollow (optionally tapered) round wall from ``n`` boxes; radii are outer radii (m)."""
    beta = np.arctan2(r_top - r_bot, z1 - z0)
    half_h = 0.5 * (z1 - z0) / np.cos(beta)
    r_mid = 0.5 * (r_bot + r_top) - t / 2
    half_w = max(r_bot, r_top) * np.tan(np.pi / n) * 1.08
    out = []
    for i in range(n):
        phi = 2 * np.pi * i / n
        lift = t / 2 * abs(np.sin(beta))  # keeps the tilted box's lower corner above z0
        pos = (r_mid * np.cos(phi), r_mid * np.sin(phi), 0.5 * (z0 + z1) + lift)
        out.append(Geom("box", (t / 2, half_w, half_h), pos, quat_from_matrix(_rz(phi) @ _ry(beta)), mat, **kw))
    return out


def _ring_capsules(R: float, r: float, z: float, n: int, mat: str, **kw) -> list[Geom]:
    pts = [(R * np.cos(2 * np.pi * i / n), R * np.sin(2 * np.pi * i / n), z) for i in range(n + 1)]
    return [capsule_between(pts[i], pts[i + 1], r, material=mat, **kw) for i in range(n)]


def cup(v) -> Part:
    r, h, t, taper, gap = v.dim("radius"), v.dim("height"), v.dim("wall"), v.dim("taper"), v.dim("handle_gap")
    r_top = r * taper
    geoms = [Geom("cylinder", (r - t * 0.5, t / 2), (0, 0, t / 2), material=M1)]
    geoms += _ring_wall(r, r_top, 0.0, h, t, 16, M1)
    hr = v.dim("handle_radius")
    wall_x = lambda z: r + (r_top - r) * z / h  # noqa: E731  outer wall radius at height z
    z_lo, z_hi = 0.25 * h, 0.78 * h
    bar_x = max(wall_x(z_lo), wall_x(z_hi)) + gap + hr
    geoms += [capsule_between((bar_x, 0, z_lo), (bar_x, 0, z_hi), hr, material=M2),
              capsule_between((wall_x(z_lo) - t, 0, z_lo), (bar_x, 0, z_lo), hr, material=M2),
              capsule_between((wall_x(z_hi) - t, 0, z_hi), (bar_x, 0, z_hi), hr, material=M2)]
    zm = 0.5 * h
    sites = {"body": ((-wall_x(zm), 0, zm), UP, (-1, 0, 0)),
             "handle": ((bar_x + hr, 0, 0.5 * (z_lo + z_hi)), UP, (1, 0, 0)),
             "rim": ((-(r_top - t / 2), 0, h), (0, 1, 0), UP)}
    return Part(geoms, v.mass, sites)


def container(v) -> Part:
    """Pot or jar: a hollow container to stir in, optionally with two side loop handles."""
    r, h, t, taper = v.dim("radius"), v.dim("height"), v.dim("wall"), v.dim("taper")
    geoms = [Geom("cylinder", (r - t * 0.5, t / 2), (0, 0, t / 2), material=M1)]
    geoms += _ring_wall(r, r * taper, 0.0, h, t, 20, M1)
    if v.shape == "pot":
        hr, z = 0.006, 0.8 * h
        rt = r * taper
        for s in (1, -1):
            a, b = (0, s * (rt - t), z), (0, s * (rt + 0.03), z)
            geoms += [capsule_between((-0.03, a[1], z), (-0.03, b[1], z), hr, material=M2),
                      capsule_between((0.03, a[1], z), (0.03, b[1], z), hr, material=M2),
                      capsule_between((-0.03, b[1], z), (0.03, b[1], z), hr, material=M2)]
    zm = 0.5 * h
    sites = {"body": ((-(r + (r * taper - r) * zm / h), 0, zm), UP, (-1, 0, 0)),
             "rim": ((-(r * taper - t / 2), 0, h), (0, 1, 0), UP)}
    return Part(geoms, v.mass, sites)


def drawer(v) -> Part:
    W, D, H, th = v.dim("width"), v.dim("depth"), v.dim("height"), 0.012
    wood = dict(material=M1)
    shell = [Geom("box", (D / 2, W / 2, th / 2), (0, 0, th / 2), **wood),
             Geom("box", (D / 2, W / 2, th / 2), (0, 0, H - th / 2), **wood),
             Geom("box", (D / 2, th / 2, H / 2), (0, W / 2 - th / 2, H / 2), **wood),
             Geom("box", (D / 2, th / 2, H / 2), (0, -W / 2 + th / 2, H / 2), **wood),
             Geom("box", (th / 2, W / 2, H / 2), (D / 2 - th / 2, 0, H / 2), **wood)]
    # the drawer box, in its own frame (origin at the front panel's centre, front facing -x)
    gap = 0.003
    dw, dd, dh = W / 2 - th - gap, (D - 2 * th) / 2, (H - 2 * th - 2 * gap) / 2
    t2 = 0.008
    box = [Geom("box", (t2 / 2, W / 2 - th / 2, H / 2 - th / 2), (0, 0, 0), **wood),  # front panel
           Geom("box", (dd, dw, t2 / 2), (dd, 0, -dh + t2 / 2), **wood),
           Geom("box", (dd, t2 / 2, dh * 0.8), (dd, dw - t2 / 2, -dh * 0.2), **wood),
           Geom("box", (dd, t2 / 2, dh * 0.8), (dd, -dw + t2 / 2, -dh * 0.2), **wood),
           Geom("box", (t2 / 2, dw, dh * 0.8), (2 * dd, 0, -dh * 0.2), **wood)]
    hr, hl, so = v.dim("handle_radius"), v.dim("handle_length"), 0.025  # handle bar, stand-off from the panel
    x_bar = -t2 / 2 - so
    if v.shape == "bar":
        box.append(capsule_between((x_bar, -hl / 2, 0), (x_bar, hl / 2, 0), hr, material=M2))
    else:  # a rectangular pull
        box.append(Geom("box", (hr, hl / 2, hr * 1.4), (x_bar, 0, 0), material=M2))
    for s in (1, -1):
        box.append(capsule_between((-t2 / 2, s * hl * 0.4, 0), (x_bar, s * hl * 0.4, 0), hr * 0.7, material=M2))
    sites = {"handle": ((x_bar - hr, 0, 0), (0, 1, 0), (-1, 0, 0)), "body": ((-t2 / 2, 0, dh * 0.6), (0, 1, 0), (-1, 0, 0))}
    opening = v.dim("initial_opening")
    joint = dict(type="slide", axis=(-1, 0, 0), range=(0.0, 2 * dd - 0.03), ref=opening, damping=3.0,
                 frictionloss=0.5, armature=0.01)
    front = (-D / 2 + t2 / 2 - opening, 0.0, H / 2)
    child = Part(box, v.mass, sites)
    return Part(shell, 3.0, {"cabinet": ((0, 0, H), (1, 0, 0), UP)}, [("drawer", front, joint, child)], fixed=True)


def _handle_sites(end, neck, r) -> dict:
    """Sites along a straight handle from ``end`` (free end) to ``neck`` (towards the tool head)."""
    end, neck = np.asarray(end, float), np.asarray(neck, float)
    d = (neck - end) / np.linalg.norm(neck - end)
    up = np.cross(d, np.cross(UP, d))
    up = up / np.linalg.norm(up)  # normal to the handle, pointing up
    on = lambda f: tuple(end + f * (neck - end) + r * up)  # noqa: E731
    return {"handle": (on(0.5), tuple(d), tuple(up)), "handle_back": (on(0.2), tuple(d), tuple(up)),
            "handle_top": (tuple(end - r * d), tuple(up), tuple(-d))}


def spoon(v) -> Part:
    L, hr = v.dim("length"), v.dim("handle_radius")
    a, b, c = v.dim("bowl_length") / 2, v.dim("bowl_width") / 2, 0.006
    bx = L / 2 - a
    geoms = [Geom("ellipsoid", (a, b, c), (bx, 0, c), material=M1)]
    n = 10  # the bowl's lip keeps a grape in the bowl
    pts = [(bx + a * 0.92 * np.cos(2 * np.pi * i / n), b * 0.92 * np.sin(2 * np.pi * i / n), 2 * c) for i in range(n + 1)]
    geoms += [capsule_between(pts[i], pts[i + 1], 0.0025, material=M1) for i in range(n)]
    neck = (bx - a * 0.95, 0.0, 2 * c + 0.012)
    end = (-L / 2 + hr, 0.0, hr)
    geoms.append(capsule_between((bx - a * 0.7, 0, c * 1.5), neck, hr * 0.8, material=M1))
    geoms.append(capsule_between(end, neck, hr, material=M2))
    sites = _handle_sites(end, neck, hr)
    sites["body"] = ((bx, 0, 2 * c), (1, 0, 0), UP)
    return Part(geoms, v.mass, sites)


def spatula(v) -> Part:
    L, hr = v.dim("length"), v.dim("handle_radius")
    bl, bw, bt = v.dim("blade_length") / 2, v.dim("blade_width") / 2, 0.0025
    bx = L / 2 - bl
    geoms = [Geom("box", (bl, bw, bt / 2), (bx, 0, bt / 2), material=M1)]
    neck = (bx - bl - 0.03, 0.0, 0.03)
    end = (-L / 2 + hr, 0.0, hr)
    geoms.append(capsule_between((bx - bl * 0.6, 0, 0.0045), neck, 0.004, material=M1))
    geoms.append(capsule_between(end, neck, hr, material=M2))
    sites = _handle_sites(end, neck, hr)
    del sites["handle_top"], sites["handle_back"]
    sites["body"] = ((bx, 0, bt), (1, 0, 0), UP)
    return Part(geoms, v.mass, sites)


def grapes(v) -> Part:
    """A rigid bunch (one body): grapes are spheres of one body, so none can fall off on its own."""
    rg = v.dim("grape_radius")
    grip = dict(material=M1, condim=6, friction=(1.0, 0.01, 0.002))
    if v.shape == "single":
        geoms = [Geom("sphere", (rg,), (0, 0, rg), material=M1, condim=6, friction=(1.0, 0.02, 0.01))]
        top = 2 * rg  # the tiny stem is visual only so the grape rests symmetric and does not roll
        stem = [capsule_between((0, 0, top - 0.002), (0.006, 0, top + 0.006), 0.0015, material=M2, collide=False)]
        sites = {"stem": ((0.006, 0, top + 0.0075), (1, 0, 0), UP), "body": ((0, 0, top), (1, 0, 0), UP)}
        return Part(geoms + stem, v.mass, sites)
    nx, ny = int(v.dim("rows")), int(v.dim("cols"))
    d = 2 * rg * 0.98
    geoms = []
    for i in range(nx):
        for j in range(ny - (i % 2)):
            geoms.append(Geom("sphere", (rg,), ((i - (nx - 1) / 2) * d * 0.87, (j - (ny - 1) / 2 + 0.5 * (i % 2)) * d, rg), **grip))
    for i in range(nx - 1):
        for j in range(ny - 1):
            geoms.append(Geom("sphere", (rg,), ((i + 0.5 - (nx - 1) / 2) * d * 0.87, (j - (ny - 2) / 2) * d, rg * 2.4), **grip))
    top = rg * 3.4 + 0.004
    x0 = -(nx - 1) / 2 * d * 0.87
    sr = 0.0035
    stem = [capsule_between((x0 - rg - 0.035, 0, top), (-x0, 0, top), sr, material=M2),
            capsule_between((0, 0, top), (0, 0, rg * 2.4), 0.002, material=M2)]
    sx = x0 - rg - 0.018
    ty = -(ny - 2) / 2 * d  # a grape of the top layer carries the "body" site
    sites = {"stem": ((sx, 0, top + sr), (1, 0, 0), UP),
             "body": (((0.5 - (nx - 1) / 2) * d * 0.87, ty, rg * 3.4), (1, 0, 0), UP)}
    return Part(geoms + stem, v.mass, sites)


def lemon(v) -> Part:
    a, b = v.dim("half_length"), v.dim("radius")
    roll = dict(condim=6, friction=(1.0, 0.01, 0.003))
    geoms = [Geom("ellipsoid", (a, b, b), (0, 0, b), material=M1, **roll)]
    for s in (1, -1):
        geoms.append(Geom("sphere", (0.006,), (s * (a - 0.002), 0, b), material=M1, **roll))
    return Part(geoms, v.mass, {"top": ((0, 0, 2 * b), (1, 0, 0), UP), "body": ((0, 0, 2 * b), (1, 0, 0), UP)})


def bagel(v) -> Part:
    R, r = v.dim("ring_radius"), v.dim("tube_radius")
    geoms = _ring_capsules(R, r, r, 12, M1, condim=4)
    return Part(geoms, v.mass, {"body": ((R, 0, 2 * r), (0, 1, 0), UP), "edge": ((-R - r, 0, r), UP, (-1, 0, 0))})


def juicer(v) -> Part:
    R, h, cone_r, cone_h = v.dim("radius"), 0.012, v.dim("cone_radius"), v.dim("cone_height")
    geoms = [Geom("cylinder", (R, h / 2), (0, 0, h / 2), material=M1)]
    geoms += _ring_capsules(R - 0.006, 0.006, h + 0.004, 16, M1)
    n = 12  # the reamer: a ribbed cone generated as a convex mesh (rib count n)
    ring = [(cone_r * np.cos(2 * np.pi * i / n), cone_r * np.sin(2 * np.pi * i / n), 0.0) for i in range(n)]
    tip = [(0.005 * np.cos(2 * np.pi * i / 6), 0.005 * np.sin(2 * np.pi * i / 6), cone_h) for i in range(6)]
    verts = np.array(ring + tip)  # a truncated cone with a small flat top
    geoms.append(Geom("mesh", (), (0, 0, h), material=M2, mesh="{P}reamer", mesh_vertices=verts))
    return Part(geoms, v.mass, {"body": ((0, 0, h + cone_h), (1, 0, 0), UP), "dish": ((R * 0.6, 0, h), (1, 0, 0), UP)})


BUILDERS = {"cup": cup, "pot": container, "drawer": drawer, "spoon": spoon, "spatula": spatula,
            "grapes": grapes, "lemon": lemon, "bagel": bagel, "juicer": juicer}

# the quaternion helper is re-exported for builders that orient capsules along arbitrary axes
__all__ = ["Part", "BUILDERS", "quat_z_to"]
