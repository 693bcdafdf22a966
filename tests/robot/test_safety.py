"""Driver-side safety: workspace box, table plane, step/rotation/speed limits, hand joint limits."""

import logging

import numpy as np
import pytest

from deft_core.geometry import rotation_angle_between
from deft_core.retarget import hand_joint_limits
from robot.backends.fake import FakeArm, FakeHand
from robot.base import ControllerError, DeviceError, Pose
from robot.safety import ArmSafety, HandSafety

DOWN = [np.pi, 0.0, 0.0]


def _safety(**kw):
    base = dict(workspace_lower=[0.1, -0.3, -0.1], workspace_upper=[0.6, 0.3, 0.5], table_z=0.0,
                min_clearance_m=0.02, max_step_m=0.05, max_rot_step_rad=0.3, max_speed_m_s=0.2, default_speed_m_s=0.1)
    base.update(kw)
    return ArmSafety(**base)


def test_wrist_never_goes_below_the_table_or_outside_the_box(caplog):
    s = _safety(max_step_m=10.0)
    cur = Pose.from_euler_xyz([0.3, 0.0, 0.2], DOWN)
    with caplog.at_level(logging.WARNING, logger="robot.safety"):
        cmd = s.limit(Pose.from_euler_xyz([0.9, -0.5, -0.3], DOWN), cur)
    np.testing.assert_allclose(cmd.commanded.position, [0.6, -0.3, 0.02])
    assert any(c.startswith("table") for c in cmd.clamps)
    assert sum(c.startswith("workspace") for c in cmd.clamps) == 2
    assert "-0.3000 -> 0.0200" in caplog.text and "0.9000 -> 0.6000" in caplog.text  # original and clamped
    np.testing.assert_allclose(cmd.requested.position, [0.9, -0.5, -0.3])


def test_random_targets_always_end_inside_the_safe_region():
    s = _safety()
    rng = np.random.default_rng(1)
    cur = Pose.from_euler_xyz([0.3, 0.0, 0.2], DOWN)
    for _ in range(200):
        tgt = Pose.from_euler_xyz(rng.uniform(-1, 1, 3), rng.uniform(-np.pi, np.pi, 3))
        cmd = s.limit(tgt, cur, speed_m_s=rng.uniform(0.01, 1.0))
        p = cmd.commanded.position
        assert np.all(p >= [0.1, -0.3, 0.02 - 1e-12]) and np.all(p <= [0.6, 0.3, 0.5])
        assert np.linalg.norm(p - cur.position) <= 0.05 + 1e-9
        assert rotation_angle_between(cur.rotation, cmd.commanded.rotation) <= 0.3 + 1e-9
        assert cmd.speed_m_s <= 0.2
        cur = cmd.commanded


def test_step_rotation_and_speed_limits():
    s = _safety()
    cur = Pose.from_euler_xyz([0.3, 0.0, 0.2], DOWN)
    tgt = Pose.from_euler_xyz([0.5, 0.0, 0.2], [np.pi, 0.0, 1.0])
    cmd = s.limit(tgt, cur, speed_m_s=1.0)
    np.testing.assert_allclose(cmd.commanded.position, [0.35, 0.0, 0.2])
    assert rotation_angle_between(cur.rotation, cmd.commanded.rotation) == pytest.approx(0.3)
    assert cmd.speed_m_s == 0.2
    assert {c.split(":")[0] for c in cmd.clamps} == {"step", "rot_step", "speed"}
    small = s.limit(Pose.from_euler_xyz([0.31, 0.0, 0.2], DOWN), cur)
    assert not small.clamped and small.speed_m_s == 0.1


def test_bad_safety_configuration_is_rejected():
    with pytest.raises(ValueError, match="lower"):
        _safety(workspace_lower=[0.7, -0.3, 0.0])
    with pytest.raises(ValueError, match="table"):
        _safety(table_z=0.6)
    with pytest.raises(ValueError, match="max_step_m"):
        _safety(max_step_m=0.0)
    # a NaN table plane used to switch the table clamp off (max(z, nan + clearance) is z)
    for bad in (float("nan"), float("inf"), "0.0", True):
        with pytest.raises(ValueError, match="safety.table_z must be a finite number"):
            _safety(table_z=bad)
    with pytest.raises(ValueError, match="write 1.0e-2 or 0.01"):
        _safety(min_clearance_m="1e-2")
    with pytest.raises(ValueError, match="safety.min_clearance_m must be a finite number, got .one cm.$"):
        _safety(min_clearance_m="one cm")
    assert _safety(table_z=None).floor_z == -0.1  # no table: the workspace floor


def test_a_nan_table_in_the_robot_yaml_is_refused_at_load(tmp_path):
    from robot.base import ConfigError
    from robot.config import load_robot_config

    path = tmp_path / "robot.yaml"
    path.write_text("name: t\narm: {backend: fake}\nhand: {backend: fake}\ncamera: {backend: fake}\n"
                    "safety: {table_z: .nan, workspace: {lower: [0.1, -0.4, -0.2], upper: [0.7, 0.4, 0.5]}}\n")
    with pytest.raises(ConfigError, match="table_z must be a finite number"):
        load_robot_config(path)


def test_arm_driver_applies_safety_and_stops_on_controller_error():
    arm = FakeArm(safety=_safety())
    with arm:
        cmd = arm.move_to(Pose.from_euler_xyz([0.55, 0.1, -0.5], DOWN))
        np.testing.assert_allclose(arm.get_state().pose.position, [0.55, 0.1, 0.02])
        assert all(np.linalg.norm(b.position - a.position) <= 0.05 + 1e-9 for a, b in zip(arm.history, arm.history[1:]))
        assert cmd.clamped and cmd.commanded.position[2] == pytest.approx(0.02)
        arm.inject_error(31, "collision caused abnormal current")
        with pytest.raises(ControllerError, match="31"):
            arm.send(Pose.from_euler_xyz([0.5, 0.0, 0.2], DOWN))
        assert not arm.motion_enabled  # left safe: stopped, motion disabled
        with pytest.raises(DeviceError, match="disabled"):
            arm.send(Pose.from_euler_xyz([0.5, 0.0, 0.2], DOWN))
        arm.home()
        arm.send(Pose.from_euler_xyz([0.36, 0.0, 0.35], DOWN))


def test_hand_joint_limits_and_returned_command():
    lo, hi = hand_joint_limits()
    hand = FakeHand(safety=HandSafety())
    with hand:
        q = np.linspace(-3, 3, 16)
        cmd = hand.send(q)
        np.testing.assert_allclose(cmd.commanded, np.clip(q, lo, hi))
        assert cmd.clamped and "index_mcp_side" in cmd.clamps[0]
        np.testing.assert_allclose(hand.read().joints, cmd.commanded)
        with pytest.raises(ValueError, match="non-finite"):
            hand.send(np.full(16, np.nan))
        with pytest.raises(ValueError, match="16"):
            hand.send(np.zeros(15))
    with pytest.raises(ValueError, match="lower > upper"):
        HandSafety(lower=np.ones(16), upper=np.zeros(16))
