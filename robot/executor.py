"""Grasp execution: grasp parameters ξ and a post-grasp trajectory τ → arm and hand commands.

Frames (robot base frame, metres / radians; DESIGN.md §3):

- The arm is commanded by its **wrist pose** (``robot.base.Pose``, the tool centre of the hand mount).
  The wrist orientation is ``R = euler_xyz_to_matrix(θ)`` (extrinsic xyz).
- ``approach_axis`` is a unit vector **in the wrist frame**: the direction the palm faces, along which
  the hand moves onto the object. ``contact_offset`` (wrist frame, m) is where the grasp contact point
  μ sits relative to the wrist: the grasp wrist position is ``μ − R @ contact_offset``. Defaults come
  from the hand model (:func:`default_executor_config` in the simulator); see docs/robot-sim.md.

Sequence (each phase timed; every arm/hand command recorded with what safety actually commanded):

1. ``open``: hand flat (all joints 0) — 2. ``hover``: wrist to the pre-grasp pose raised to at least
   ``hover_z_m`` — 3. ``pregrasp``: ``pregrasp_distance_m`` back from the grasp pose along the approach
   axis — 4. ``approach``: straight onto the grasp pose at ``approach_speed_m_s`` — 5. ``close``: the
   hand interpolates to P plus ``squeeze_rad`` on the flexion joints (MCP-forward, PIP, DIP), clipped by
   the hand's safety limits — 6. ``trajectory``: 40 steps, wrist pose k = grasp pose + cumulative τ
   (position added; Euler angles added), each one small Cartesian move.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from deft_core.checks import is_finite_real
from deft_core.geometry import euler_xyz_to_matrix, matrix_to_euler_xyz
from deft_core.grasp import FINGER_JOINTS, GraspParams
from deft_core.trajectory import PostGraspTrajectory
from robot.base import Arm, ArmCommand, Hand, Pose

#: indices of the flexion joints (MCP-forward, PIP, DIP of every finger) that the squeeze margin closes
FLEXION_JOINTS = tuple(f * 4 + j for f in range(4) for j in range(4) if FINGER_JOINTS[j] != "mcp_side")


@dataclass
class ExecutorConfig:
    """Geometry and pacing of grasp execution. Units: metres, radians, seconds, m/s."""

    approach_axis: tuple = (0.0, 0.0, 1.0)
    contact_offset: tuple = (0.0, 0.0, 0.0)
    pregrasp_distance_m: float = 0.08
    hover_z_m: float = 0.20
    transit_speed_m_s: float = 0.20
    approach_speed_m_s: float = 0.08
    trajectory_speed_m_s: float = 0.15
    squeeze_rad: float = 0.2
    close_steps: int = 8
    close_time_s: float = 0.8
    settle_s: float = 0.2

    def __post_init__(self) -> None:
        a = np.asarray(self.approach_axis, dtype=np.float64)
        if a.shape != (3,) or not np.isfinite(a).all() or np.linalg.norm(a) < 1e-9:
            raise ValueError(f"ExecutorConfig.approach_axis must be a non-zero 3-vector, got {self.approach_axis!r}")
        self.approach_axis = tuple(a / np.linalg.norm(a))
        c = np.asarray(self.contact_offset, dtype=np.float64)
        if c.shape != (3,) or not np.isfinite(c).all():
            raise ValueError(f"ExecutorConfig.contact_offset must be 3 finite numbers (m), got {self.contact_offset!r}")
        self.contact_offset = tuple(c)
        for name in ("pregrasp_distance_m", "hover_z_m", "transit_speed_m_s", "approach_speed_m_s",
                     "trajectory_speed_m_s", "squeeze_rad", "close_time_s", "settle_s"):
            v = getattr(self, name)
            if not is_finite_real(v):
                raise ValueError(f"ExecutorConfig.{name} must be a finite number, got {v!r}")
            setattr(self, name, float(v))
        for name in ("pregrasp_distance_m", "transit_speed_m_s", "approach_speed_m_s", "trajectory_speed_m_s", "close_time_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ExecutorConfig.{name} must be positive, got {getattr(self, name)!r}")
        if isinstance(self.close_steps, (bool, np.bool_)) or not isinstance(self.close_steps, (int, np.integer)):
            raise ValueError(f"ExecutorConfig.close_steps must be a whole number, got {self.close_steps!r}")
        self.close_steps = int(self.close_steps)
        if self.close_steps < 1 or self.settle_s < 0 or self.squeeze_rad < 0:
            raise ValueError("ExecutorConfig: close_steps >= 1, settle_s >= 0 and squeeze_rad >= 0 are required")


@dataclass
class PhaseTiming:
    name: str
    wall_s: float
    device_s: float  #: time on the device's clock (simulated seconds in sim; wall seconds on hardware)


@dataclass
class ExecutionReport:
    """What was executed: ``grasp_pose``/``pregrasp_pose`` (wrist, base frame), the closing hand command,
    per-phase timings, and every arm command (``phase``, requested and commanded position, clamps)."""

    grasp_pose: Pose
    pregrasp_pose: Pose
    hand_target: np.ndarray
    hand_commanded: np.ndarray
    phases: list[PhaseTiming] = field(default_factory=list)
    arm_commands: list[dict] = field(default_factory=list)

    @property
    def clamped(self) -> bool:
        return any(c["clamps"] for c in self.arm_commands)

    def to_dict(self) -> dict:
        return {"grasp_pose": self.grasp_pose.to_dict(), "pregrasp_pose": self.pregrasp_pose.to_dict(),
                "hand_target": self.hand_target.tolist(), "hand_commanded": self.hand_commanded.tolist(),
                "phases": [vars(p) for p in self.phases], "n_arm_commands": len(self.arm_commands),
                "clamps": [c for c in self.arm_commands if c["clamps"]]}


class Clock:
    """Time source of the devices: ``now()`` and ``sleep(s)``. Hardware: wall clock; the simulator
    passes one whose ``sleep`` steps physics."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


