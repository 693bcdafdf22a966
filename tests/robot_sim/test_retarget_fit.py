"""The simulator's thumb retargeting calibration (robot/sim/retarget_fit.py): re-fitting reproduces the
stored offsets, the fit brings the robot thumb's chain close to the human one (also on held-out postures),
and it moves only the thumb. That the simulator's affordance prior uses it is checked in test_sim_env.py."""

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
