"""Kinematic calibration of the thumb's retargeting for the simulated robot hand.

Appendix C maps MANO's anatomical angles onto the robot hand joint for joint (``q = scale · angle +
offset``, :class:`deft_core.retarget.RetargetConfig`) and notes that the thumb "does not have
anatomically the same structure". With the identity map (scale 1, offset 0) our procedural hand's thumb
tip lands a median 5.8 cm from where a human thumb of the same posture would be (over the calibration
postures below): a human thumb at MANO's zero already sits differently from the robot's flat thumb, so a
human grasp's thumb ends up beside the object instead of opposite the fingers. After the fit: 1.4 cm.

:func:`fit_thumb_offsets` fixes the four thumb offsets (CMC-side, CMC-forward, MCP, IP) by least squares
so that the robot thumb's chain matches the human one over a seeded spread of human hand postures
(:func:`calibration_postures`, generic ranges, not the synthetic generator's grasps): the thumb's MCP,
IP and tip positions and the thumb-tip → index-tip and thumb-tip → middle-tip vectors, each in the palm
frame (x fingers, y away from the thumb, z palm normal, through :data:`robot.sim_env.R_MANO_ROBOT`),
relative to the middle finger's MCP, the human hand scaled to the robot hand's wrist → middle-MCP length.
Only hand kinematics go in: no task, no success rate.

The result is stored as :data:`SIM_THUMB_OFFSET` (:func:`sim_retarget_config`) and a test re-fits it.
Since 2026-11-26 the simulator's affordance prior goes one step further (:class:`FingertipRetargeter`,
:func:`sim_retargeter`): it solves for the joints that put the robot's fingertips at the human's, and
uses this joint map only as the start and a weak prior of that solve. For a lab hand, fit the same way
against its own model, or tune ``RetargetConfig`` by hand as LEAP's authors advise.
"""

from __future__ import annotations

import numpy as np

from deft_core.retarget import RetargetConfig, anatomical_to_hand

#: fitted thumb offsets (rad; CMC-side, CMC-forward, MCP, IP) for ``deft_core.world.robot_hand``,
#: reproduced by ``fit_thumb_offsets()`` (tests/robot_sim/test_retarget_fit.py)
SIM_THUMB_OFFSET = np.array([-0.36, 0.36, 0.59, -0.41])

_THUMB = slice(12, 16)


def _thumb_config(thumb_offset) -> RetargetConfig:
    """Identity retargeting for the fingers, ``thumb_offset`` (4, rad) on the thumb's joints."""
    offset = np.zeros(16)
    offset[_THUMB] = thumb_offset
    return RetargetConfig(offset=offset)


def sim_retarget_config() -> RetargetConfig:
    """The retargeting used for the simulated robot hand: identity for the fingers, the fitted thumb offsets."""
    return _thumb_config(SIM_THUMB_OFFSET)


def calibration_postures(n: int = 200, seed: int = 0) -> np.ndarray:
    """(n, 15, 3) human postures (anatomical ``[twist, spread, bend]``, MANO joint order) spanning open
    hands to grasps: per finger, bends uniform in [0, 1.4] (MCP), [0, 1.6] (PIP), [0, 1.0] (DIP); MCP
    spreads in ±0.2; thumb spread in [−0.6, 0.3] and bends in [0, 1.2], [0, 0.9], [0, 0.9]."""
    rng = np.random.default_rng(seed)
    a = np.zeros((n, 15, 3))
    for mcp in (0, 3, 6, 9):  # index, middle, pinky, ring
        a[:, mcp, 1] = rng.uniform(-0.2, 0.2, n)
        a[:, mcp, 2] = rng.uniform(0.0, 1.4, n)
        a[:, mcp + 1, 2] = rng.uniform(0.0, 1.6, n)
        a[:, mcp + 2, 2] = rng.uniform(0.0, 1.0, n)
    a[:, 12, 1] = rng.uniform(-0.6, 0.3, n)
    a[:, 12, 2] = rng.uniform(0.0, 1.2, n)
    a[:, 13, 2] = rng.uniform(0.0, 0.9, n)
    a[:, 14, 2] = rng.uniform(0.0, 0.9, n)
    return a