def grasp_poses(grasp: GraspParams, config: ExecutorConfig) -> tuple[Pose, Pose]:
    """(grasp wrist pose, pre-grasp wrist pose) for ξ under ``config``'s hand geometry."""
    R = euler_xyz_to_matrix(grasp.theta)
    p_grasp = grasp.mu - R @ np.asarray(config.contact_offset)
    approach = R @ np.asarray(config.approach_axis)
    return Pose(p_grasp, R), Pose(p_grasp - config.pregrasp_distance_m * approach, R)


def closing_target(hand_joints: np.ndarray, squeeze_rad: float) -> np.ndarray:
    """P plus ``squeeze_rad`` on every flexion joint (a position-controlled hand only presses on the object
    if its target lies beyond the contact)."""
    q = np.asarray(hand_joints, dtype=np.float64).copy()
    q[list(FLEXION_JOINTS)] += squeeze_rad
    return q


class GraspExecutor:
    """Runs ξ then τ on an :class:`Arm` and a :class:`Hand` (any backend).

    ``on_event(phase, index)`` is called after each phase and after every trajectory step (index 1..40),
    so an episode runner can take snapshots and video frames at those instants.
    """

    def __init__(self, arm: Arm, hand: Hand, config: ExecutorConfig | None = None, clock: Clock | None = None,
                 on_event: Callable[[str, int], None] | None = None):
        self.arm, self.hand = arm, hand
        self.config = config or ExecutorConfig()
        self.clock = clock or Clock()
        self.on_event = on_event or (lambda phase, index: None)

    def _move(self, report: ExecutionReport, phase: str, target: Pose, speed: float) -> ArmCommand:
        cmd = self.arm.move_to(target, speed)
        report.arm_commands.append({"phase": phase, "requested": target.position.tolist(),
                                    "commanded": cmd.commanded.position.tolist(), "clamps": list(cmd.clamps)})
        return cmd

    def execute(self, grasp: GraspParams, trajectory: PostGraspTrajectory) -> ExecutionReport:
        cfg = self.config
        grasp_pose, pre_pose = grasp_poses(grasp, cfg)
        target = closing_target(grasp.hand, cfg.squeeze_rad)
        report = ExecutionReport(grasp_pose, pre_pose, target, np.zeros(16))

        def phase(name: str, fn: Callable[[], None]) -> None:
            w0, d0 = time.perf_counter(), self.clock.now()
            fn()
            report.phases.append(PhaseTiming(name, time.perf_counter() - w0, self.clock.now() - d0))
            self.on_event(name, 0)

        def open_hand():
            self.hand.open()
            self.clock.sleep(cfg.settle_s)

        def hover():
            p = pre_pose.position.copy()
            p[2] = max(p[2], cfg.hover_z_m)
            self._move(report, "hover", Pose(p, pre_pose.rotation), cfg.transit_speed_m_s)

        def close():
            start = np.asarray(self.hand.read().joints)
            for k in range(1, cfg.close_steps + 1):
                cmd = self.hand.send(start + (target - start) * k / cfg.close_steps)
                self.clock.sleep(cfg.close_time_s / cfg.close_steps)
            report.hand_commanded = cmd.commanded
            self.clock.sleep(cfg.settle_s)

        phase("open", open_hand)
        phase("hover", hover)
        phase("pregrasp", lambda: self._move(report, "pregrasp", pre_pose, cfg.transit_speed_m_s))
        phase("approach", lambda: self._move(report, "approach", grasp_pose, cfg.approach_speed_m_s))
        phase("close", close)

        w0, d0 = time.perf_counter(), self.clock.now()
        cum = trajectory.cumulative()
        e0 = matrix_to_euler_xyz(grasp_pose.rotation)
        for k in range(1, len(cum)):
            pose = Pose(grasp_pose.position + cum[k, :3], euler_xyz_to_matrix(e0 + cum[k, 3:]))
            self._move(report, "trajectory", pose, cfg.trajectory_speed_m_s)
            self.on_event("trajectory", k)
        self.clock.sleep(cfg.settle_s)
        report.phases.append(PhaseTiming("trajectory", time.perf_counter() - w0, self.clock.now() - d0))
        return report
