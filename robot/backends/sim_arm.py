"""``sim`` arm: the xArm6 of the MuJoCo workcell (:class:`robot.sim.world.SimWorld`).

The commanded wrist pose is the hand's **palm centre** site (``hand/palm_center``: origin on the palm
surface, x = finger direction, z = palm normal, y = z × x, away from the thumb; see :mod:`deft_core.world.robot_hand`)
in the robot base frame, so the safety table clearance keeps the palm itself above the table.
A move solves damped-least-squares IK (:func:`deft_core.world.kinematics.solve_ik`) from the current
joints and executes a linearly interpolated joint trajectory on the arm's position servos with
physics stepping, timed by the commanded Cartesian speed (and ``max_joint_speed_rad_s``). The
driver-side safety limits (:class:`robot.safety.ArmSafety`) apply exactly as on the real arm. An
unreachable pose raises :class:`robot.base.ControllerError` (code 1, like a controller's planning
error) and a wrist blocked by a collision raises code 31 (the xArm's collision detection); both stop
the arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deft_core.geometry import rotation_angle_between
from robot.base import Arm, ArmState, ControllerError, DeviceError, Pose, now
from robot.backends.sim_device import SharedWorldDevice


@dataclass
class SimArmConfig:
    """``world``: name of the shared :class:`SimWorld`; ``max_joint_speed_rad_s``; ``max_rot_speed_rad_s``;
    ``ik_tolerance_m`` beyond which a target counts as unreachable; ``settle_s`` after each move;
    ``collision_tolerance_m``: a wrist left further than this from its commanded position after a move
    is blocked by a collision, reported like the xArm's collision detection (controller error 31)."""

    world: str = "default"
    max_joint_speed_rad_s: float = 2.0
    max_rot_speed_rad_s: float = 1.5
    ik_tolerance_m: float = 0.005
    ik_tolerance_rad: float = 0.05
    settle_s: float = 0.02
    collision_tolerance_m: float = 0.03

    def __post_init__(self) -> None:
        for n in ("max_joint_speed_rad_s", "max_rot_speed_rad_s", "ik_tolerance_m", "ik_tolerance_rad", "collision_tolerance_m"):
            if not float(getattr(self, n)) > 0:
                raise ValueError(f"{n} must be positive, got {getattr(self, n)!r}")
        if float(self.settle_s) < 0:
            raise ValueError(f"settle_s must be >= 0, got {self.settle_s!r}")


class SimArm(SharedWorldDevice, Arm):
    Config = SimArmConfig

    def __init__(self, config: SimArmConfig | None = None, safety=None):
        super().__init__(safety)
        self.config = config or SimArmConfig()
        self.world = None
        self._enabled = False
        self.last_ik = None

    def _after_connect(self) -> None:
        self._enabled = True

    def _before_disconnect(self) -> None:
        if self.world.loaded:
            self._stop()

    def _read_state(self) -> ArmState:
        w = self.world
        p, R = w.site_pose(w.info.palm_site)
        return ArmState(Pose(p, R), w.arm_q(), now())

    def _command_pose(self, pose: Pose, speed_m_s: float, wait: bool) -> None:
        """Move to ``pose`` (already safe). ``wait`` is moot in simulation: the move is always executed
        (physics stepped) before returning, like a blocking controller call."""
        from deft_core.world.kinematics import solve_ik

        if not self._enabled:
            raise DeviceError("SimArm: motion is disabled after a stop; call home()")
        w, cfg = self.world, self.config
        q0 = w.arm_q()
        ik = solve_ik(w.model, w.data, w.info.palm_site, pose.position, pose.rotation, joints=w.info.arm_joints,
                      q_init=q0, restarts=0, max_iters=100)
        self.last_ik = ik
        if ik.pos_error > cfg.ik_tolerance_m or ik.rot_error > cfg.ik_tolerance_rad:
            raise ControllerError("SimArm", 1, f"target pose unreachable (IK residual {ik.pos_error * 1000:.1f} mm, "
                                  f"{np.degrees(ik.rot_error):.1f}°)", hint=f"target {np.round(pose.position, 3).tolist()}")
        cur = self._read_state().pose
        dist = float(np.linalg.norm(pose.position - cur.position))
        ang = float(rotation_angle_between(cur.rotation, pose.rotation))
        dq = float(np.max(np.abs(ik.q - q0)))
        duration = max(dist / speed_m_s, ang / cfg.max_rot_speed_rad_s, dq / cfg.max_joint_speed_rad_s, w.control_dt)
        n = max(1, int(np.ceil(duration / w.control_dt)))
        for k in range(1, n + 1):
            w.set_arm_targets(q0 + (ik.q - q0) * k / n)
            w.advance(w.control_dt)
        w.advance(cfg.settle_s)
        err = float(np.linalg.norm(self._read_state().pose.position - pose.position))
        for _ in range(10):  # servo lag after a fast move is not a collision: let it settle (≤ 0.5 s)
            if err <= cfg.collision_tolerance_m:
                break
            w.advance(0.05)
            err = float(np.linalg.norm(self._read_state().pose.position - pose.position))
        if err > cfg.collision_tolerance_m:  # like the xArm's collision detection (controller error 31)
            raise ControllerError("SimArm", 31, f"collision: the wrist is blocked {err * 1000:.0f} mm from its commanded pose",
                                  hint=f"commanded {np.round(pose.position, 3).tolist()}")

    def _stop(self) -> None:
        self.world.set_arm_targets(self.world.arm_q())
        self._enabled = False

    def _home(self) -> None:
        w = self.world
        q0, q1 = w.arm_q(), np.asarray(w.info.home_q)
        n = max(1, int(np.ceil(np.max(np.abs(q1 - q0)) / self.config.max_joint_speed_rad_s / w.control_dt)))
        for k in range(1, n + 1):
            w.set_arm_targets(q0 + (q1 - q0) * k / n)
            w.advance(w.control_dt)
        self._enabled = True
