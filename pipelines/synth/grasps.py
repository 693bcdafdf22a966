"""Task-dependent human grasps for the synthetic renderer.

A grasp is synthesised on the compiled scene, from the task object's grasp-region site:

1. the **approach normal** ``n`` is the site's z axis (outward surface normal; some tasks override it,
   e.g. the end of a spoon handle is approached from above); the palm faces ``−n``;
2. the **forearm direction** lies in the plane ⟂ ``n``: across a bar (cup body/handle, drawer handle),
   along the tool's axis away from its head (spoon, spatula), or towards the person's body;
   per-clip noise rolls it about ``n`` and tilts ``n``;
3. the wrist backs off along ``n`` until the open hand touches nothing, then each finger closes joint by
   joint (proximal first) along the task's grasp type until it touches the object or the table.

So the contact location, the wrist rotation and the finger pose all depend on the object and the task.
Finger poses are MANO anatomical angles ``[twist, spread, bend]`` (:mod:`deft_core.mano`).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from deft_core import mano
from deft_core.geometry import axis_angle_to_matrix, matrix_to_axis_angle

# anatomical-angle rows: index 0-2, middle 3-5, pinky 6-8, ring 9-11, thumb 12-14
_FINGER_ROWS = {"index": (0, 1, 2), "middle": (3, 4, 5), "pinky": (6, 7, 8), "ring": (9, 10, 11), "thumb": (12, 13, 14)}


def hand_angles(index=(0, 0, 0), middle=(0, 0, 0), ring=(0, 0, 0), pinky=(0, 0, 0), thumb=(0, 0, 0),
                thumb_spread=0.0, spread=(0.0, 0.0, 0.0, 0.0)) -> np.ndarray:
    """(15, 3) anatomical angles from per-finger bends (MCP, PIP, DIP; thumb CMC, MCP, IP), the thumb's
    CMC spread and the MCP spreads of index, middle, ring, pinky (radians; positive spread = ulnar)."""
    a = np.zeros((15, 3))
    for name, bends in (("index", index), ("middle", middle), ("ring", ring), ("pinky", pinky), ("thumb", thumb)):
        a[list(_FINGER_ROWS[name]), 2] = bends
    a[12, 1] = thumb_spread
    for name, s in zip(("index", "middle", "ring", "pinky"), spread):
        a[_FINGER_ROWS[name][0], 1] = s
    return a


@dataclass(frozen=True)
class GraspType:
    name: str
    open: np.ndarray    #: (15, 3) anatomical angles the closure starts from (flat-ish, thumb abducted)
    closed: np.ndarray  #: (15, 3) the fully closed limit of the closure
    anchor: str         #: "palm" (palm centre on the site) or "pinch" (where thumb and index tips meet when closed)
    depth: float = 0.0  #: the anchor aims this far (m) below the surface, along −normal (thin handles)


_OPEN = hand_angles((0.1, 0.1, 0.05), (0.1, 0.1, 0.05), (0.12, 0.1, 0.05), (0.15, 0.1, 0.05), (0.1, 0.05, 0.05),
                    thumb_spread=-0.35, spread=(-0.08, 0.0, 0.06, 0.14))
GRASP_TYPES: dict[str, GraspType] = {g.name: g for g in [
    GraspType("power_wrap", _OPEN, hand_angles((1.2, 1.5, 1.0), (1.25, 1.5, 1.0), (1.3, 1.5, 1.0), (1.35, 1.5, 1.0),
                                               (0.9, 0.7, 0.8), thumb_spread=0.1), "palm"),
    GraspType("hook", hand_angles((0.05, 0.3, 0.2), (0.05, 0.3, 0.2), (0.1, 0.3, 0.2), (0.1, 0.3, 0.2), (0.2, 0.1, 0.1),
                                  thumb_spread=-0.1),
              hand_angles((0.7, 1.9, 1.3), (0.7, 1.9, 1.3), (0.8, 1.9, 1.3), (0.8, 1.9, 1.3), (0.6, 0.6, 0.6)), "palm"),
    GraspType("pinch", hand_angles((0.25, 0.2, 0.1), (0.35, 0.4, 0.2), (0.9, 1.3, 0.8), (1.0, 1.4, 0.8), (0.4, 0.1, 0.1),
                                   thumb_spread=-0.4),
              hand_angles((1.1, 1.2, 0.6), (1.2, 1.3, 0.7), (1.1, 1.5, 0.9), (1.2, 1.5, 0.9), (1.2, 0.8, 0.9)), "pinch", 0.006),
    GraspType("tripod", hand_angles((0.3, 0.2, 0.1), (0.3, 0.25, 0.1), (0.6, 0.9, 0.6), (0.7, 1.0, 0.6), (0.3, 0.1, 0.1),
                                    thumb_spread=-0.4),
              hand_angles((1.0, 1.0, 0.5), (1.1, 1.2, 0.6), (1.0, 1.4, 0.9), (1.1, 1.4, 0.9), (1.1, 0.8, 0.8)), "pinch", 0.006),
    GraspType("spherical", hand_angles((0.3, 0.2, 0.1), (0.3, 0.2, 0.1), (0.3, 0.2, 0.1), (0.35, 0.2, 0.1), (0.4, 0.1, 0.1),
                                       thumb_spread=-0.5, spread=(-0.2, -0.05, 0.12, 0.3)),
              hand_angles((1.2, 1.4, 0.9), (1.2, 1.4, 0.9), (1.2, 1.4, 0.9), (1.2, 1.4, 0.9), (1.1, 0.8, 0.8),
                          thumb_spread=-0.2, spread=(-0.2, -0.05, 0.12, 0.3)), "palm"),
]}


@dataclass(frozen=True)
class TaskGrasp:
    """How a human grasps for one task: grasp type, approach normal, forearm direction and the object
    yaw that presents the grasp region to an approaching right hand."""

    grasp: str
    normal: str = "site"          #: "site" (site z), "up" (world up), or "site+up" (site z tilted 55° up)
    forearm: str = "bar_perp"     #: "bar_perp" (⟂ the site's x axis), "axis" (−object x), "body"
    present: tuple | None = None  #: world direction (human frame, right hand) that ``present_vec`` should face
    present_vec: str = "normal"   #: "normal" (site normal, horizontal part) or "axis" (−object x)


TASK_GRASPS: dict[str, TaskGrasp] = {
    "pick_cup": TaskGrasp("power_wrap", present=(1.0, -0.35, 0.0)),
    "pour_cup": TaskGrasp("hook", present=(1.0, -0.35, 0.0)),
    "open_drawer": TaskGrasp("hook", normal="site+up", present=(0.0, -1.0, 0.0)),  # overhand, fingers over the bar
    "pick_spoon": TaskGrasp("pinch", forearm="axis", present=(0.45, -1.0, 0.0), present_vec="axis"),
    "scoop_grape": TaskGrasp("tripod", forearm="axis", present=(0.45, -1.0, 0.0), present_vec="axis"),
    "stir_spoon": TaskGrasp("pinch", normal="up", forearm="axis", present=(0.45, -1.0, 0.0), present_vec="axis"),
    "pick_grape": TaskGrasp("pinch", forearm="body"),
    "flip_bagel": TaskGrasp("tripod", forearm="axis", present=(0.45, -1.0, 0.0), present_vec="axis"),
    "squeeze_lemon": TaskGrasp("spherical", forearm="body"),
}
BODY_DIRECTION = np.array([0.3, -1.0, 0.5])  #: wrist → shoulder of the right arm, human frame (x right, y forward, z up)


def side_vec(v, side: str) -> np.ndarray:
    """Mirror a human-frame direction for the left hand (x ↦ −x)."""
    v = np.asarray(v, dtype=np.float64)
    return v * [-1.0, 1.0, 1.0] if side == "left" else v


def angles_to_pose45(angles: np.ndarray, side: str) -> np.ndarray:
    """Anatomical angles (defined on the right hand) → 45-d pose in the acting hand's MANO convention."""
    pose = mano.anatomical_to_pose(angles)
    return mano.mirror_pose(pose) if side == "left" else pose


