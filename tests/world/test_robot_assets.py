"""The xArm6 matches UFactory's published kinematics, the hand has the contract's joints and limits
and its servos track targets, and the IK reaches poses the arm can reach."""

from __future__ import annotations

import time

import mujoco
import numpy as np
import pytest

from deft_core.geometry import rotation_angle_between
from deft_core.grasp import HAND_JOINT_NAMES
from deft_core.world.kinematics import solve_ik
from deft_core.world.mjcf import COMPILER
from deft_core.world.robot_hand import HAND_LOWER, HAND_UPPER, robot_hand_mjcf, standalone_hand_xml
from deft_core.world.xarm6 import HOME, JOINT_NAMES, LOWER, UPPER, flange_pose, forward_kinematics, xarm6_mjcf

ARM_JOINTS = [f"arm/{n}" for n in JOINT_NAMES]


@pytest.fixture(scope="module")
def arm():
    hb, ha, hact = robot_hand_mjcf()
    b, a, act = xarm6_mjcf(hand_body=hb)
    m = mujoco.MjModel.from_xml_string(f"<mujoco>{COMPILER}<option integrator='implicitfast'/><asset>{a}{ha}</asset>"
                                       f"<worldbody>{b}</worldbody><actuator>{act}{hact}</actuator></mujoco>")
    return m


def _rpy(r, p, y):  # URDF fixed-axis roll-pitch-yaw
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return (np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]]) @ np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
            @ np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]]))


def _urdf_fk(q):
    """FK from the joint origins of xarm_ros' xarm6_default_kinematics.yaml (an independent source)."""
    origins = [((0, 0, 0.267), (0, 0, 0)), ((0, 0, 0), (-np.pi / 2, 0, 0)), ((0.0535, -0.2845, 0), (0, 0, 0)),
               ((0.0775, 0.3425, 0), (-np.pi / 2, 0, 0)), ((0, 0, 0), (np.pi / 2, 0, 0)), ((0.076, 0.097, 0), (-np.pi / 2, 0, 0))]
    T = np.eye(4)
    for (xyz, rpy), qi in zip(origins, q):
        A = np.eye(4)
        A[:3, :3] = _rpy(*rpy) @ _rpy(0, 0, qi)
        A[:3, 3] = xyz
        T = T @ A
    return T


def test_dh_table_matches_the_official_urdf_and_the_known_zero_pose():
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = rng.uniform(np.maximum(LOWER, -np.pi), np.minimum(UPPER, np.pi))
        assert np.allclose(flange_pose(q), _urdf_fk(q), atol=1e-9)
    # UFactory's documented zero pose: TCP at (207, 0, 112) mm, tool pointing down
    T0 = flange_pose(np.zeros(6))
    assert np.allclose(T0[:3, 3], [0.207, 0.0, 0.112], atol=1e-6)
    assert np.allclose(T0[:3, 2], [0, 0, -1], atol=1e-9)


def test_mujoco_flange_equals_dh_forward_kinematics(arm):
    d = mujoco.MjData(arm)
    site = arm.site("arm/flange").id
    rng = np.random.default_rng(1)
    for _ in range(50):
        q = rng.uniform(np.maximum(LOWER, -np.pi), np.minimum(UPPER, np.pi))
        d.qpos[:6] = q
        mujoco.mj_kinematics(arm, d)
        T = flange_pose(q)
        assert np.allclose(d.site_xpos[site], T[:3, 3], atol=1e-6)
        assert np.allclose(d.site_xmat[site].reshape(3, 3), T[:3, :3], atol=1e-6)
    assert len(forward_kinematics(np.zeros(6))) == 6
    with pytest.raises(ValueError, match="shape"):
        flange_pose(np.zeros(5))


def test_arm_limits_are_ufactorys(arm):
    deg = np.degrees
    assert np.allclose(deg(LOWER), [-360, -118, -225, -360, -97, -360], atol=0.1)
    assert np.allclose(deg(UPPER), [360, 120, 11, 360, 180, 360], atol=0.1)
    for i, n in enumerate(ARM_JOINTS):
        assert np.allclose(arm.jnt_range[arm.joint(n).id], [LOWER[i], UPPER[i]])


