"""Damped-least-squares inverse kinematics for a MuJoCo site (used by the simulated arm).

:func:`solve_ik` moves a chosen set of hinge/slide joints so that a site reaches a target position
(metres) and orientation (3×3 rotation matrix), both in the **world frame** of the model (in the robot
scene the world frame is the robot base frame). Joint limits are respected by clamping every step;
optional random restarts escape bad local minima. The caller's ``MjData`` is never modified.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deft_core.geometry import matrix_to_axis_angle


@dataclass(frozen=True)
class IKResult:
    """``q``: joint angles for ``joints`` (rad / m); ``pos_error`` m; ``rot_error`` rad; ``iterations`` total."""

    q: np.ndarray
    success: bool
    pos_error: float
    rot_error: float
    iterations: int


def _require_mujoco():
    try:
        import mujoco
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the MuJoCo world needs mujoco: pip install 'deft[sim]'") from exc
    return mujoco


def solve_ik(model, data, site: str, target_pos, target_rot=None, joints=None, q_init=None,
             max_iters: int = 150, tol_pos: float = 2e-4, tol_rot: float = np.radians(0.2),
             damping: float = 0.02, rot_weight: float = 0.3, max_step: float = 0.2,
             restarts: int = 4, seed: int = 0) -> IKResult:
    """Solve for the joint positions that put ``site`` at ``target_pos`` (and ``target_rot`` if given).

    ``joints``: joint names to move (default: every hinge/slide joint). ``q_init``: start (default:
    the joints' current values in ``data``). ``rot_weight`` (m/rad) trades orientation against
    position error in the least-squares step; ``damping`` is the DLS λ; ``max_step`` caps the joint
    step norm (rad). If a run fails, up to ``restarts`` more start from uniformly random joint values
    within limits (seeded by ``seed``). Returns the best result found.
    """
    mujoco = _require_mujoco()
    try:
        site_id = model.site(site).id
    except KeyError:
        raise KeyError(f"IK: the model has no site named {site!r}") from None
    if joints is None:
        jids = [j for j in range(model.njnt) if model.jnt_type[j] in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)]
    else:
        jids = []
        for name in joints:
            try:
                jids.append(model.joint(name).id)
            except KeyError:
                raise KeyError(f"IK: the model has no joint named {name!r}") from None
    qadr = np.array([model.jnt_qposadr[j] for j in jids])
    dadr = np.array([model.jnt_dofadr[j] for j in jids])
    lo = np.where(model.jnt_limited[jids], model.jnt_range[jids, 0], -np.inf)
    hi = np.where(model.jnt_limited[jids], model.jnt_range[jids, 1], np.inf)
    target_pos = np.asarray(target_pos, dtype=np.float64)
    if target_pos.shape != (3,) or not np.all(np.isfinite(target_pos)):
        raise ValueError(f"IK target position must be 3 finite numbers (m), got {target_pos}")
    if target_rot is not None:
        target_rot = np.asarray(target_rot, dtype=np.float64)
        if target_rot.shape != (3, 3) or not np.allclose(target_rot @ target_rot.T, np.eye(3), atol=1e-6):
            raise ValueError("IK target rotation must be a 3×3 rotation matrix")

    scratch = mujoco.MjData(model)
    scratch.qpos[:] = data.qpos
    n = len(jids)
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    rng = np.random.default_rng(seed)
    start = np.asarray(q_init, dtype=np.float64) if q_init is not None else data.qpos[qadr].copy()
    best, total = None, 0

    for attempt in range(restarts + 1):
        q = np.clip(start, lo, hi) if attempt == 0 else rng.uniform(np.maximum(lo, -np.pi), np.minimum(hi, np.pi))
        for it in range(max_iters):
            scratch.qpos[qadr] = q
            mujoco.mj_kinematics(model, scratch)
            mujoco.mj_comPos(model, scratch)
            e_pos = target_pos - scratch.site_xpos[site_id]
            if target_rot is not None:
                R = scratch.site_xmat[site_id].reshape(3, 3)
                e_rot = matrix_to_axis_angle(target_rot @ R.T)
            else:
                e_rot = np.zeros(3)
            pe, re = float(np.linalg.norm(e_pos)), float(np.linalg.norm(e_rot))
            total += 1
            if best is None or pe + rot_weight * re < best.pos_error + rot_weight * best.rot_error:
                best = IKResult(q.copy(), False, pe, re, total)
            if pe < tol_pos and re < tol_rot:
                return IKResult(q.copy(), True, pe, re, total)
            mujoco.mj_jacSite(model, scratch, jacp, jacr, site_id)
            if target_rot is not None:
                J = np.vstack([jacp[:, dadr], rot_weight * jacr[:, dadr]])
                e = np.concatenate([e_pos, rot_weight * e_rot])
            else:
                J, e = jacp[:, dadr], e_pos
            dq = J.T @ np.linalg.solve(J @ J.T + damping ** 2 * np.eye(J.shape[0]), e)
            norm = np.linalg.norm(dq)
            if norm > max_step:
                dq *= max_step / norm
            q = np.clip(q + dq, lo, hi)
    assert best is not None and n > 0
    return IKResult(best.q, False, best.pos_error, best.rot_error, total)
