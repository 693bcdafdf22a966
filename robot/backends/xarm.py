"""``xarm`` arm backend: a UFACTORY xArm (6) through ``xarm-python-sdk``'s ``XArmAPI``.

The SDK works in millimetres and (here) radians; its roll/pitch/yaw are extrinsic xyz about the base axes,
the same convention as :mod:`deft_core.geometry`. On connect the driver clears old errors, enables motion,
selects position mode (0) and the ready state (0), sets the collision sensitivity, the TCP offset, and —
unless disabled — programs the configured workspace box as the controller's own safety boundary
(``set_reduced_tcp_boundary`` + fence mode) and the speed cap as the reduced-mode TCP speed, so they hold even if this process misbehaves.

Every SDK return code is checked: API codes become :class:`XArmAPIError`, controller errors
(``get_err_warn_code``) become :class:`XArmControllerError` carrying the code's meaning from the SDK's
table. On a controller error the arm is stopped (state 4) and the driver refuses motion until
:meth:`XArmArm.recover` (clean_error / clean_warn / motion_enable / set_mode(0) / set_state(0)).

Tests inject a fake with ``XArmAPI``'s interface through ``api_factory``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from robot.base import (Arm, ArmState, ControllerError, DeviceAlreadyConnectedError, DeviceError, Pose, now,
                        require_package)

log = logging.getLogger(__name__)

#: XArmAPI return codes that are not controller errors (xarm.x3.code.APIState), for messages.
API_CODES = {
    -1: "not connected", -2: "not ready (motion not enabled or state not set)", -3: "API exception (bad parameter?)",
    -4: "command does not exist", -6: "Cartesian limit", -7: "joint limit", -8: "out of range",
    -9: "emergency stop", -10: "no joint with this id", 1: "the controller has an uncleared error",
    2: "the controller has an uncleared warning", 3: "reply timeout", 4: "TCP reply length error",
    5: "TCP reply number error", 6: "TCP protocol flag error", 7: "reply does not match command",
    8: "write error (no TCP connection)", 9: "state not ready", 10: "result invalid", 11: "other error",
    12: "parameter error", 100: "timed out waiting for the motion to finish (the arm may still be moving)",
}
HAS_ERROR, HAS_WARN = 1, 2
STATE_STOP = 4


class XArmAPIError(DeviceError):
    """An ``XArmAPI`` call returned a non-zero code that is not a controller error."""

    def __init__(self, call: str, code: int):
        self.call, self.code = call, code
        super().__init__(f"xArm {call} returned code {code}: {API_CODES.get(code, 'unknown code')}")


class XArmControllerError(ControllerError):
    """The xArm controller reports error ``code`` (see the SDK's ControllerErrorCodeMap)."""


def controller_error_meaning(code: int) -> str:
    """Title of an xArm controller error code, from the SDK's own table when it is installed."""
    try:
        from xarm.core.config.x_code import ControllerErrorCodeMap

        info = ControllerErrorCodeMap.get(code, ControllerErrorCodeMap.get("other"))
        return info["en"]["title"]
    except ImportError:
        return {1: "emergency stop button pushed", 22: "self-collision", 23: "joint angle exceeds limit",
                24: "speed exceeds limit", 31: "collision caused abnormal current", 35: "safety boundary limit"}.get(code, "controller error")


class XArmAPILike(Protocol):
    """The part of ``xarm.wrapper.XArmAPI`` this backend uses (for typing fakes)."""

    connected: bool
    error_code: int
    warn_code: int

    def motion_enable(self, enable: bool = True, servo_id: Any = None) -> int: ...
    def set_mode(self, mode: int = 0) -> int: ...
    def set_state(self, state: int = 0) -> int: ...
    def clean_error(self) -> int: ...
    def clean_warn(self) -> int: ...
    def get_err_warn_code(self, show: bool = False, lang: str = "en") -> tuple[int, list]: ...
    def set_collision_sensitivity(self, value: int, wait: bool = True) -> int: ...
    def set_reduced_tcp_boundary(self, boundary: list) -> int: ...
    def set_fence_mode(self, on: bool) -> int: ...
    def set_reduced_max_tcp_speed(self, speed: float) -> int: ...
    def set_reduced_mode(self, on: bool) -> int: ...
    def set_tcp_offset(self, offset: list, is_radian: bool | None = None, wait: bool = True) -> int: ...
    def set_position(self, x=None, y=None, z=None, roll=None, pitch=None, yaw=None, speed=None, mvacc=None,
                     is_radian=None, wait=False, timeout=None, **kwargs) -> int: ...
    def get_position(self, is_radian: bool | None = None) -> tuple[int, list]: ...
    def get_servo_angle(self, servo_id=None, is_radian: bool | None = None) -> tuple[int, list]: ...
    def emergency_stop(self) -> None: ...
    def disconnect(self) -> None: ...


_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")


@dataclass
class XArmConfig:
    """``ip``: controller address; ``collision_sensitivity`` 0–5; ``use_controller_boundary``: program the
    safety workspace into the controller; ``tcp_offset_mm``: [x, y, z (mm), roll, pitch, yaw (deg)];
    ``home_position`` (m) / ``home_euler_xyz`` (rad) of the wrist; ``acc_m_s2``: Cartesian acceleration;
    ``move_timeout_s``: limit for one blocking move; ``controller_boundary_margin_mm``: how much larger than
    the software workspace box the controller's boundary is (never below the table): the software clamps
    first and the controller is the backstop, so a target clamped onto the box's face does not trip the
    controller's boundary error (C35) by tracking noise."""

    ip: str
    collision_sensitivity: int = 3
    use_controller_boundary: bool = True
    controller_boundary_margin_mm: float = 10.0
    tcp_offset_mm: list = field(default_factory=lambda: [0.0] * 6)
    home_position: list = field(default_factory=lambda: [0.35, 0.0, 0.35])
    home_euler_xyz: list = field(default_factory=lambda: [np.pi, 0.0, 0.0])
    acc_m_s2: float = 0.5
    move_timeout_s: float = 20.0

    def __post_init__(self) -> None:
        if not isinstance(self.ip, str) or not _HOST.match(self.ip):
            raise ValueError(f"ip must be an IPv4 address or host name of the xArm controller, got {self.ip!r}")
        if not isinstance(self.collision_sensitivity, int) or not 0 <= self.collision_sensitivity <= 5:
            raise ValueError(f"collision_sensitivity must be an integer 0..5, got {self.collision_sensitivity!r}")
        for name, n in (("tcp_offset_mm", 6), ("home_position", 3), ("home_euler_xyz", 3)):
            v = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if v.shape != (n,) or not np.all(np.isfinite(v)):
                raise ValueError(f"{name} must be {n} finite numbers, got {getattr(self, name)!r}")
            setattr(self, name, v.tolist())
        if not self.acc_m_s2 > 0 or not self.move_timeout_s > 0:
            raise ValueError("acc_m_s2 and move_timeout_s must be positive")
        if not 0 <= float(self.controller_boundary_margin_mm) <= 100:
            raise ValueError(f"controller_boundary_margin_mm must be 0..100, got {self.controller_boundary_margin_mm!r}")


def _default_api_factory(ip: str) -> XArmAPILike:
    xarm = require_package("xarm.wrapper", "xarm-python-sdk")
    try:  # the SDK prints ~100 '[SDK][ERROR] xArm is not connected' lines while it retries: our error says it once
        from xarm.core.utils.log import logger as sdk_logger
    except ImportError:  # pragma: no cover — another SDK layout
        sdk_logger = None
    level = sdk_logger.level if sdk_logger is not None else None
    if sdk_logger is not None:
        sdk_logger.setLevel(logging.CRITICAL)
    try:
        return xarm.XArmAPI(ip, is_radian=True)
    except Exception as exc:  # noqa: BLE001 — the SDK raises bare Exceptions ("failed to check version, close")
        raise DeviceError(f"could not connect to the xArm controller at {ip} ({exc}); check the cable / network "
                          "and that the controller is powered") from None
    finally:
        if sdk_logger is not None:
            sdk_logger.setLevel(level)


class XArmArm(Arm):
    """xArm6 backend. ``api_factory(ip) -> XArmAPI-like`` (default: the real SDK)."""

    Config = XArmConfig

    def __init__(self, config: XArmConfig, safety=None, api_factory: Callable[[str], XArmAPILike] | None = None):
        super().__init__(safety)
        self.config = config
        self._factory = api_factory or _default_api_factory
        self.api: XArmAPILike | None = None
        self._motion_allowed = False

    @property
    def is_connected(self) -> bool:
        return self.api is not None and bool(getattr(self.api, "connected", False))

    # ---------------------------------------------------------------- code checking
    @staticmethod
    def _code(ret: Any) -> Any:
        """The return code of an SDK call: most return an int, some a (code, value) tuple, set_fence_mode
        the controller's whole reply list."""
        return ret[0] if isinstance(ret, (tuple, list)) else ret

    def _check(self, call: str, code: Any) -> None:
        code = self._code(code)
        if code in (0, None):
            return
        if code == HAS_ERROR or (self.api is not None and getattr(self.api, "error_code", 0)):
            self._raise_controller_error(call)
        if code == HAS_WARN:
            log.warning("xArm %s: controller warning %s", call, getattr(self.api, "warn_code", "?"))
            return
        raise XArmAPIError(call, int(code))

    def _raise_controller_error(self, call: str) -> None:
        code, (err, warn) = self.api.get_err_warn_code()
        err = int(err if code == 0 else getattr(self.api, "error_code", -1))
        raise XArmControllerError("xArm", err, controller_error_meaning(err),
                                  f"during {call}; the arm was stopped. Fix the cause, then recover()")

    # ---------------------------------------------------------------- lifecycle
    def connect(self) -> None:
        if self.is_connected:
            raise DeviceAlreadyConnectedError("xArm is already connected")
        self.api = self._factory(self.config.ip)
        if not getattr(self.api, "connected", False):
            self.api = None
            raise DeviceError(f"could not connect to the xArm controller at {self.config.ip} "
                              "(check the cable / network and that the controller is powered)")
        try:
            self._enable()
            self._check("set_collision_sensitivity", self.api.set_collision_sensitivity(self.config.collision_sensitivity))
            self._check("set_tcp_offset", self.api.set_tcp_offset(self._tcp_offset(), is_radian=True))
            if self.config.use_controller_boundary:
                m = float(self.config.controller_boundary_margin_mm)
                lo, hi = self.safety.workspace_lower * 1000.0 - m, self.safety.workspace_upper * 1000.0 + m
                floor = self.safety.floor_z * 1000.0 - m
                if self.safety.table_z is not None:
                    floor = max(floor, self.safety.table_z * 1000.0)
                boundary = [hi[0], lo[0], hi[1], lo[1], hi[2], floor]
                # a TCP already outside the box when the fence goes on is locked in C35 (UFactory: only manual
                # or drag mode gets it back inside): refuse, saying where it is
                code, pos = self.api.get_position(is_radian=True)
                self._check("get_position", code)
                x, y, z = (float(v) for v in pos[:3])
                if not (boundary[1] <= x <= boundary[0] and boundary[3] <= y <= boundary[2] and boundary[5] <= z <= boundary[4]):
                    raise DeviceError(f"xArm: the tool centre is at ({x:.0f}, {y:.0f}, {z:.0f}) mm, outside the safety "
                                      f"boundary x {boundary[1]:.0f}..{boundary[0]:.0f}, y {boundary[3]:.0f}..{boundary[2]:.0f}, "
                                      f"z {boundary[5]:.0f}..{boundary[4]:.0f} mm the controller would enforce; move it "
                                      "inside (UFactory Studio or hand-guiding) or widen the workspace in the robot YAML")
                self._check("set_reduced_tcp_boundary", self.api.set_reduced_tcp_boundary([float(b) for b in boundary]))
                self._check("set_fence_mode", self.api.set_fence_mode(True))
                max_mm_s = float(self.safety.max_speed_m_s * 1000.0)
                self._check("set_reduced_max_tcp_speed", self.api.set_reduced_max_tcp_speed(max_mm_s))
                self._check("set_reduced_mode", self.api.set_reduced_mode(True))
            # a TCP-offset (or payload) change leaves the controller in state 5 until set_state(0): without
            # it the first motion is refused with code 9, "state not ready"
            self._check("set_state", self.api.set_state(0))
        except Exception:
            self.disconnect()
            raise

    def _tcp_offset(self) -> list:
        o = list(self.config.tcp_offset_mm)
        return o[:3] + [float(np.deg2rad(a)) for a in o[3:]]

    def _enable(self) -> None:
        # clean_warn / clean_error answer with the reply's raw state bits: 1 (an error is pending) and 2 (a
        # warning) are what they are called to clear, not failures; whether the error went away is asked next
        for name, fn in (("clean_warn", self.api.clean_warn), ("clean_error", self.api.clean_error)):
            code = self._code(fn())
            if code not in (0, None, HAS_ERROR, HAS_WARN):
                raise XArmAPIError(name, int(code))
        code, (err, _warn) = self.api.get_err_warn_code()
        if code == 0 and err:
            raise XArmControllerError("xArm", int(err), controller_error_meaning(int(err)),
                                      "still reported after clean_error: its cause persists (emergency stop "
                                      "pressed? arm outside the safety boundary?); fix it, then recover()")
        self._check("motion_enable", self.api.motion_enable(True))
        self._check("set_mode", self.api.set_mode(0))
        self._check("set_state", self.api.set_state(0))
        self._motion_allowed = True

    def recover(self) -> None:
        """Clear controller errors/warnings and re-enable motion (after the operator fixed the cause)."""
        if not self.is_connected:
            raise DeviceError("xArm: connect() before recover()")
        self._enable()

    def disconnect(self) -> None:
        if self.api is None:
            return
        try:
            if getattr(self.api, "connected", False):
                self._stop()
            self.api.disconnect()
        finally:
            self.api = None

    # ---------------------------------------------------------------- primitives
    def _read_state(self) -> ArmState:
        code, pos = self.api.get_position(is_radian=True)
        self._check("get_position", code)
        code, angles = self.api.get_servo_angle(is_radian=True)
        self._check("get_servo_angle", code)
        p = np.asarray(pos[:3], dtype=np.float64) / 1000.0
        pose = Pose.from_euler_xyz(p, np.asarray(pos[3:6], dtype=np.float64))
        return ArmState(pose=pose, joints=np.asarray(angles[:6], dtype=np.float64), timestamp=now())

    def _command_pose(self, pose: Pose, speed_m_s: float, wait: bool) -> None:
        if not self._motion_allowed:
            raise DeviceError("xArm: motion is disabled after a stop or controller error; call recover()")
        if getattr(self.api, "error_code", 0):
            self._raise_controller_error("set_position (pre-check)")
        x, y, z = (pose.position * 1000.0).tolist()
        roll, pitch, yaw = pose.euler_xyz.tolist()
        code = self.api.set_position(x=x, y=y, z=z, roll=roll, pitch=pitch, yaw=yaw, speed=speed_m_s * 1000.0,
                                     mvacc=self.config.acc_m_s2 * 1000.0, is_radian=True, wait=wait,
                                     timeout=self.config.move_timeout_s)
        self._check("set_position", code)

    def _stop(self) -> None:
        """Stop state (4): the controller aborts the motion and rejects new motion until set_state(0)."""
        self._motion_allowed = False
        code = self.api.set_state(STATE_STOP)
        if code not in (0, None):
            log.error("xArm set_state(4) returned %s; issuing emergency_stop()", code)
            self.api.emergency_stop()

    def emergency_stop(self) -> None:
        """The SDK's emergency stop (all motion halted). Recover with :meth:`recover`."""
        self._motion_allowed = False
        if self.api is not None:
            self.api.emergency_stop()

    def _home(self) -> None:
        self.recover()
        self.move_to(Pose.from_euler_xyz(self.config.home_position, self.config.home_euler_xyz))
