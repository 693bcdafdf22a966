"""A scripted grasp prior from the objects' grasp-region sites (``--params auto``): an oracle for quick
tries and the hand-tuned starting points of the tests, not a learned model.

Grasp frame from a site (origin on the surface, z = outward normal ``n``, x = the region's long axis
``a``): the palm faces the surface (wrist z = −n), the fingers point along ``a`` turned by ``phi``
about ``n`` (wrist x), wrist y = z × x (the side away from the thumb). μ = site + ``along``·(finger direction) +
``lift``·(base z). The hand closes to a power-grasp posture scaled by ``closure`` (0 = flat, 1 = the
posture below). See docs/robot-sim.md for the wrist/palm convention.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from deft_core.geometry import axis_angle_to_matrix, matrix_to_euler_xyz
from deft_core.grasp import GraspParams

#: power-grasp posture (rad, HAND_JOINT_NAMES order) that ``closure`` scales
POWER_GRASP = np.array([0.0, 1.2, 1.0, 0.6] * 3 + [1.3, 0.6, 0.6, 0.5])


@dataclass(frozen=True)
class SiteGrasp:
    """Parameters of a site-relative grasp (m, rad)."""

    region: str
    phi: float = 0.0
    along: float = 0.0
    lift: float = 0.0
    closure: float = 1.0
    tilt: float = 0.0  #: extra rotation of the wrist about its y axis, rad
    posture: tuple | None = None  #: 16 hand joints (rad) replacing POWER_GRASP (still scaled by ``closure``)
    #: max turn (rad) of the site about the object's vertical axis when the grasp is out of the arm's reach
    #: (round objects: a cup's body site is opposite its handle and may face away from the arm); the
    #: smallest turn whose hover and grasp poses the IK reaches is used; 0 = use the site as is
    reach_turn: float = 0.0
    #: grasp the opposite side of a handle (radius ``flip`` m): the site frame turned by π about its x
    #: axis and moved through the handle (a steep handle's "upper" side faces away from the robot); 0 = off
    flip: float = 0.0


#: per task: the oracle grasp (tuned in simulation; see tests/robot_sim/fixtures)
ORACLE: dict[str, SiteGrasp] = {
    "pick_cup": SiteGrasp("body", phi=-np.pi / 2, along=0.02, reach_turn=np.pi / 2),
    "pour_cup": SiteGrasp("body", phi=-np.pi / 2, along=0.02, reach_turn=np.pi / 2),
    "open_drawer": SiteGrasp("handle", phi=np.pi),
    "pick_spoon": SiteGrasp("handle", phi=-0.25, along=-0.01, lift=0.01, closure=0.8),
    "scoop_grape": SiteGrasp("handle_back", phi=-0.25, along=-0.01, lift=0.01, closure=0.8),
    "stir_spoon": SiteGrasp("handle_back", phi=np.pi / 2, along=-0.065, closure=1.6, flip=0.006),
    "pick_grape": SiteGrasp("body", phi=-0.25, along=-0.01, lift=0.01, closure=1.1),
    "flip_bagel": SiteGrasp("handle", phi=-0.25, along=-0.01, lift=0.01, closure=0.8),
    "squeeze_lemon": SiteGrasp("top", phi=-0.25, lift=-0.01),
}


def site_grasp(site_pos, site_R, g: SiteGrasp) -> GraspParams:
    """ξ (base frame) for a site pose (``site_pos`` m, ``site_R`` 3×3) and grasp parameters ``g``."""
    R_site = np.asarray(site_R, dtype=np.float64)
    n, a = R_site[:, 2], R_site[:, 0]
    x = axis_angle_to_matrix(n * g.phi) @ a
    z = -n
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=1)
    if g.tilt:
        R = R @ axis_angle_to_matrix(np.array([0.0, g.tilt, 0.0]))
    mu = np.asarray(site_pos, dtype=np.float64) + g.along * R[:, 0] + np.array([0.0, 0.0, g.lift])
    posture = POWER_GRASP if g.posture is None else np.asarray(g.posture, dtype=np.float64)
    return GraspParams(mu=mu, theta=matrix_to_euler_xyz(R), hand=posture * g.closure)


def oracle_grasp(world, task: str | None = None, g: SiteGrasp | None = None) -> GraspParams:
    """The oracle ξ for the world's current task (``g`` overrides the task's default)."""
    task = task or world.task
    g = g or ORACLE[task]
    obj = world.info.objects["object"]
    if g.region not in obj.mjcf.sites:
        raise KeyError(f"object {obj.variant!r} has no grasp region {g.region!r}; it has {sorted(obj.mjcf.sites)}")
    p, R = world.site_pose(obj.mjcf.sites[g.region])
    if g.flip > 0:
        p, R = p - 2 * g.flip * R[:, 2], R @ np.diag([1.0, -1.0, -1.0])
    if g.reach_turn <= 0:
        return site_grasp(p, R, g)
    centre = world.body_pose(obj.mjcf.root_body)[0]
    angles = sorted(np.linspace(-g.reach_turn, g.reach_turn, 25), key=abs)
    for a in angles:
        Rz = axis_angle_to_matrix(np.array([0.0, 0.0, a]))
        xi = site_grasp(centre + Rz @ (p - centre), Rz @ R, g)
        if reachable(world, xi):
            return xi
    return site_grasp(p, R, g)


def reachable(world, grasp: GraspParams) -> bool:
    """Whether the sim arm's IK reaches the hover, pre-grasp and grasp wrist poses of ``grasp``
    (the executor's geometry, :func:`robot.episode.default_executor_config`)."""
    from deft_core.world.kinematics import solve_ik
    from robot.episode import default_executor_config
    from robot.executor import grasp_poses

    cfg = default_executor_config(world)
    pose, pre = grasp_poses(grasp, cfg)
    hover = pre.position.copy()
    hover[2] = max(hover[2], cfg.hover_z_m)
    q = world.arm_q()
    for target in (hover, pre.position, pose.position):
        ik = solve_ik(world.model, world.data, world.info.palm_site, target, pose.rotation,
                      joints=world.info.arm_joints, q_init=q, restarts=0, max_iters=100)
        if ik.pos_error > 0.004 or ik.rot_error > 0.04:
            return False
        q = ik.q
    return True


def describe(g: SiteGrasp) -> dict:
    """The grasp parameters as a JSON-able dict."""
    return {k: (list(v) if isinstance(v, tuple) else float(v) if isinstance(v, (int, float, np.floating)) else v)
            for k, v in asdict(g).items()}
