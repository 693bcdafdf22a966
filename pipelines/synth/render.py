"""The synthetic egocentric renderer: a human hand reaching for, grasping and using a task object,
seen from a moving head camera, with exact ground truth (:class:`pipelines.synth.clip.SynthClip`).

Everything is kinematic (poses are set, physics is never stepped) and reproducible from the seed.
Ground truth comes from MuJoCo itself: boxes from segmentation renders (tight boxes of the hand's /
object's geoms), contacts from MuJoCo's collision detection between hand and object geoms, keypoints
and MANO parameters from the posed hand. Rendering uses EGL (``MUJOCO_GL=egl``) on the CPU.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from deft_core import mano  # noqa: E402
from deft_core.geometry import (MUJOCO_TO_OPENCV_CAMERA, intrinsics_from_fovy, matrix_to_axis_angle,  # noqa: E402
                                matrix_to_quaternion, project_points, quaternion_to_matrix)
from deft_core.tasks import get_task  # noqa: E402
from deft_core.world.human_hand import HumanHandPoser  # noqa: E402
from deft_core.world.objects import object_extent  # noqa: E402
from pipelines.synth.clip import MASK_HAND, MASK_OBJECT, SynthClip  # noqa: E402
from pipelines.synth.grasps import (BODY_DIRECTION, GRASP_TYPES, TASK_GRASPS, GraspSynth, GraspType,  # noqa: E402
                                    angles_to_pose45, noisy_rotation, side_vec, wrist_rotation)
from pipelines.synth.motion import HeadCamera, make_timeline, min_jerk, rest_pose, slerp_matrix, use_motion  # noqa: E402
from pipelines.synth.scene import CAMERA_FOVY, build_scene  # noqa: E402

MIN_BOX_PIXELS = 12  #: fewer visible pixels than this → the box is NaN (not visible)
_REST_ANGLES = np.zeros((15, 3))
_REST_ANGLES[:, 2] = [0.35, 0.4, 0.2, 0.35, 0.45, 0.2, 0.45, 0.5, 0.25, 0.4, 0.5, 0.2, 0.2, 0.15, 0.2]


def _geoms_of_bodies(model, body_names) -> np.ndarray:
    ids = {mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in body_names}
    return np.flatnonzero(np.isin(model.geom_bodyid, list(ids)))


def _box(mask: np.ndarray) -> np.ndarray:
    if mask.sum() < MIN_BOX_PIXELS:
        return np.full(4, np.nan)
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def _approach(site_R: np.ndarray, how: str) -> np.ndarray:
    up = np.array([0.0, 0.0, 1.0])
    if how == "up":
        return up
    if how == "site+up":
        n = site_R[:, 2] + np.tan(np.deg2rad(55.0)) * up
        return n / np.linalg.norm(n)
    return site_R[:, 2].copy()


def _forearm(how: str, site_R, obj_R, n, side) -> np.ndarray:
    body = side_vec(BODY_DIRECTION, side)
    if how == "axis":
        f = -obj_R[:, 0]
    elif how == "bar_perp":
        f = np.cross(site_R[:, 0], n)
        f = f if f @ body >= 0 else -f
    else:
        f = body
    f = f - (f @ n) * n
    return f if np.linalg.norm(f) > 1e-3 else body


def _jitter(g: GraspType, rng) -> GraspType:
    noise = rng.normal(0, 0.05, g.closed.shape) * [0.3, 1.0, 1.0]
    return GraspType(g.name, g.open + rng.normal(0, 0.02, g.open.shape) * [0, 1, 1], g.closed + noise, g.anchor, g.depth)


def render_clip(*, clip_id: str, seed: int, fps: float, width: int, height: int, task: str,
                hand_side: str = "right", has_contact: bool = True, with_depth: bool = False,
                duration_s: float | None = None, object_split: str = "train", min_use_frames: int = 0) -> SynthClip:
    """Render one clip of ``task`` (a :data:`deft_core.tasks.TASKS` name) reproducibly from ``seed``.

    ``has_contact=False`` renders a hand that reaches and hovers 3–6 cm off the object, never touching.
    ``hand_side="left"`` uses the mirrored left hand (its MANO pose is in the left model's convention,
    see ``extra["mano_pose_side"]``). Sizes in pixels, ``fps`` frames per second, ``duration_s`` the clip
    length (default: 2.6–3.7 s, drawn from the seed). ``min_use_frames``: frames after the grasp.
    """
    spec = get_task(task)
    if hand_side not in ("right", "left"):
        raise ValueError(f"hand_side must be 'right' or 'left', got {hand_side!r}")
    if fps <= 0 or width < 16 or height < 16:
        raise ValueError(f"bad render size/fps: {width}x{height} at {fps} fps")
    rng = np.random.default_rng(seed)
    tg = TASK_GRASPS[task]
    scene = build_scene(spec, rng, hand_side, object_split, tg)
    model = mujoco.MjModel.from_xml_string(scene.xml)
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    poser = HumanHandPoser(model, "hand_")
    target = scene.target
    tgt_geoms = _geoms_of_bodies(model, target.mjcf.bodies)
    table = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "table")
    stop = np.r_[np.flatnonzero(~np.isin(np.arange(model.ngeom), poser.geom_ids)), table]
    site_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, target.mjcf.sites[spec.grasp_region])
    site_pos = data.site_xpos[site_id].copy()
    site_R = data.site_xmat[site_id].reshape(3, 3).copy()
    root = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, target.mjcf.root_body)
    obj_R0, obj_p0 = data.xmat[root].reshape(3, 3).copy(), data.xpos[root].copy()

    # ---- the grasp: wrist from the site frame + noise, fingers closed until contact
    n = _approach(site_R, tg.normal)
    R_grasp = noisy_rotation(wrist_rotation(n, _forearm(tg.forearm, site_R, obj_R0, n, hand_side), hand_side), rng, 0.12, 0.06)
    grasp_type = _jitter(GRASP_TYPES[tg.grasp], rng)
    synth = GraspSynth(model, data, poser, hand_side, stop, tgt_geoms)
    p_grasp, a_grasp, standoff = synth.synthesise(grasp_type, site_pos, R_grasp, table)
    if not has_contact:  # hover: stop short of the object with a half-open hand, clear of it
        a_grasp = grasp_type.open + 0.3 * (a_grasp - grasp_type.open)
        p_grasp = p_grasp + R_grasp[:, 1] * rng.uniform(0.03, 0.06)
        synth.stop = synth.target
        for _ in range(10):
            synth._pose(R_grasp, p_grasp, a_grasp)
            if not synth._touching(poser.geom_ids):
                break
            p_grasp = p_grasp + R_grasp[:, 1] * 0.01

    # ---- timeline and trajectories
    tl = make_timeline(fps, rng, duration_s, min_use_frames)
    T = tl.num_frames
    p_rest, R_rest = rest_pose(hand_side, rng)
    synth.stop = np.isin(np.arange(model.ngeom), stop) & (np.arange(model.ngeom) != table)
    sway = rng.normal(0, 0.004, 3)

    def rest_touches(p):
        for k in (-1.0, 0.0, 1.0):
            synth._pose(R_rest, p + k * sway, _REST_ANGLES)
            if synth._touching(poser.geom_ids):
                return True
        return False

    for _ in range(10):  # the idle hand must not touch anything (e.g. the handle of a long tool)
        if not rest_touches(p_rest):
            break
        p_rest = p_rest + np.array([0.0, -0.03, 0.02])
    pre = p_grasp + R_grasp[:, 1] * rng.uniform(0.05, 0.08) + np.array([0.0, 0.0, 0.03])
    P = np.zeros((T, 3))
    Rw = np.zeros((T, 3, 3))
    A = np.zeros((T, 15, 3))
    for i in range(T):
        if i < tl.reach_start:
            P[i], Rw[i], A[i] = p_rest + sway * np.sin(i / fps * 3.0), R_rest, _REST_ANGLES
        elif i <= tl.grasp:
            s = (i - tl.reach_start) / max(tl.grasp - tl.reach_start, 1)
            s1, s2 = min_jerk(s / 0.75), min_jerk((s - 0.75) / 0.25)
            P[i] = p_rest + s1 * (pre - p_rest) + s2 * (p_grasp - pre)
            Rw[i] = slerp_matrix(R_rest, R_grasp, float(min_jerk(s / 0.7)))
            A[i] = _REST_ANGLES + min_jerk(s / 0.6) * (grasp_type.open - _REST_ANGLES) + min_jerk((s - 0.8) / 0.2) * (a_grasp - grasp_type.open)
        else:
            P[i], Rw[i], A[i] = p_grasp, R_grasp, a_grasp
    n_use = T - tl.use_start
    drawer_slide = np.zeros(T)
    if has_contact:
        ext = object_extent(target.mjcf.variant)
        centre = obj_p0 + obj_R0 @ ext.center
        sup = scene.support
        sup_top = None
        if sup is not None:
            se = object_extent(sup.mjcf.variant)
            sup_top = sup.pos + np.array([0.0, 0.0, se.hi[2]])
        pull = obj_R0 @ np.array([-1.0, 0.0, 0.0]) if spec.object_kind == "drawer" else None
        up_p, up_R, slide = use_motion(spec.verb.split()[0], n_use, p_grasp, R_grasp, centre, sup_top, pull, hand_side, rng)
    else:  # give up and withdraw: away from the object and up
        k = min_jerk(np.linspace(0, 1, n_use + 1)[1:])[:, None]
        up_p = p_grasp + k * (R_grasp[:, 1] * 0.05 + np.array([0.0, -0.04, 0.05]))
        up_R, slide = np.repeat(R_grasp[None], n_use, 0), np.zeros(n_use)
    P[tl.use_start:], Rw[tl.use_start:], drawer_slide[tl.use_start:] = up_p, up_R, slide

    return _render_frames(clip_id, seed, fps, width, height, spec, scene, model, data, poser, tgt_geoms, P, Rw, A,
                          drawer_slide, tl, has_contact, with_depth, rng, dict(
                              grasp_type=grasp_type.name, grasp_region=spec.grasp_region, standoff_m=float(standoff),
                              site_pos_world=site_pos.tolist(), object_yaw=float(target.yaw)), obj_R0, obj_p0)


def _render_frames(clip_id, seed, fps, width, height, spec, scene, model, data, poser, tgt_geoms, P, Rw, A,
                   drawer_slide, tl, has_contact, with_depth, rng, extra, obj_R0, obj_p0) -> SynthClip:
    T = len(P)
    target = scene.target
    free_adr = None
    if target.mjcf.free_joint:
        free_adr = model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, target.mjcf.free_joint)]
    drawer_adr = None
    if "drawer" in target.mjcf.joints:
        drawer_adr = model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, target.mjcf.joints["drawer"])]
        drawer0 = float(data.qpos[drawer_adr])
    root_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, target.mjcf.root_body)
    shoulder = np.array([0.22 if scene.side == "right" else -0.22, -0.45, 0.2])
    cam_mocap = model.body_mocapid[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "headcam")]
    camera = HeadCamera(rng, target.pos)
    K = intrinsics_from_fovy(CAMERA_FOVY, width, height)
    label = np.zeros(model.ngeom + 1, np.uint8)
    label[poser.hand_geom_ids] = MASK_HAND
    label[tgt_geoms] = MASK_OBJECT
    is_hand = np.zeros(model.ngeom, bool)
    is_hand[poser.hand_geom_ids] = True
    is_tgt = np.zeros(model.ngeom, bool)
    is_tgt[tgt_geoms] = True
    model.vis.global_.offwidth, model.vis.global_.offheight = max(width, 64), max(height, 64)

    frames = np.zeros((T, height, width, 3), np.uint8)
    depth = np.zeros((T, height, width), np.float32) if with_depth else None
    masks = np.zeros((T, height, width), np.uint8)
    hand_boxes, obj_boxes = np.full((T, 4), np.nan), np.full((T, 4), np.nan)
    in_contact = np.zeros(T, bool)
    contact_pts = []
    mano_pose, hand_trans = np.zeros((T, 48)), np.zeros((T, 3))
    kps, cam_T, wrist_T = np.zeros((T, 21, 2)), np.zeros((T, 4, 4)), np.zeros((T, 4, 4))
    T_grasp_inv = np.linalg.inv(_tf(Rw[tl.grasp], P[tl.grasp]))
    T_obj0 = _tf(obj_R0, obj_p0)
    with mujoco.Renderer(model, height, width) as r:
        for i in range(T):
            pose48 = np.r_[matrix_to_axis_angle(Rw[i]), angles_to_pose45(A[i], scene.side)]
            poser.set_pose(data, pose48, P[i], run_kinematics=False, shoulder_world=shoulder)
            if free_adr is not None and has_contact and i >= tl.use_start:
                To = _tf(Rw[i], P[i]) @ T_grasp_inv @ T_obj0
                data.qpos[free_adr:free_adr + 3] = To[:3, 3]
                data.qpos[free_adr + 3:free_adr + 7] = matrix_to_quaternion(To[:3, :3])
            if drawer_adr is not None:
                data.qpos[drawer_adr] = drawer0 + drawer_slide[i]
            Tc = camera.pose(i / fps, P[i])
            data.mocap_pos[cam_mocap] = Tc[:3, 3]
            data.mocap_quat[cam_mocap] = matrix_to_quaternion(Tc[:3, :3] @ MUJOCO_TO_OPENCV_CAMERA)
            mujoco.mj_kinematics(model, data)
            mujoco.mj_comPos(model, data)
            mujoco.mj_camlight(model, data)
            mujoco.mj_collision(model, data)
            R_cw, t_cw = Tc[:3, :3].T, -Tc[:3, :3].T @ Tc[:3, 3]
            pairs = data.contact.geom[:data.ncon]
            hit = (is_hand[pairs[:, 0]] & is_tgt[pairs[:, 1]]) | (is_hand[pairs[:, 1]] & is_tgt[pairs[:, 0]])
            pts = []
            if hit.any():
                pc = data.contact.pos[:data.ncon][hit] @ R_cw.T + t_cw
                pc = pc[pc[:, 2] > 1e-3]
                uv = project_points(pc, K)
                pts = uv[(uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)]
            if hit.any() and not in_contact.any():  # first touch: keep the 3-D points in the object frame
                Rr, pr = data.xmat[root_id].reshape(3, 3), data.xpos[root_id]
                extra["contact_points_object"] = ((data.contact.pos[:data.ncon][hit] - pr) @ Rr).round(5).tolist()
            in_contact[i] = bool(hit.any())
            contact_pts.append(np.asarray(pts, np.float32).reshape(-1, 2))
            r.update_scene(data, camera="head")
            frames[i] = r.render()
            r.enable_segmentation_rendering()
            r.update_scene(data, camera="head")
            seg = r.render()
            r.disable_segmentation_rendering()
            ids = np.where(seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM), seg[..., 0], model.ngeom)
            lab = label[ids]
            masks[i] = lab
            hand_boxes[i], obj_boxes[i] = _box(lab == MASK_HAND), _box(lab == MASK_OBJECT)
            if with_depth:
                r.enable_depth_rendering()
                r.update_scene(data, camera="head")
                depth[i] = r.render()
                r.disable_depth_rendering()
            R_h = quaternion_to_matrix(data.mocap_quat[poser.mocap_id])
            mano_pose[i, :3] = matrix_to_axis_angle(R_cw @ R_h)
            mano_pose[i, 3:] = pose48[3:]
            hand_trans[i] = R_cw @ P[i] + t_cw
            kp_c = poser.keypoints_world(data) @ R_cw.T + t_cw
            kps[i] = mano.to_openpose(project_points(kp_c, K))
            cam_T[i], wrist_T[i] = Tc, _tf(Rw[i], P[i])
    contact_frame = int(np.argmax(in_contact)) if in_contact.any() else None
    if has_contact and contact_frame is None:
        raise RuntimeError(f"{clip_id}: the synthesised grasp never touched the {spec.object_kind} (seed {seed})")
    if has_contact and contact_frame <= tl.reach_start:
        raise RuntimeError(f"{clip_id}: the resting hand already touches the {spec.object_kind} at frame "
                           f"{contact_frame}, before the reach (seed {seed})")
    if not has_contact and contact_frame is not None:
        raise RuntimeError(f"{clip_id}: a no-contact clip touched the object at frame {contact_frame} (seed {seed})")
    extra.update(scene.info, mano_pose_side=scene.side, phases=dict(reach_start=tl.reach_start, grasp=tl.grasp,
                                                                    use_start=tl.use_start),
                 support=None if scene.support is None else scene.support.mjcf.variant.name)
    return SynthClip(
        clip_id=clip_id, seed=int(seed), fps=float(fps), frames=frames, depth=depth, K=K, task=spec.name, verb=spec.verb,
        noun=spec.noun, narration=spec.text, object_kind=spec.object_kind, object_variant=target.mjcf.variant.name,
        hand_side=scene.side, has_contact=has_contact, action_start=tl.reach_start, action_end=tl.action_end,
        contact_frame=contact_frame if has_contact else None, hand_boxes=hand_boxes,
        other_hand_boxes=np.full((T, 4), np.nan), object_boxes=obj_boxes, in_contact=in_contact,
        contact_points=contact_pts, mano_pose=mano_pose, hand_trans=hand_trans, keypoints_2d=kps,
        camera_pose_world=cam_T, wrist_pose_world=wrist_T,
        distractors=[o.mjcf.variant.name for o in scene.objects if o.role == "distractor"], extra=extra, masks=masks)


def _tf(R, p) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, p
    return T


def render_demo(task: str, *, seed: int, fps: float, width: int, height: int, object_split: str = "train") -> SynthClip:
    """One human demonstration of ``task`` (paper §3.1): a right-hand clip with contact and at least
    41 frames after the grasp, whose ``wrist_pose_world`` is the true wrist trajectory."""
    return render_clip(clip_id=f"demo_{task}", seed=seed, fps=fps, width=width, height=height, task=task,
                       hand_side="right", has_contact=True, object_split=object_split, min_use_frames=41)
