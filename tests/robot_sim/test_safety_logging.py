"""Safety clamp logging: the expected per-command step/speed limiting of long moves logs at DEBUG (it
happens on every transit); a target outside the workspace box or below the table stays a WARNING."""

import logging

import numpy as np

from robot.base import Pose
from robot.safety import ArmSafety

DOWN = [np.pi, 0.0, 0.0]


def _warnings(caplog):
    return [r for r in caplog.records if r.name == "robot.safety" and r.levelno >= logging.WARNING]


def test_step_and_speed_limiting_is_debug_only(caplog):
    s = ArmSafety()
    cur = Pose.from_euler_xyz([0.3, 0.0, 0.2], DOWN)
    with caplog.at_level(logging.DEBUG, logger="robot.safety"):
        cmd = s.limit(Pose.from_euler_xyz([0.45, 0.0, 0.2], [np.pi, 0.0, 1.2]), cur, speed_m_s=1.0)
    assert {c.split(":")[0] for c in cmd.clamps} == {"step", "rot_step", "speed"}
    assert not _warnings(caplog)
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 3


def test_workspace_and_table_clamps_warn(caplog):
    s = ArmSafety(max_step_m=10.0)
    cur = Pose.from_euler_xyz([0.3, 0.0, 0.2], DOWN)
    with caplog.at_level(logging.DEBUG, logger="robot.safety"):
        s.limit(Pose.from_euler_xyz([0.3, 0.0, -0.05], DOWN), cur)
        s.limit(Pose.from_euler_xyz([0.3, 0.9, 0.2], DOWN), cur)
    msgs = [r.getMessage() for r in _warnings(caplog)]
    assert len(msgs) == 2 and "table" in msgs[0] and "workspace: y" in msgs[1]
