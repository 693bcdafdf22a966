"""Grasp executor against the fake backends: poses, phase order, squeeze margin, τ execution, safety."""

import numpy as np
import pytest

from deft_core.geometry import euler_xyz_to_matrix, matrix_to_euler_xyz
from deft_core.grasp import GraspParams
from deft_core.trajectory import PostGraspTrajectory
from robot.backends.fake import FakeArm, FakeHand
from robot.executor import FLEXION_JOINTS, ExecutorConfig, GraspExecutor, closing_target, grasp_poses


def _grasp(theta=(np.pi, 0.0, 0.3)):
    return GraspParams(mu=np.array([0.45, 0.05, 0.06]), theta=np.array(theta), hand=np.full(16, 0.4))


def test_grasp_poses_follow_the_approach_axis_and_contact_offset():
    cfg = ExecutorConfig(approach_axis=(0, 0, 1), contact_offset=(0.0, 0.0, 0.10), pregrasp_distance_m=0.05)
    g = _grasp()
    grasp, pre = grasp_poses(g, cfg)
    R = euler_xyz_to_matrix(g.theta)
    np.testing.assert_allclose(grasp.position + R @ [0, 0, 0.10], g.mu, atol=1e-12)  # μ sits at the contact offset
    # θ = (π, 0, ·): wrist z points down, so the pre-grasp is 5 cm above the grasp pose
    np.testing.assert_allclose(pre.position - grasp.position, [0, 0, 0.05], atol=1e-12)
    np.testing.assert_allclose(grasp.rotation, R)


def test_closing_target_adds_squeeze_on_flexion_joints_only():
    q = closing_target(np.zeros(16), 0.2)
    assert len(FLEXION_JOINTS) == 12
    assert np.all(q[list(FLEXION_JOINTS)] == 0.2)
    assert np.all(q[[0, 4, 8, 12]] == 0.0)  # side joints untouched


def test_execute_runs_phases_and_trajectory_on_fake_devices():
    arm, hand = FakeArm(), FakeHand()
    events = []
    cfg = ExecutorConfig(contact_offset=(0, 0, 0.1), settle_s=0.0, close_time_s=0.01)
    deltas = np.zeros((40, 6))
    deltas[:, 2] = 0.004
    deltas[:, 3] = 0.01
    with arm, hand:
        rep = GraspExecutor(arm, hand, cfg, on_event=lambda p, i: events.append((p, i))).execute(_grasp(), PostGraspTrajectory(deltas))
        final = arm.get_state().pose
        np.testing.assert_allclose(hand.read().joints, closing_target(np.full(16, 0.4), 0.2))
    assert [p.name for p in rep.phases] == ["open", "hover", "pregrasp", "approach", "close", "trajectory"]
    assert [e for e in events if e[0] == "trajectory"] == [("trajectory", k) for k in range(1, 41)]
    np.testing.assert_allclose(final.position, rep.grasp_pose.position + [0, 0, 0.16], atol=1e-9)
    e_end = matrix_to_euler_xyz(final.rotation)
    np.testing.assert_allclose(e_end[0], np.pi - 2 * np.pi + 0.4, atol=1e-6)  # roll π + 0.4 wraps to −π + 0.4
    approach = [c for c in rep.arm_commands if c["phase"] == "approach"]
    np.testing.assert_allclose(approach[-1]["commanded"], rep.grasp_pose.position, atol=1e-9)
    assert not rep.clamped


def test_execute_reports_safety_clamps_below_the_table():
    arm, hand = FakeArm(), FakeHand()
    g = GraspParams(mu=np.array([0.45, 0.0, -0.05]), theta=np.array([np.pi, 0, 0]), hand=np.zeros(16))
    with arm, hand:
        rep = GraspExecutor(arm, hand, ExecutorConfig(settle_s=0.0, close_time_s=0.01)).execute(g, PostGraspTrajectory(np.zeros((40, 6))))
        assert arm.get_state().pose.position[2] >= arm.safety.floor_z - 1e-12
    assert rep.clamped
    assert any(c.startswith("table") for cmd in rep.arm_commands for c in cmd["clamps"])


@pytest.mark.parametrize("bad", [dict(approach_axis=(0, 0, 0)), dict(pregrasp_distance_m=0), dict(close_steps=0)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        ExecutorConfig(**bad)