class _RobotHandFK:
    """Forward kinematics of the procedural robot hand (MuJoCo, hand alone)."""

    def __init__(self):
        import mujoco

        from deft_core.grasp import HAND_JOINT_NAMES
        from deft_core.world.robot_hand import standalone_hand_xml

        self._mj = mujoco
        self.model = mujoco.MjModel.from_xml_string(standalone_hand_xml("h/"))
        self.data = mujoco.MjData(self.model)
        self.qadr = [int(self.model.jnt_qposadr[self.model.joint(f"h/{n}").id]) for n in HAND_JOINT_NAMES]
        self.data.qpos[:] = 0
        self._mj.mj_kinematics(self.model, self.data)
        self.length = float(np.linalg.norm(self.data.body("h/middle_mcp_side_link").xpos - self.data.body("h/mount").xpos))

    def pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Put the hand at joints ``q`` (all else 0) and return the palm frame (``R``, columns = palm axes)
        and its origin for :meth:`chain`-style points, the middle finger's MCP; ``(p - ref) @ R`` expresses
        a world point ``p`` in that frame."""
        d = self.data
        d.qpos[:] = 0
        d.qpos[self.qadr] = q
        self._mj.mj_kinematics(self.model, d)
        return d.site("h/palm_center").xmat.reshape(3, 3), d.body("h/middle_mcp_side_link").xpos.copy()

    def chain(self, q: np.ndarray) -> np.ndarray:
        """(5, 3): thumb MCP, IP, tip, index tip, middle tip in the palm frame, relative to the middle MCP."""
        R, ref = self.pose(q)
        d = self.data
        pts = [d.body("h/thumb_pip_link").xpos, d.body("h/thumb_dip_link").xpos, d.site("h/thumb_tip").xpos,
               d.site("h/index_tip").xpos, d.site("h/middle_tip").xpos]
        return (np.array(pts) - ref) @ R


def _human_palm_points(pose45: np.ndarray, rows) -> np.ndarray:
    """MANO-21 ``rows`` of the template hand in ``pose45``, in the robot palm frame relative to the middle
    MCP (metres, template size); the columns of ``R_MANO_ROBOT`` are the palm-frame axes in MANO's frame."""
    from deft_core import mano
    from robot.sim_env import R_MANO_ROBOT

    J = mano.mano_joint_positions(np.concatenate([np.zeros(3), np.asarray(pose45, dtype=np.float64)]))
    return (J[list(rows)] - J[4]) @ R_MANO_ROBOT


def human_chain(angles: np.ndarray, length: float) -> np.ndarray:
    """(5, 3): the MANO template hand's thumb MCP (thumb2), IP (thumb3), tip, index tip and middle tip for
    ``angles`` (15, 3), in the robot palm frame, relative to the middle MCP, scaled so that the wrist →
    middle-MCP distance is ``length`` (m)."""
    from deft_core import mano

    scale = length / float(np.linalg.norm(mano.TEMPLATE_JOINTS[4] - mano.TEMPLATE_JOINTS[0]))
    return _human_palm_points(mano.anatomical_to_pose(angles), (14, 15, 16, 17, 18)) * scale


def _residuals(offset: np.ndarray, fk: _RobotHandFK, postures, humans) -> np.ndarray:
    cfg = _thumb_config(offset)
    out = []
    for a, h in zip(postures, humans):
        r = fk.chain(anatomical_to_hand(a, cfg))
        out += [r[0] - h[0], r[1] - h[1], r[2] - h[2], (r[2] - r[3]) - (h[2] - h[3]), (r[2] - r[4]) - (h[2] - h[4])]
    return np.concatenate(out)


def fit_thumb_offsets(postures: np.ndarray | None = None) -> dict:
    """Least-squares thumb offsets (see the module docstring). Returns ``{"offset": (4,), "rms_identity_m",
    "rms_fitted_m", "tip_error_identity_m", "tip_error_fitted_m"}`` (median thumb-tip distances)."""
    from scipy.optimize import least_squares

    fk = _RobotHandFK()
    postures = calibration_postures() if postures is None else np.asarray(postures, dtype=np.float64)
    humans = [human_chain(a, fk.length) for a in postures]
    x0 = np.zeros(4)
    fit = least_squares(_residuals, x0, args=(fk, postures, humans), bounds=(-1.5, 1.5))

    def tip_error(offset):
        cfg = _thumb_config(offset)
        return float(np.median([np.linalg.norm(fk.chain(anatomical_to_hand(a, cfg))[2] - h[2]) for a, h in zip(postures, humans)]))

    rms = lambda r: float(np.sqrt(np.mean(np.square(r))))  # noqa: E731
    return {"offset": fit.x, "rms_identity_m": rms(_residuals(x0, fk, postures, humans)), "rms_fitted_m": rms(fit.fun),
            "tip_error_identity_m": tip_error(x0), "tip_error_fitted_m": tip_error(fit.x)}


# ------------------------------------------------------------------ fingertip retargeting

