"""The MuJoCo synthetic renderer: ground truth is consistent, reproducible and task-dependent.

Clips are tiny (160x96, 10 fps, 2 s) so each renders in about a second on one CPU core.
"""

import cv2
import numpy as np
import pytest

from deft_core import mano
from deft_core.geometry import project_points, rotation_angle_between

render = pytest.importorskip("pipelines.synth.render")

SMALL = dict(fps=10, width=160, height=96, duration_s=2.0)


@pytest.fixture(scope="module")
def cup():
    return render.render_clip(clip_id="c0", seed=11, task="pick_cup", **SMALL)


@pytest.fixture(scope="module")
def pour():
    return render.render_clip(clip_id="c1", seed=11, task="pour_cup", **SMALL)


def _inside(box, W, H):
    return box[0] >= 0 and box[1] >= 0 and box[2] <= W and box[3] <= H and box[0] < box[2] and box[1] < box[3]


def test_clip_validates_and_boxes_lie_in_the_frame(cup):
    cup.validate()
    W, H = cup.size
    assert cup.num_frames == 20 and cup.frames.dtype == np.uint8
    for boxes in (cup.hand_boxes, cup.object_boxes):
        vis = np.isfinite(boxes).all(1)
        assert vis[cup.action_start:].mean() > 0.8
        assert all(_inside(b, W, H) for b in boxes[vis])
    assert np.isnan(cup.other_hand_boxes).all()
    assert cup.task == "pick_cup" and cup.narration == "pick up the cup" and cup.object_kind == "cup"


def test_contact_frame_is_first_touch_inside_the_action(cup):
    cf = cup.contact_frame
    assert cup.action_start < cf <= cup.action_end
    assert not cup.in_contact[:cf].any() and cup.in_contact[cf]
    assert len(cup.contact_points[cf]) > 0 and all(len(p) == 0 for p in cup.contact_points[:cf])
    box = cup.object_boxes[cf]
    pts = cup.contact_points[cf]
    tol = 3.0  # px: a contact on the silhouette edge may round to the neighbouring pixel
    assert np.all((pts[:, 0] >= box[0] - tol) & (pts[:, 0] <= box[2] + tol) & (pts[:, 1] >= box[1] - tol) & (pts[:, 1] <= box[3] + tol))


def test_skin_pixels_are_found_inside_the_hand_box(cup):
    i = cup.contact_frame
    hsv = cv2.cvtColor(cup.frames[i], cv2.COLOR_RGB2HSV)
    skin = cv2.inRange(hsv, (0, 40, 60), (25, 180, 255)) > 0  # a textbook HSV skin threshold
    x1, y1, x2, y2 = cup.hand_boxes[i].astype(int)
    inside = skin[y1:y2, x1:x2].sum()
    assert inside >= 0.3 * (x2 - x1) * (y2 - y1)
    assert inside >= 0.5 * skin.sum()  # skin is mostly the hand (the rest: the bare wrist), not the table


def test_ground_truth_hand_is_consistent_with_mano_fk_and_the_camera(cup):
    for i in (0, cup.contact_frame, cup.num_frames - 1):
        j = mano.mano_joint_positions(cup.mano_pose[i], cup.hand_trans[i])
        np.testing.assert_allclose(mano.to_openpose(project_points(j, cup.K)), cup.keypoints_2d[i], atol=1e-6)
        Tc, Tw = cup.camera_pose_world[i], cup.wrist_pose_world[i]
        np.testing.assert_allclose(Tc[:3, :3] @ cup.hand_trans[i] + Tc[:3, 3], Tw[:3, 3], atol=1e-9)


def test_head_camera_moves(cup):
    a, b = cup.camera_pose_world[0], cup.camera_pose_world[-1]
    assert np.linalg.norm(a[:3, 3] - b[:3, 3]) > 0.005
    assert rotation_angle_between(a[:3, :3], b[:3, :3]) > np.deg2rad(0.5)


def test_same_seed_same_frames_and_different_seed_differs(cup):
    again = render.render_clip(clip_id="c0", seed=11, task="pick_cup", **SMALL)
    np.testing.assert_array_equal(again.frames, cup.frames)
    np.testing.assert_array_equal(again.hand_boxes, cup.hand_boxes)
    other = render.render_clip(clip_id="c0", seed=12, task="pick_cup", **SMALL)
    assert not np.array_equal(other.frames, cup.frames)


def test_tasks_on_the_same_object_touch_different_regions(cup, pour):
    assert cup.object_kind == pour.object_kind == "cup"
    assert cup.extra["grasp_region"] == "body" and pour.extra["grasp_region"] == "handle"
    pc = np.mean(cup.extra["contact_points_object"], 0)
    pp = np.mean(pour.extra["contact_points_object"], 0)
    assert pc[0] < 0 < pp[0]  # the handle points along the cup's +x, the body site is opposite it
    assert np.linalg.norm(pc - pp) > 0.05
    assert cup.extra["grasp_type"] != pour.extra["grasp_type"]


def test_left_hand_clip_mirrors():
    c = render.render_clip(clip_id="l0", seed=5, task="pick_cup", hand_side="left", **SMALL)
    c.validate()
    assert c.hand_side == "left" and c.extra["mano_pose_side"] == "left"
    i = c.contact_frame
    j = mano.mano_joint_positions(c.mano_pose[i], c.hand_trans[i], side="left")
    np.testing.assert_allclose(mano.to_openpose(project_points(j, c.K)), c.keypoints_2d[i], atol=1e-6)
    rest = mano.mano_joint_positions(np.zeros(48), np.zeros(3), side="left")
    assert rest[4, 0] > 0.05 and rest[16, 2] > 0.07  # mirrored template: fingers along +x, thumb still on +z
    assert c.wrist_pose_world[0, 0, 3] < 0  # the left hand starts on the person's left


def test_no_contact_clip_never_touches():
    c = render.render_clip(clip_id="n0", seed=7, task="pick_cup", has_contact=False, **SMALL)
    c.validate()
    assert c.contact_frame is None and not c.in_contact.any()
    assert all(len(p) == 0 for p in c.contact_points)


def test_depth_and_demo():
    d = render.render_demo("pick_spoon", seed=3, fps=12, width=64, height=48)
    d.validate()
    assert d.num_frames - d.contact_frame >= 41 and d.has_contact and d.hand_side == "right"
    c = render.render_clip(clip_id="d0", seed=2, task="open_drawer", with_depth=True, fps=5, width=96, height=64, duration_s=2.0)
    assert c.depth.shape == c.frames.shape[:3] and c.depth.dtype == np.float32
    assert 0.1 < np.median(c.depth) < 2.0


def test_bad_arguments_raise():
    with pytest.raises(KeyError, match="unknown task"):
        render.render_clip(clip_id="x", seed=0, task="juggle", **SMALL)
    with pytest.raises(ValueError, match="hand_side"):
        render.render_clip(clip_id="x", seed=0, task="pick_cup", hand_side="both", **SMALL)
