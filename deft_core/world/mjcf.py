"""Small MJCF (MuJoCo XML) helpers shared by the procedural world's asset builders.

Geometry is described first as plain :class:`Geom` records (so sizes, bounding boxes and masses can be
computed without MuJoCo) and turned into XML at the end. Units: metres, kilograms, radians.
Quaternions are ``(w, x, y, z)`` like MuJoCo and :mod:`deft_core.geometry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

import numpy as np

from deft_core.geometry import matrix_to_quaternion, quaternion_to_matrix

IDENTITY_QUAT = (1.0, 0.0, 0.0, 0.0)
#: every model that includes these snippets must use radians (joint ranges, ctrl ranges are in rad)
COMPILER = '<compiler angle="radian" autolimits="true"/>'


def fmt(values) -> str:
    """Space-separated numbers with enough precision for sub-micrometre geometry."""
    return " ".join(f"{float(v):.9g}" for v in np.atleast_1d(np.asarray(values, dtype=np.float64)))


def attrs(**kw) -> str:
    """XML attributes from keyword arguments; ``None`` values are skipped, tuples/arrays formatted."""
    out = []
    for key, value in kw.items():
        if value is None:
            continue
        if isinstance(value, (tuple, list, np.ndarray)):
            value = fmt(value)
        elif isinstance(value, float):
            value = f"{value:.9g}"
        out.append(f"{key.rstrip('_')}={quoteattr(str(value))}")
    return " ".join(out)


def yaw_quat(yaw: float) -> tuple[float, float, float, float]:
    """Quaternion of a rotation by ``yaw`` radians about +z."""
    return (float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2)))


def quat_from_matrix(R: np.ndarray) -> tuple[float, float, float, float]:
    q = matrix_to_quaternion(np.asarray(R, dtype=np.float64))
    return tuple(float(v) for v in q)


def frame_from_xz(x_axis, z_axis) -> np.ndarray:
    """Rotation matrix (columns x, y, z) whose z is ``z_axis`` and whose x is ``x_axis`` made orthogonal to z."""
    z = np.asarray(z_axis, dtype=np.float64)
    z = z / np.linalg.norm(z)
    x = np.asarray(x_axis, dtype=np.float64)
    x = x - z * (x @ z)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError(f"x axis {x_axis} is parallel to z axis {z_axis}")
    x = x / np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def quat_z_to(direction) -> tuple[float, float, float, float]:
    """Quaternion rotating +z onto ``direction`` (minimal rotation); used for capsules/cylinders."""
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    z = np.array([0.0, 0.0, 1.0])
    c = float(z @ d)
    if c < -1 + 1e-12:
        return (0.0, 1.0, 0.0, 0.0)
    axis = np.cross(z, d)
    q = np.array([1.0 + c, *axis])
    q = q / np.linalg.norm(q)
    return tuple(float(v) for v in q)


@dataclass
class Geom:
    """One MuJoCo geom. ``size`` follows MuJoCo's per-type meaning (half-sizes, radius, half-length).

    ``mass`` is filled in by :func:`assign_masses`; ``collide=False`` makes a visual-only geom
    (group 2, no contacts, no mass).
    """

    type: str
    size: tuple
    pos: tuple = (0.0, 0.0, 0.0)
    quat: tuple = IDENTITY_QUAT
    material: str | None = None
    name: str | None = None
    friction: tuple | None = None
    condim: int | None = None
    collide: bool = True
    mesh: str | None = None
    mesh_vertices: np.ndarray | None = None  #: for type "mesh": vertices in the mesh frame (bbox/volume)
    mass: float | None = None
    extra: dict = field(default_factory=dict)

    def local_half_extents(self) -> np.ndarray:
        s = np.asarray(self.size, dtype=np.float64)
        if self.type == "box" or self.type == "ellipsoid":
            return s[:3]
        if self.type == "sphere":
            return np.repeat(s[0], 3)
        if self.type == "capsule":
            return np.array([s[0], s[0], s[1] + s[0]])
        if self.type == "cylinder":
            return np.array([s[0], s[0], s[1]])
        if self.type == "mesh":
            return np.abs(self.mesh_vertices).max(axis=0)
        raise ValueError(f"unsupported geom type {self.type!r}")

    def aabb(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounding box (lo, hi) in the parent body frame (conservative for rotated shapes)."""
        R = quaternion_to_matrix(np.asarray(self.quat, dtype=np.float64))
        p = np.asarray(self.pos, dtype=np.float64)
        if self.type == "mesh":
            v = np.asarray(self.mesh_vertices, dtype=np.float64) @ R.T + p
            return v.min(axis=0), v.max(axis=0)
        if self.type in ("capsule", "cylinder"):
            r, hl = float(self.size[0]), float(self.size[1])
            a = R[:, 2]
            if self.type == "capsule":  # exact: segment end points ± radius
                ext = np.abs(a) * hl + r
            else:  # exact: axis extent + disc extent
                ext = np.abs(a) * hl + r * np.sqrt(np.clip(1.0 - a * a, 0.0, 1.0))
            return p - ext, p + ext
        r = np.abs(R) @ self.local_half_extents()
        return p - r, p + r

    def volume(self) -> float:
        s = np.asarray(self.size, dtype=np.float64)
        if self.type == "box":
            return float(8 * s[0] * s[1] * s[2])
        if self.type == "sphere":
            return float(4 / 3 * np.pi * s[0] ** 3)
        if self.type == "ellipsoid":
            return float(4 / 3 * np.pi * s[0] * s[1] * s[2])
        if self.type == "capsule":
            return float(np.pi * s[0] ** 2 * 2 * s[1] + 4 / 3 * np.pi * s[0] ** 3)
        if self.type == "cylinder":
            return float(np.pi * s[0] ** 2 * 2 * s[1])
        if self.type == "mesh":  # volume of the bounding box, scaled to a convex-hull-ish estimate
            return float(np.prod(2 * self.local_half_extents()) * 0.5)
        raise ValueError(f"unsupported geom type {self.type!r}")

    def xml(self) -> str:
        kw = dict(name=self.name, type=self.type, pos=self.pos, material=self.material, friction=self.friction,
                  condim=self.condim, mesh=self.mesh)
        if self.type != "mesh":
            kw["size"] = self.size
        if tuple(self.quat) != IDENTITY_QUAT:
            kw["quat"] = self.quat
        if self.collide:
            kw["mass"] = self.mass
        else:
            kw.update(contype=0, conaffinity=0, group=2, mass=0.0)
        kw.update(self.extra)
        return f"<geom {attrs(**kw)}/>"