def wrist_rotation(normal: np.ndarray, forearm: np.ndarray, side: str) -> np.ndarray:
    """World rotation of the hand's canonical frame: dorsal (+y) = ``normal`` (palm faces −normal),
    forearm direction (+x right hand, −x left hand) = ``forearm`` made ⟂ ``normal``."""
    y = normal / np.linalg.norm(normal)
    f = forearm - (forearm @ y) * y
    if np.linalg.norm(f) < 1e-6:
        raise ValueError(f"forearm direction {forearm} is parallel to the approach normal {normal}")
    x = f / np.linalg.norm(f) * (-1.0 if side == "left" else 1.0)
    return np.stack([x, y, np.cross(x, y)], axis=1)


class GraspSynth:
    """Closes a posed hand on the scene. ``ctx`` provides ``model``, ``data``, ``poser``, ``side`` and
    ``stop_geoms`` (geom ids a finger may touch: the object, supports, the table)."""

    def __init__(self, model, data, poser, side: str, stop_geoms: np.ndarray, target_geoms: np.ndarray):
        self.model, self.data, self.poser, self.side = model, data, poser, side
        self.stop = np.zeros(model.ngeom, bool)
        self.stop[np.asarray(stop_geoms, int)] = True
        self.target = np.zeros(model.ngeom, bool)
        self.target[np.asarray(target_geoms, int)] = True
        bid = {n: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, poser.prefix + n) for n in mano.JOINT_NAMES}
        self.body_geoms = {n: np.flatnonzero(model.geom_bodyid == b) for n, b in bid.items()}

    def _pose(self, R, p, angles):
        rot = matrix_to_axis_angle(R)
        self.poser.set_pose(self.data, np.r_[rot, angles_to_pose45(angles, self.side)], p)
        mujoco.mj_collision(self.model, self.data)

    def _touching(self, geoms: np.ndarray) -> bool:
        n = self.data.ncon
        if n == 0:
            return False
        pairs = self.data.contact.geom[:n]
        hit = np.isin(pairs, geoms)
        return bool(np.any((hit[:, 0] & self.stop[pairs[:, 1]]) | (hit[:, 1] & self.stop[pairs[:, 0]])))

    def anchor_point(self, grasp: GraspType) -> np.ndarray:
        """The grasp's anchor in the hand's canonical frame (metres, wrist at the origin)."""
        if grasp.anchor == "pinch":
            kp = mano.mano_joint_positions(np.r_[np.zeros(3), mano.anatomical_to_pose(grasp.closed)], np.zeros(3))
            a = 0.5 * (kp[16] + kp[17])
        else:  # palm surface: centre of wrist and the four MCPs, pushed to the palm side
            kp = mano.mano_joint_positions(np.r_[np.zeros(3), mano.anatomical_to_pose(grasp.open)], np.zeros(3))
            a = kp[[0, 1, 4, 7, 10]].mean(0) * [0.9, 1.0, 1.0] + np.array([0.0, -0.016, 0.0])
        return a * [-1.0, 1.0, 1.0] if self.side == "left" else a

    def _search(self, place, angles, geoms, stop, hi: float) -> float:
        """Smallest offset in [0, hi] at which ``geoms`` touch nothing in ``stop`` (bisection)."""
        saved, self.stop = self.stop, stop
        try:
            self._pose(*place(0.0), angles)
            if not self._touching(geoms):
                return 0.0
            self._pose(*place(hi), angles)
            if self._touching(geoms):
                raise RuntimeError(f"the open hand still touches the scene when moved {hi:.2f} m away")
            lo = 0.0
            for _ in range(14):
                mid = 0.5 * (lo + hi)
                self._pose(*place(mid), angles)
                lo, hi = (mid, hi) if self._touching(geoms) else (lo, mid)
            return hi + 0.0005
        finally:
            self.stop = saved

    def synthesise(self, grasp: GraspType, site_pos, R: np.ndarray, table_geom: int, max_backoff: float = 0.12):
        """Place and close the hand: back off along the normal until the open hand clears the object,
        lift it until it clears the table, then close each finger joint by joint until it touches the
        object or the table. Returns (wrist_pos, angles (15, 3), standoff m)."""
        anchor = self.anchor_point(grasp)
        normal = R[:, 1]
        all_geoms = np.concatenate(list(self.body_geoms.values()))
        base = site_pos - normal * grasp.depth - R @ anchor
        no_table = self.target.copy()  # back off from the grasped object only (distractors stand apart)
        only_table = np.zeros_like(self.stop)
        only_table[table_geom] = True
        d = self._search(lambda x: (R, base + normal * x), grasp.open, all_geoms, no_table, max_backoff)
        wrist = base + normal * d
        up = np.array([0.0, 0.0, 1.0])
        dz = self._search(lambda x: (R, wrist + up * x), grasp.open, all_geoms, only_table, 0.15)
        wrist = wrist + up * dz
        angles = grasp.open.copy()
        for finger, rows in _FINGER_ROWS.items():
            names = [mano.JOINT_NAMES[r + 1] for r in rows]
            for level in range(3):
                moving = list(rows[level:])
                geoms = np.concatenate([self.body_geoms[n] for n in names[level:]])
                start = angles[moving].copy()

                def at(s):
                    a = angles.copy()
                    a[moving] = start + s * (grasp.closed[moving] - start)
                    return a

                self._pose(R, wrist, at(1.0))
                if not self._touching(geoms):
                    angles = at(1.0)
                    continue
                slo, shi = 0.0, 1.0
                for _ in range(9):
                    mid = 0.5 * (slo + shi)
                    self._pose(R, wrist, at(mid))
                    slo, shi = (mid, shi) if not self._touching(geoms) else (slo, mid)
                angles[rows[level]] = at(shi)[rows[level]]  # freeze this joint just past first touch
                angles[moving[1:]] = at(slo)[moving[1:]]
        # if only the table was reached, slide the closed hand in along −normal until it touches the object
        saved, self.stop = self.stop, self.target
        hand = self.poser.hand_geom_ids  # the hand proper: forearm contacts are not grasp contacts
        try:
            self._pose(R, wrist, angles)
            if not self._touching(hand):
                lo, hi = 0.0, 0.04
                self._pose(R, wrist - normal * hi, angles)
                if self._touching(hand):
                    for _ in range(12):
                        mid = 0.5 * (lo + hi)
                        self._pose(R, wrist - normal * mid, angles)
                        lo, hi = (lo, mid) if self._touching(hand) else (mid, hi)
                    wrist = wrist - normal * hi
                    d -= hi
        finally:
            self.stop = saved
        return wrist, angles, d


def noisy_rotation(R: np.ndarray, rng: np.random.Generator, roll_sigma: float, tilt_sigma: float) -> np.ndarray:
    """Roll ``R`` about its own y (the approach normal) and tilt it about its x and z (radians, Gaussian)."""
    r = np.array([rng.normal(0, tilt_sigma), rng.normal(0, roll_sigma), rng.normal(0, tilt_sigma)])
    return R @ axis_angle_to_matrix(r)
