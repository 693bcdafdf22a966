"""Safety limits applied inside the drivers (DESIGN.md §6): every arm and hand target passes through
here before it reaches a controller, and the result says what was actually commanded.

Arm (robot base frame, metres / radians):

1. the wrist position is clamped into the **workspace box** ``[lower, upper]``, whose floor is raised to
   ``table_z + min_clearance_m`` so the wrist never goes below the table plane;
2. the translation from the current wrist position is limited to ``max_step_m`` per command and the
   rotation to ``max_rot_step_rad`` (the target is approached along the straight line / geodesic);
3. the Cartesian speed is capped at ``max_speed_m_s``.

Hand: joint targets (16, rad, 0 = flat) are clipped to ``[lower, upper]``; non-finite targets are rejected.
Motor current limits are hardware settings of the hand backend (e.g. Dynamixel Goal Current).

Every clamp is logged (logger ``robot.safety``) with the original and the clamped value: clamps of the
workspace box / table plane and of the hand's joint limits at WARNING (the caller asked for something
unsafe); the expected per-command step, rotation-step and speed limiting at DEBUG (long moves are
always split this way, so it is not news).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np

from deft_core.checks import is_finite_real
from deft_core.geometry import axis_angle_to_matrix, matrix_to_axis_angle

log = logging.getLogger(__name__)


def _vec(value, n: int, name: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64).reshape(-1)
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be {n} finite numbers, got {value!r}")
    return a


@dataclass
class ArmSafety:
    """Limits for the wrist. Defaults suit an xArm6 in front of a table at z = 0 (base frame)."""

    workspace_lower: np.ndarray = field(default_factory=lambda: np.array([0.15, -0.45, 0.0]))
    workspace_upper: np.ndarray = field(default_factory=lambda: np.array([0.70, 0.45, 0.60]))
    table_z: float | None = 0.0
    min_clearance_m: float = 0.02
    max_step_m: float = 0.05
    max_rot_step_rad: float = 0.5
    max_speed_m_s: float = 0.25
    default_speed_m_s: float = 0.10

    def __post_init__(self) -> None:
        self.workspace_lower = _vec(self.workspace_lower, 3, "safety.workspace.lower")
        self.workspace_upper = _vec(self.workspace_upper, 3, "safety.workspace.upper")
        if np.any(self.workspace_lower >= self.workspace_upper):
            raise ValueError(f"safety.workspace: lower {self.workspace_lower.tolist()} must be below upper "
                             f"{self.workspace_upper.tolist()} on every axis")
        # every number is checked before it is used: a NaN table_z made floor_z ignore the table (max(z, nan)
        # is z), and a string clearance failed later with an unrelated TypeError
        for name in ("table_z", "min_clearance_m", "max_step_m", "max_rot_step_rad", "max_speed_m_s", "default_speed_m_s"):
            v = getattr(self, name)
            if name == "table_z" and v is None:
                continue
            if not is_finite_real(v):
                hint = (" (YAML reads 1e-2 as text: write 1.0e-2 or 0.01)"
                        if isinstance(v, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", v.strip()) else "")
                raise ValueError(f"safety.{name} must be a finite number, got {v!r}{hint}")
            if name != "table_z" and (v < 0 or (name != "min_clearance_m" and v == 0)):
                raise ValueError(f"safety.{name} must be positive, got {v!r}")
        floor = self.floor_z
        if floor >= self.workspace_upper[2]:
            raise ValueError(f"safety: the table plane + clearance ({floor:.3f} m) is above the workspace top "
                             f"({self.workspace_upper[2]:.3f} m)")
        if self.default_speed_m_s > self.max_speed_m_s:
            raise ValueError(f"safety.default_speed_m_s ({self.default_speed_m_s}) exceeds max_speed_m_s ({self.max_speed_m_s})")

    @property
    def floor_z(self) -> float:
        """Lowest allowed wrist z (m): the workspace floor raised to the table plane + clearance."""
        z = float(self.workspace_lower[2])
        if self.table_z is not None:
            z = max(z, float(self.table_z) + self.min_clearance_m)
        return z

    def clamp_position(self, p: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Clamp a wrist position (m, base frame) into the workspace box above the table."""
        p = _vec(p, 3, "wrist position")
        lower = self.workspace_lower.copy()
        lower[2] = self.floor_z
        out = np.clip(p, lower, self.workspace_upper)
        notes = []
        if out[2] > p[2] and self.table_z is not None and lower[2] > self.workspace_lower[2]:
            notes.append(f"table: z {p[2]:.4f} -> {out[2]:.4f} m (table {self.table_z:.3f} + clearance {self.min_clearance_m:.3f})")
        elif out[2] != p[2]:
            notes.append(f"workspace: z {p[2]:.4f} -> {out[2]:.4f} m")
        for i, axis in enumerate("xy"):
            if out[i] != p[i]:
                notes.append(f"workspace: {axis} {p[i]:.4f} -> {out[i]:.4f} m")
        return out, notes

    def limit(self, target, current, speed_m_s: float | None = None):
        """Apply every arm limit to ``target`` (a :class:`robot.base.Pose`) given the ``current`` wrist pose.
        Returns a :class:`robot.base.ArmCommand`; logs each clamp with original and clamped values
        (workspace/table at WARNING, step/rotation-step/speed limiting at DEBUG)."""
        from robot.base import ArmCommand, Pose

        pos, notes = self.clamp_position(target.position)
        step = pos - current.position
        dist = float(np.linalg.norm(step))
        if dist > self.max_step_m:
            limited = current.position + step * (self.max_step_m / dist)
            notes.append(f"step: {dist:.4f} m -> {self.max_step_m:.4f} m towards {np.round(pos, 4).tolist()}")
            pos = limited
        R = target.rotation
        rel = matrix_to_axis_angle(current.rotation.T @ target.rotation)
        angle = float(np.linalg.norm(rel))
        if angle > self.max_rot_step_rad:
            R = current.rotation @ axis_angle_to_matrix(rel * (self.max_rot_step_rad / angle))
            notes.append(f"rot_step: {angle:.4f} rad -> {self.max_rot_step_rad:.4f} rad")
        speed = self.default_speed_m_s if speed_m_s is None else float(speed_m_s)
        if not np.isfinite(speed) or speed <= 0:
            raise ValueError(f"speed_m_s must be positive, got {speed_m_s!r}")
        if speed > self.max_speed_m_s:
            notes.append(f"speed: {speed:.4f} -> {self.max_speed_m_s:.4f} m/s")
            speed = self.max_speed_m_s
        for n in notes:
            level = logging.WARNING if n.startswith(("table", "workspace")) else logging.DEBUG
            log.log(level, "arm target clamped: %s (requested position %s)", n, np.round(target.position, 4).tolist())
        return ArmCommand(requested=target, commanded=Pose(pos, R), speed_m_s=speed, clamps=tuple(notes))


