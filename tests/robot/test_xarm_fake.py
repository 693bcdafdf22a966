"""The xArm backend against a fake with XArmAPI's interface, units (mm, rad) and return/error codes."""

import numpy as np
import pytest

from robot.backends.xarm import XArmAPIError, XArmArm, XArmConfig, XArmControllerError, controller_error_meaning
from robot.base import DeviceError, DeviceNotConnectedError, Pose
from robot.safety import ArmSafety


class FakeXArmAPI:
    """Mimics xarm.wrapper.XArmAPI (SDK 1.x source, xarm/x3/xarm.py and base.py): codes 0 ok, 1 controller
    error pending, negative API errors. Where the SDK returns raw controller replies the fake does too:
    ``set_fence_mode`` returns the reply list; ``clean_warn``/``clean_error`` answer 1 while an error is
    pending (the reply's state bits); ``set_state`` maps that to 0 (``_check_code``) without leaving the
    error; ``set_tcp_offset`` leaves the controller in state 5, where a move answers 9 (not ready) until
    ``set_state(0)``."""

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
        self.stuck_error = False    # an error clean_error cannot clear (its cause persists)
        self.move_code = None       # a code the next set_position returns (e.g. 100: wait timed out)

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
        if self.error_code and state != 4:
            return 0  # the SDK maps the reply's error bit to 0 for non-move commands; the state stays
        self.state = state
        return 0

    def clean_error(self):
        self._log("clean_error")
        pending = 1 if self.error_code else 0
        if not self.stuck_error:
            self.error_code = 0
        return pending

    def clean_warn(self):
        self._log("clean_warn")
        self.warn_code = 0
        return 1 if self.error_code else 0

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
        return [0]  # the SDK returns arm_cmd's whole reply here, not its code

    def set_reduced_max_tcp_speed(self, speed):
        self._log("set_reduced_max_tcp_speed", speed)
        return 0

    def set_reduced_mode(self, on):
        self._log("set_reduced_mode", on)
        return 0

    def set_tcp_offset(self, offset, is_radian=None, wait=True, **kw):
        self._log("set_tcp_offset", offset, is_radian=is_radian)
        self.state = 5  # a configuration change: moves are refused until set_state(0)
        return 0

    def set_position(self, x=None, y=None, z=None, roll=None, pitch=None, yaw=None, speed=None, mvacc=None,
                     is_radian=None, wait=False, timeout=None, **kw):
        self._log("set_position", x, y, z, roll, pitch, yaw, speed=speed, is_radian=is_radian)
        if not self.connected:
            return -1
        if self.state == 5:
            return 9  # the reply says the state is not ready (_check_code with is_move_cmd)
        if not self.enabled or self.state != 0:
            return -2  # not ready
        if self.move_code is not None:
            code, self.move_code = self.move_code, None
            return code
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
        # [x_max, x_min, y_max, y_min, z_max, z_min] in mm: the software box (floor = table + 20 mm clearance)
        # grown by the 10 mm margin, never below the table: the controller is the backstop behind the clamp
        np.testing.assert_allclose(api.boundary, [710, 140, 410, -410, 610, 10])
        assert [c[0] for c in api.calls][-1] == "set_state" and api.state == 0   # ready to move after configuring
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


def test_connect_clears_an_error_left_on_the_controller():
    """The last session ended on a collision (C31 pending): clean_warn answers 1 (the reply's error bit),
    which is what connect is there to clear, not a failure; afterwards the arm moves."""
    holder = {}

    def factory(ip):
        holder["api"] = FakeXArmAPI(ip)
        holder["api"].error_code = 31
        return holder["api"]

    arm = XArmArm(XArmConfig(ip="192.168.1.208"), safety=_arm()[0].safety, api_factory=factory)
    with arm:
        assert holder["api"].error_code == 0
        arm.send(Pose.from_euler_xyz([0.4, 0.0, 0.3], [np.pi, 0, 0]))


def test_an_error_that_clean_error_cannot_clear_is_named():
    """An emergency stop still pressed: the error survives clean_error; connect says so with its code."""
    arm, h = _arm()
    with arm:
        api = h["api"]
        api.fail_next_move, api.stuck_error = 31, True
        with pytest.raises(XArmControllerError):
            arm.send(Pose.from_euler_xyz([0.4, 0.0, 0.3], [np.pi, 0, 0]))
        with pytest.raises(XArmControllerError, match="still reported after clean_error") as info:
            arm.recover()
        assert info.value.code == 31
        api.stuck_error = False
        arm.recover()
        arm.send(Pose.from_euler_xyz([0.4, 0.0, 0.3], [np.pi, 0, 0]))


def test_a_move_that_times_out_stops_the_arm():
    """wait=True timing out (code 100) leaves the arm possibly still moving: it is stopped, the error
    names what happened, and motion needs recover()."""
    arm, h = _arm()
    with arm:
        api = h["api"]
        api.move_code = 100
        with pytest.raises(XArmAPIError, match="timed out waiting for the motion"):
            arm.send(Pose.from_euler_xyz([0.4, 0.0, 0.3], [np.pi, 0, 0]))
        assert api.calls[-1] == ("set_state", (4,), {})
        with pytest.raises(DeviceError, match="recover"):
            arm.send(Pose.from_euler_xyz([0.4, 0.0, 0.3], [np.pi, 0, 0]))


def test_connect_refuses_to_fence_in_a_tool_centre_that_is_outside_the_boundary():
    """Parked below the box (e.g. a long tool offset): switching the fence on would lock the arm in C35;
    connect refuses first, saying where the tool centre is and where the boundary would be."""
    holder = {}

    def factory(ip):
        holder["api"] = FakeXArmAPI(ip)
        holder["api"].position[2] = 5.0     # mm: below the 10 mm floor
        return holder["api"]

    arm = XArmArm(XArmConfig(ip="192.168.1.208"), safety=_arm()[0].safety, api_factory=factory)
    with pytest.raises(DeviceError, match=r"at \(350, 0, 5\) mm, outside the safety boundary.*z 10\.\.610 mm"):
        arm.connect()
    assert not arm.is_connected and "set_fence_mode" not in [c[0] for c in holder["api"].calls]
    with pytest.raises(ValueError, match="controller_boundary_margin_mm"):
        XArmConfig(ip="10.0.0.2", controller_boundary_margin_mm=-1)