def capsule_between(p1, p2, radius: float, **kw) -> Geom:
    """A capsule whose segment runs from ``p1`` to ``p2`` (body frame)."""
    p1, p2 = np.asarray(p1, dtype=np.float64), np.asarray(p2, dtype=np.float64)
    d = p2 - p1
    return Geom("capsule", (radius, float(np.linalg.norm(d)) / 2), tuple((p1 + p2) / 2), quat_z_to(d), **kw)


def assign_masses(geoms: list[Geom], total_mass: float) -> None:
    """Distribute ``total_mass`` (kg) over the colliding geoms in proportion to their volume."""
    solid = [g for g in geoms if g.collide]
    if not solid:
        raise ValueError("a body needs at least one colliding geom to carry mass")
    vol = np.array([g.volume() for g in solid])
    for g, v in zip(solid, vol):
        g.mass = float(total_mass * v / vol.sum())


def aabb_of(geoms: list[Geom]) -> tuple[np.ndarray, np.ndarray]:
    """Union of the geoms' bounding boxes (lo, hi)."""
    boxes = [g.aabb() for g in geoms]
    return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)


def site_xml(name: str, pos, x_axis, z_axis, size: float = 0.006, rgba=(1.0, 0.2, 0.2, 0.0)) -> str:
    """A site at ``pos`` whose frame has the given z axis and x axis (made orthogonal). Invisible by default."""
    R = frame_from_xz(x_axis, z_axis)
    return f"<site {attrs(name=name, pos=pos, quat=quat_from_matrix(R), size=(size,), rgba=rgba, group=4)}/>"