#: weights of :class:`FingertipRetargeter`'s least squares: DIP (thumb: IP) joint positions against the
#: fingertips (1), and a pull towards the joint map's angles in metres per radian (1 rad off costs like 1 cm)
TIP_DIP_WEIGHT, TIP_PRIOR_WEIGHT = 0.3, 0.01
_ROBOT_TIPS = ("index_tip", "middle_tip", "ring_tip", "thumb_tip")
_ROBOT_DIPS = ("index_dip_link", "middle_dip_link", "ring_dip_link", "thumb_dip_link")
_HUMAN_TIPS = (17, 18, 19, 16)  # MANO-21 rows: index, middle, ring, thumb tips
_HUMAN_DIPS = (3, 6, 12, 15)    # index3, middle3, ring3, thumb3 (the thumb's IP)


class FingertipRetargeter:
    """MANO pose (45) → robot hand joints (16) that put the robot's fingertips where the human's are.

    Appendix C maps joint to joint and says why that suffices there: the paper's hand is "similar in
    anatomy and size to a human hand". Ours is 1.32× a human's (wrist → middle MCP 12.5 cm against MANO's
    9.5 cm), so the same angles put its longer fingers elsewhere (the learned lemon claw, copied joint for
    joint, failed on every scene; the oracle's fingers on the same pose succeeded). Like the energy-function retargeting the paper mentions (and
    LEAP Hand's own teleoperation), this solves, by bounded least squares over the 16 joints, for the
    robot fingertips and DIP joints (thumb: tip and IP) at the human's positions — human at MANO's template
    size, both hands in the palm frame (through :data:`robot.sim_env.R_MANO_ROBOT`) with their middle-finger
    MCPs superposed — plus a weak pull towards the joint map (``joint_map``, default
    :func:`sim_retarget_config`), which also starts the solve. Units: metres, radians; output clipped to
    the hand's limits. Measured (docs/robot-sim.md): the affordance prior alone on 30 scenes × 5 tasks × 2
    object splits, 130 → 160 and 154 → 165 successes of 300 with two trained models; worse on open drawer."""

    def __init__(self, joint_map: RetargetConfig | None = None):
        from deft_core.retarget import hand_joint_limits

        self.fk = _RobotHandFK()
        self.joint_map = joint_map or sim_retarget_config()
        self.lower, self.upper = hand_joint_limits()
        self._tips = [self.fk.model.site(f"h/{n}").id for n in _ROBOT_TIPS]
        self._dips = [self.fk.model.body(f"h/{n}").id for n in _ROBOT_DIPS]

    def robot_points(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(4, 3) fingertips and (4, 3) DIP joints (index, middle, ring, thumb) for joints ``q``, in the palm
        frame relative to the middle finger's MCP."""
        R, ref = self.fk.pose(q)
        d = self.fk.data
        return (d.site_xpos[self._tips] - ref) @ R, (d.xpos[self._dips] - ref) @ R

    @staticmethod
    def human_points(pose45: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The same points of MANO's template hand in ``pose45``, in the robot palm frame, metres."""
        return _human_palm_points(pose45, _HUMAN_TIPS), _human_palm_points(pose45, _HUMAN_DIPS)

    def __call__(self, pose45: np.ndarray) -> np.ndarray:
        from scipy.optimize import least_squares

        from deft_core.retarget import mano_to_hand

        pose45 = np.asarray(pose45, dtype=np.float64).reshape(-1)
        if pose45.shape != (45,) or not np.all(np.isfinite(pose45)):
            raise ValueError(f"a MANO hand pose is 45 finite values, got shape {pose45.shape}")
        q0 = np.clip(mano_to_hand(pose45, self.joint_map), self.lower, self.upper)
        tips, dips = self.human_points(pose45)

        def residuals(q):
            rt, rd = self.robot_points(q)
            return np.concatenate([(rt - tips).ravel(), TIP_DIP_WEIGHT * (rd - dips).ravel(), TIP_PRIOR_WEIGHT * (q - q0)])

        return np.clip(least_squares(residuals, q0, bounds=(self.lower, self.upper)).x, self.lower, self.upper)


_SIM_RETARGETER: FingertipRetargeter | None = None


def sim_retargeter() -> FingertipRetargeter:
    """The simulator's MANO → hand retargeting (one shared :class:`FingertipRetargeter`)."""
    global _SIM_RETARGETER
    if _SIM_RETARGETER is None:
        _SIM_RETARGETER = FingertipRetargeter()
    return _SIM_RETARGETER


if __name__ == "__main__":  # python -m robot.sim.retarget_fit
    r = fit_thumb_offsets()
    print({k: (np.round(v, 3).tolist() if isinstance(v, np.ndarray) else round(v, 4)) for k, v in r.items()})