def test_arm_holds_home_and_tracks_a_target(arm):
    d = mujoco.MjData(arm)
    d.qpos[:6] = d.ctrl[:6] = HOME
    target = HOME + np.array([0.3, 0.2, -0.2, 0.3, -0.2, 0.5])
    d.ctrl[:6] = target
    mujoco.mj_step(arm, d, 1500)  # 3 s
    assert np.abs(d.qpos[:6] - target).max() < 2e-3
    assert sum(d.warning[i].number for i in range(len(d.warning))) == 0


def test_hand_joint_order_limits_and_actuators():
    m = mujoco.MjModel.from_xml_string(standalone_hand_xml())
    assert [m.joint(i).name for i in range(m.njnt)] == [f"hand/{n}" for n in HAND_JOINT_NAMES]
    assert [m.actuator(i).name for i in range(m.nu)] == [f"hand/{n}" for n in HAND_JOINT_NAMES]
    assert np.allclose(m.jnt_range[:, 0], HAND_LOWER) and np.allclose(m.jnt_range[:, 1], HAND_UPPER)
    assert np.all(HAND_LOWER < 0) and np.all(HAND_UPPER > 0)  # 0 = flat open hand is inside the range
    assert HAND_LOWER[0] == -1.047 and HAND_UPPER[13] == 2.443  # LEAP sim limits


def test_hand_servos_close_the_fingers_towards_the_palm():
    m = mujoco.MjModel.from_xml_string(standalone_hand_xml())
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    tips = [m.site(f"hand/{f}_tip").id for f in ("index", "middle", "ring")]
    open_x = d.site_xpos[tips, 0].copy()
    target = np.where(np.char.endswith(np.array(HAND_JOINT_NAMES), "side"), 0.0, 0.5 * HAND_UPPER)
    d.ctrl[:] = target
    mujoco.mj_step(m, d, 400)
    assert np.abs(d.qpos - target).max() < 0.01
    assert np.all(d.site_xpos[tips, 0] > open_x + 0.03)  # fingertips moved towards the palm normal (+x)
    assert sum(d.warning[i].number for i in range(len(d.warning))) == 0


def test_ik_reaches_reachable_poses_within_1mm_and_1deg(arm):
    d = mujoco.MjData(arm)
    d.qpos[:6] = HOME
    site = arm.site("arm/flange").id
    rng = np.random.default_rng(2)
    iters, t0, n = [], time.perf_counter(), 20
    for k in range(n):
        q_true = np.clip(HOME + rng.uniform(-0.7, 0.7, 6), LOWER, UPPER)
        T = flange_pose(q_true)
        res = solve_ik(arm, d, "arm/flange", T[:3, 3], T[:3, :3], joints=ARM_JOINTS, seed=k)
        check = mujoco.MjData(arm)
        check.qpos[:6] = res.q
        mujoco.mj_kinematics(arm, check)
        assert res.success
        assert np.linalg.norm(check.site_xpos[site] - T[:3, 3]) < 1e-3
        assert np.degrees(rotation_angle_between(check.site_xmat[site].reshape(3, 3), T[:3, :3])) < 1.0
        assert np.all(res.q >= LOWER - 1e-12) and np.all(res.q <= UPPER + 1e-12)
        iters.append(res.iterations)
    assert np.mean(iters) < 100 and (time.perf_counter() - t0) / n < 0.5
    assert np.all(d.qpos[:6] == HOME)  # the caller's data is untouched


def test_ik_reports_failure_for_unreachable_targets_and_bad_input(arm):
    d = mujoco.MjData(arm)
    res = solve_ik(arm, d, "arm/flange", [2.0, 0.0, 0.3], joints=ARM_JOINTS, restarts=1, max_iters=60)
    assert not res.success and res.pos_error > 0.5
    with pytest.raises(KeyError, match="no site named 'nope'"):
        solve_ik(arm, d, "nope", [0.3, 0, 0.3])
    with pytest.raises(ValueError, match="rotation"):
        solve_ik(arm, d, "arm/flange", [0.3, 0, 0.3], np.ones((3, 3)))
