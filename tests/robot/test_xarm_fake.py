"""The xArm backend against a fake with XArmAPI's interface, units (mm, rad) and return/error codes."""

import numpy as np
import pytest

from robot.backends.xarm import XArmAPIError, XArmArm, XArmConfig, XArmControllerError, controller_error_meaning
from robot.base import DeviceError, DeviceNotConnectedError, Pose
from robot.safety import ArmSafety


class FakeXArmAPI:
    """Mimics xarm.wrapper.XArmAPI: codes 0 ok, 1 controller error pending, negative API errors."""

    def __init__(self, ip, reachable=True):
        self.ip = ip
        self.connected = reachable
        self.error_code = 0
        self.warn_code = 0
        self.state = 4
        self.mode = 0
        self.enabled = False
        self.position = [350.0, 0.0, 350.0, np.pi, 0.0, 0.0]  # mm, rad
        self.calls = []
        self.fail_next_move = None  # controller error code to raise on the next set_position
        self.boundary = None

    def _log(self, name, *args, **kw):
        self.calls.append((name, args, kw))

    def motion_enable(self, enable=True, servo_id=None):
        self._log("motion_enable", enable)
        self.enabled = enable
        return 0

    def set_mode(self, mode=0, detection_param=0):
        self._log("set_mode", mode)
        self.mode = mode
        return 0

    def set_state(self, state=0):
        self._log("set_state", state)
        if self.error_code:
            return 1
        self.state = state
        return 0

    def clean_error(self):
        self._log("clean_error")
        self.error_code = 0
        return 0

    def clean_warn(self):
        self._log("clean_warn")
        self.warn_code = 0
        return 0

    def get_err_warn_code(self, show=False, lang="en"):
        return 0, [self.error_code, self.warn_code]

    def set_collision_sensitivity(self, value, wait=True):
        self._log("set_collision_sensitivity", value)
        return 0

    def set_reduced_tcp_boundary(self, boundary):
        self._log("set_reduced_tcp_boundary", boundary)
        self.boundary = boundary
        return 0

    def set_fence_mode(self, on):
        self._log("set_fence_mode", on)
        return 0

    def set_reduced_max_tcp_speed(self, speed):
        self._log("set_reduced_max_tcp_speed", speed)
        return 0

    def set_reduced_mode(self, on):
        self._log("set_reduced_mode", on)
        return 0

    def set_tcp_offset(self, offset, is_radian=None, wait=True, **kw):
        self._log("set_tcp_offset", offset, is_radian=is_radian)
        return 0

    def set_position(self, x=None, y=None, z=None, roll=None, pitch=None, yaw=None, speed=None, mvacc=None,
                     is_radian=None, wait=False, timeout=None, **kw):
        self._log("set_position", x, y, z, roll, pitch, yaw, speed=speed, is_radian=is_radian)
        if not self.connected:
            return -1
        if not self.enabled or self.state != 0:
            return -2  # not ready
        if self.fail_next_move is not None:
            self.error_code, self.fail_next_move = self.fail_next_move, None
            self.state = 4
            return 1
        b = self.boundary
        if b is not None and not (b[1] <= x <= b[0] and b[3] <= y <= b[2] and b[5] <= z <= b[4]):
            self.error_code = 35
            return 1
        self.position = [x, y, z, roll, pitch, yaw]
        return 0

    def get_position(self, is_radian=None):
        assert is_radian is True
        return 0, list(self.position)

    def get_servo_angle(self, servo_id=None, is_radian=None, is_real=False):
        return 0, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.0]

    def emergency_stop(self):
        self._log("emergency_stop")
        self.state = 4

    def disconnect(self):
        self._log("disconnect")
        self.connected = False


def _arm(**api_kw):
    holder = {}

    def factory(ip):
        holder["api"] = FakeXArmAPI(ip, **api_kw)
        return holder["api"]

    safety = ArmSafety(workspace_lower=[0.15, -0.4, 0.0], workspace_upper=[0.7, 0.4, 0.6], table_z=0.0,
                       min_clearance_m=0.02, max_step_m=0.1, max_speed_m_s=0.2)
    arm = XArmArm(XArmConfig(ip="192.168.1.208", collision_sensitivity=4), safety=safety, api_factory=factory)
    return arm, holder


