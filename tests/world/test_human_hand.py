"""The procedural human hand: MANO structure, poser, look."""

import mujoco
import numpy as np
import pytest

from deft_core import mano
from deft_core.geometry import matrix_to_axis_angle
from deft_core.world.human_hand import HumanHandPoser, human_hand_mjcf, standalone_hand_xml

PALM_DOWN = matrix_to_axis_angle(np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]))  # canonical −y → world −z


def _hand(side="right"):
    model = mujoco.MjModel.from_xml_string(standalone_hand_xml(human_hand_mjcf(side=side)))
    return model, mujoco.MjData(model), HumanHandPoser(model)


@pytest.mark.parametrize("side", ["right", "left"])
def test_zero_pose_is_flat_hand_matching_mano_fk(side):
    model, data, poser = _hand(side)
    assert model.njnt == 15 and all(model.jnt_type == mujoco.mjtJoint.mjJNT_BALL)
    t = np.array([0.1, 0.2, 0.3])
    poser.set_pose(data, np.zeros(48), t)
    np.testing.assert_allclose(poser.keypoints_world(data), mano.mano_joint_positions(np.zeros(48), t, side=side), atol=1e-9)
    # the finger bodies sit at the joints and are not rotated relative to the wrist at rest
    fingers = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "hand_" + n) for n in mano.JOINT_NAMES[1:]]
    np.testing.assert_allclose(data.xquat[fingers], np.tile([1.0, 0, 0, 0], (15, 1)), atol=1e-12)


@pytest.mark.parametrize("side", ["right", "left"])
def test_random_pose_matches_mano_fk(side):
    model, data, poser = _hand(side)
    pose = np.random.default_rng(3).normal(0, 0.5, 48)
    poser.set_pose(data, pose, [0.0, 0.0, 0.5])
    np.testing.assert_allclose(poser.keypoints_world(data), mano.mano_joint_positions(pose, [0, 0, 0.5], side=side), atol=1e-9)


def test_bending_a_finger_moves_its_tip_towards_the_palm():
    model, data, poser = _hand()
    poser.set_pose(data, np.r_[PALM_DOWN, np.zeros(45)], [0, 0, 0.2])
    flat = poser.keypoints_world(data)
    for finger, joints, tip in [("index", (0, 1, 2), 17), ("middle", (3, 4, 5), 18), ("thumb", (12, 13, 14), 16)]:
        a = np.zeros((15, 3))
        a[list(joints), 2] = 0.8
        poser.set_pose(data, np.r_[PALM_DOWN, mano.anatomical_to_pose(a)], [0, 0, 0.2])
        bent = poser.keypoints_world(data)
        palm_centre = flat[[0, 1, 4, 7, 10]].mean(0)
        assert np.linalg.norm(bent[tip] - palm_centre) < np.linalg.norm(flat[tip] - palm_centre) - 0.02, finger
        assert bent[tip][2] < flat[tip][2] - 0.02, finger  # palm faces down: flexion moves the tip down


def test_thumb_is_visible_from_above():
    model, data, poser = _hand()
    poser.set_pose(data, np.r_[PALM_DOWN, np.zeros(45)], [0, 0, 0.0])
    cam = mujoco.MjvCamera()
    cam.lookat[:] = [-0.06, 0.0, 0.0]
    cam.distance, cam.azimuth, cam.elevation = 0.4, -90.0, -70.0
    with mujoco.Renderer(model, 96, 128) as r:
        r.enable_segmentation_rendering()
        r.update_scene(data, cam)
        seg = r.render()[..., 0]
    thumb_geoms = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"hand_thumb{i}_bone") for i in (2, 3)]
    assert np.isin(seg, thumb_geoms).sum() > 40
    assert np.isin(seg, poser.hand_geom_ids).sum() > 800


def test_skin_colour_and_bad_arguments():
    h = human_hand_mjcf()
    assert "0.87 0.67 0.55" in h.assets and len(h.hand_geoms) > 15
    with pytest.raises(ValueError, match="side"):
        human_hand_mjcf(side="middle")
    model, data, poser = _hand()
    with pytest.raises(ValueError, match="pose48"):
        poser.set_pose(data, np.zeros(45), [0, 0, 0])


def test_forearm_points_towards_the_shoulder_when_asked():
    model, data, poser = _hand()
    assert poser.side == "right" and _hand("left")[2].side == "left"
    poser.set_pose(data, np.r_[PALM_DOWN, np.zeros(45)], [0, 0, 0], shoulder_world=[0.0, -1.0, 0.0])
    fid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "hand_forearm")
    z = data.xmat[fid].reshape(3, 3)[:, 2]
    assert z @ np.array([0.0, -1.0, 0.0]) > 0.5  # between the hand's +x and the shoulder direction
    poser.set_pose(data, np.r_[PALM_DOWN, np.zeros(45)], [0, 0, 0])
    np.testing.assert_allclose(data.xmat[fid].reshape(3, 3)[:, 2], [1.0, 0, 0], atol=1e-9)  # continues the hand
