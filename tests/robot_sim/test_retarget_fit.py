"""The simulator's thumb retargeting calibration (robot/sim/retarget_fit.py): re-fitting reproduces the
stored offsets, the fit brings the robot thumb's chain close to the human one (also on held-out postures),
and it moves only the thumb; the fingertip retargeter (built on it) brings the robot's fingertips near the
human's. That the simulator's affordance prior uses the latter is checked in test_sim_env.py."""

import numpy as np
import pytest

pytest.importorskip("mujoco")
pytest.importorskip("scipy")

from deft_core.retarget import RetargetConfig, mano_to_hand  # noqa: E402
from robot.sim import retarget_fit as rf  # noqa: E402


def test_refit_reproduces_the_stored_offsets_and_halves_the_chain_error():
    r = rf.fit_thumb_offsets()
    np.testing.assert_allclose(r["offset"], rf.SIM_THUMB_OFFSET, atol=0.02)
    assert r["rms_fitted_m"] < 0.6 * r["rms_identity_m"]
    # the thumb tip lands within 2 cm of the (scaled) human thumb tip, against > 4 cm with the identity map
    assert r["tip_error_fitted_m"] < 0.02 < 0.04 < r["tip_error_identity_m"]


def test_fit_is_evaluated_on_postures_it_was_not_fitted_on():
    """Held-out postures (another seed) score as well as the fitted ones: the offsets are not overfitted."""
    fk = rf._RobotHandFK()
    held = rf.calibration_postures(100, seed=7)
    humans = [rf.human_chain(a, fk.length) for a in held]
    rms = lambda off: float(np.sqrt(np.mean(rf._residuals(np.asarray(off, float), fk, held, humans) ** 2)))  # noqa: E731
    assert rms(rf.SIM_THUMB_OFFSET) < 0.6 * rms(np.zeros(4))


def test_the_sim_config_only_moves_the_thumb():
    cfg = rf.sim_retarget_config()
    pose = np.random.default_rng(0).normal(0, 0.3, 45)
    a, b = mano_to_hand(pose, RetargetConfig()), mano_to_hand(pose, cfg)
    np.testing.assert_array_equal(a[:12], b[:12])
    assert not np.allclose(a[12:], b[12:])


def _flexed(mcp, pip, dip, thumb=(0.3, 0.3, 0.3)):
    from deft_core import mano

    a = np.zeros((15, 3))
    for row in (0, 3, 6, 9):
        a[row, 2], a[row + 1, 2], a[row + 2, 2] = mcp, pip, dip
    a[12, 2], a[13, 2], a[14, 2] = thumb
    return mano.anatomical_to_pose(a)


def test_fingertip_retargeting_puts_the_robot_tips_nearer_the_human_ones():
    """The human claw of a spherical grasp: the joint map leaves the (longer) robot fingertips far from
    the human's; the fingertip solve brings them much closer, within the joint limits."""
    rt = rf.FingertipRetargeter()
    pose = _flexed(0.6, 1.4, 0.9)
    tips, _ = rt.human_points(pose)
    q_map = np.clip(mano_to_hand(pose, rf.sim_retarget_config()), rt.lower, rt.upper)
    q = rt(pose)
    err = lambda qq: np.linalg.norm(rt.robot_points(qq)[0] - tips, axis=1)  # noqa: E731
    assert np.all(q >= rt.lower - 1e-9) and np.all(q <= rt.upper + 1e-9)
    assert err(q).mean() < 0.5 * err(q_map).mean()
    assert err(q)[:3].max() < 0.02  # the three fingers' tips within 2 cm of the human's


def test_fingertip_retargeting_is_deterministic_and_validates_input():
    rt = rf.sim_retargeter()
    assert rt is rf.sim_retargeter()
    pose = _flexed(0.9, 0.8, 0.4)
    np.testing.assert_array_equal(rt(pose), rt(pose))
    with pytest.raises(ValueError, match="45"):
        rt(np.zeros(44))
    with pytest.raises(ValueError, match="finite"):
        rt(np.full(45, np.nan))


def test_a_callable_retargeter_is_used_by_affordance_to_grasp():
    from deft_core.retarget import affordance_to_grasp

    depth = np.full((40, 60), 0.5)
    K = np.array([[50.0, 0, 30], [0, 50.0, 20], [0, 0, 1]])
    pred = {"contact_pixel": [30, 20], "wrist_rotation": [0, 0, 0], "hand_pose": np.zeros(45)}
    g = affordance_to_grasp(pred, depth, K, np.eye(4), retarget=lambda p: np.full(16, 0.25))
    np.testing.assert_array_equal(g.hand, np.full(16, 0.25))