def test_connect_enables_and_programs_the_controller_safety():
    arm, h = _arm()
    with pytest.raises(DeviceNotConnectedError):
        arm.get_state()
    with arm:
        api = h["api"]
        names = [c[0] for c in api.calls]
        assert names[:5] == ["clean_warn", "clean_error", "motion_enable", "set_mode", "set_state"]
        assert ("set_collision_sensitivity", (4,), {}) in api.calls
        # [x_max, x_min, y_max, y_min, z_max, z_min] in mm; the floor is the table + clearance
        np.testing.assert_allclose(api.boundary, [700, 150, 400, -400, 600, 20])
        assert ("set_reduced_max_tcp_speed", (200.0,), {}) in api.calls
        state = arm.get_state()
        np.testing.assert_allclose(state.pose.position, [0.35, 0.0, 0.35])
        np.testing.assert_allclose(state.joints, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert api.calls[-1][0] == "disconnect" and ("set_state", (4,), {}) in api.calls


def test_send_converts_units_and_returns_the_clamped_command():
    arm, h = _arm()
    with arm:
        target = Pose.from_euler_xyz([0.40, 0.05, -0.10], [np.pi, 0.1, 0.2])  # below the table
        cmd = arm.send(target, speed_m_s=0.05)
        assert cmd.clamped and any(c.startswith("table") for c in cmd.clamps)
        assert cmd.commanded.position[2] >= 0.02 - 1e-12
        name, args, kw = [c for c in h["api"].calls if c[0] == "set_position"][-1]
        np.testing.assert_allclose(args[:3], cmd.commanded.position * 1000.0)
        np.testing.assert_allclose(args[3:], cmd.commanded.euler_xyz)
        assert kw["is_radian"] is True and kw["speed"] == pytest.approx(50.0)
        np.testing.assert_allclose(arm.get_state().pose.position, cmd.commanded.position, atol=1e-9)


def test_controller_error_stops_the_arm_and_names_the_code():
    arm, h = _arm()
    with arm:
        api = h["api"]
        api.fail_next_move = 31
        with pytest.raises(XArmControllerError) as info:
            arm.send(Pose.from_euler_xyz([0.4, 0.0, 0.3], [np.pi, 0, 0]))
        assert info.value.code == 31
        assert "collision" in str(info.value).lower()
        assert api.calls[-1][0] in ("set_state", "emergency_stop")
        with pytest.raises(DeviceError, match="recover"):
            arm.send(Pose.from_euler_xyz([0.4, 0.0, 0.3], [np.pi, 0, 0]))
        arm.recover()
        assert api.error_code == 0
        arm.send(Pose.from_euler_xyz([0.4, 0.0, 0.3], [np.pi, 0, 0]))


def test_api_codes_become_typed_errors():
    arm, h = _arm()
    with arm:
        h["api"].state = 3  # suspended: set_position answers -2 (not ready)
        with pytest.raises(XArmAPIError, match="not ready"):
            arm.send(Pose.from_euler_xyz([0.4, 0.0, 0.3], [np.pi, 0, 0]))


def test_unreachable_controller_and_bad_config():
    arm, _ = _arm(reachable=False)
    with pytest.raises(DeviceError, match="192.168.1.208"):
        arm.connect()
    assert not arm.is_connected
    with pytest.raises(ValueError, match="collision_sensitivity"):
        XArmConfig(ip="10.0.0.2", collision_sensitivity=9)
    with pytest.raises(ValueError, match="ip"):
        XArmConfig(ip="")
    assert "Safety Boundary" in controller_error_meaning(35) or "boundary" in controller_error_meaning(35).lower()


def test_sdk_that_raises_while_connecting_becomes_one_clear_error(monkeypatch):
    """The real SDK's constructor raises a bare Exception ("failed to check version, close") for some
    unreachable controllers, after printing its own retry errors: one DeviceError with the address and
    the hint, and the SDK's logger quiet while it tries."""
    import logging
    import types

    from robot.backends import xarm as xarm_backend

    seen = []

    class Boom:
        def __init__(self, ip, is_radian=True):
            from xarm.core.utils.log import logger

            seen.append(logger.level)
            raise Exception("failed to check version, close")

    monkeypatch.setattr(xarm_backend, "require_package", lambda name, pip: types.SimpleNamespace(XArmAPI=Boom))
    pytest.importorskip("xarm.core.utils.log")
    from xarm.core.utils.log import logger

    level = logger.level
    with pytest.raises(DeviceError, match=r"10\.0\.0\.9 \(failed to check version, close\); check the cable"):
        xarm_backend._default_api_factory("10.0.0.9")
    assert seen == [logging.CRITICAL] and logger.level == level