@dataclass
class HandSafety:
    """Joint limits of the 16-joint hand (rad, 0 = flat). Defaults: the robot hand's limits
    (:func:`deft_core.retarget.hand_joint_limits`)."""

    lower: np.ndarray | None = None
    upper: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.lower is None or self.upper is None:
            from deft_core.retarget import hand_joint_limits

            lo, hi = hand_joint_limits()
            self.lower = lo if self.lower is None else self.lower
            self.upper = hi if self.upper is None else self.upper
        self.lower = _vec(self.lower, 16, "hand joint lower limits")
        self.upper = _vec(self.upper, 16, "hand joint upper limits")
        if np.any(self.lower > self.upper):
            bad = np.nonzero(self.lower > self.upper)[0].tolist()
            raise ValueError(f"hand joint limits: lower > upper for joints {bad}")

    def limit(self, joints):
        """Clip 16 joint targets (rad) to the limits → :class:`robot.base.HandCommand`."""
        from robot.base import HandCommand

        from deft_core.grasp import HAND_JOINT_NAMES

        q = np.asarray(joints, dtype=np.float64).reshape(-1)
        if q.shape != (16,):
            raise ValueError(f"a hand command has 16 joint angles (rad), got shape {np.shape(joints)}")
        if not np.all(np.isfinite(q)):
            raise ValueError(f"hand command has non-finite joints: {q.tolist()}")
        out = np.clip(q, self.lower, self.upper)
        notes = [f"{HAND_JOINT_NAMES[i]}: {q[i]:.4f} -> {out[i]:.4f} rad" for i in np.nonzero(out != q)[0]]
        if notes:
            log.warning("hand target clamped to joint limits: %s", "; ".join(notes))
        return HandCommand(requested=q, commanded=out, clamps=tuple(notes))
