"""Thumb opposition of the robot hand: flat at 0 (thumb in the palm plane), and flexing the thumb brings
its tip in front of the palm, across it, to the curled index/middle fingertips (a pinch is possible) —
which a thumb that flexes straight out of the palm (no opposition) cannot do as closely."""

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")

import deft_core.world.robot_hand as rh  # noqa: E402
from robot.sim.oracle import POWER_GRASP  # noqa: E402


def _tips(q, opposition=None):
    old = rh.THUMB_OPPOSITION
    try:
        if opposition is not None:
            rh.THUMB_OPPOSITION = opposition
        m = mujoco.MjModel.from_xml_string(rh.standalone_hand_xml())
    finally:
        rh.THUMB_OPPOSITION = old
    d = mujoco.MjData(m)
    d.qpos[:] = q
    mujoco.mj_kinematics(m, d)
    p, R = d.site("hand/palm_center").xpos, d.site("hand/palm_center").xmat.reshape(3, 3)
    return {f: R.T @ (d.site(f"hand/{f}_tip").xpos - p) for f in ("index", "middle", "ring", "thumb")}


def test_flat_hand_has_the_thumb_in_the_palm_plane_on_the_minus_y_side():
    t = _tips(np.zeros(16))
    assert abs(t["thumb"][2]) < 0.015 and t["thumb"][1] < -0.08  # palm_center y points away from the thumb
    assert all(abs(t[f][2]) < 0.02 and t[f][0] > 0.12 for f in ("index", "middle", "ring"))


def test_power_grasp_thumb_opposes_the_fingers():
    t = _tips(POWER_GRASP)
    assert t["thumb"][2] > 0.04  # in front of the palm
    assert t["thumb"][1] > -0.01  # across the palm's midline, not off its side
    gap = min(np.linalg.norm(t["thumb"] - t["index"]), np.linalg.norm(t["thumb"] - t["middle"]))
    assert gap < 0.06


def test_pinch_reaches_closer_with_opposition():
    q = np.zeros(16)
    q[1:4] = q[5:8] = [0.9, 0.7, 0.5]  # index and middle curled; thumb CMC-side at 0

    def best(opp):
        g = 1.0
        for cf in np.linspace(0.0, 2.4, 13):
            for mcp in np.linspace(0.0, 1.8, 7):
                q[12:16] = [0.0, cf, mcp, 0.3]
                t = _tips(q, opp)
                g = min(g, np.linalg.norm(t["thumb"] - t["index"]), np.linalg.norm(t["thumb"] - t["middle"]))
        return g

    with_opposition, without = best(rh.THUMB_OPPOSITION), best(0.0)
    assert with_opposition < 0.025 and without > 2 * with_opposition  # measured: 2.2 cm vs 7.0 cm
