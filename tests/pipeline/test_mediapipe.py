"""mediapipe backend: the MANO skeleton fit on FK keypoints of known poses, and (when the bundle is
built) MediaPipe itself on a frame of the procedural hand rendered at a known pose."""

from __future__ import annotations

import numpy as np
import pytest

from deft_core.geometry import axis_angle_to_matrix, rotation_angle_between
from deft_core.mano import anatomical_to_pose, mano_joint_positions, pose_to_anatomical
from pipelines.stages.hand_pose import HandPoseError, make_hand_pose_backend
from pipelines.stages.hand_pose_mediapipe import (OPENPOSE_TO_MANO, _TWO_DOF, default_bundle_path, fit_mano_skeleton,
                                                  kabsch, wrist_translation)
from deft_core.mano import MANO_TO_OPENPOSE


def _random_pose(rng, bend_max=1.2, spread_max=0.3):
    """Anatomical angles in the fit's family: no twist, spread only at 2-DoF joints."""
    ang = np.zeros((15, 3))
    ang[:, 2] = rng.uniform(-0.2, bend_max, 15)
    for k in _TWO_DOF:
        ang[k, 1] = rng.uniform(-spread_max, spread_max)
    return ang


@pytest.mark.parametrize("seed", range(5))
def test_fit_recovers_known_pose_exactly(seed):
    rng = np.random.default_rng(seed)
    ang = _random_pose(rng)
    wrist = rng.normal(size=3)
    kps = mano_joint_positions(np.concatenate([wrist, anatomical_to_pose(ang)]), trans=rng.normal(size=3))
    fit = fit_mano_skeleton(kps)
    assert np.degrees(rotation_angle_between(axis_angle_to_matrix(fit.wrist_rotation), axis_angle_to_matrix(wrist))) < 1e-4
    np.testing.assert_allclose(fit.angles, ang, atol=1e-7)
    assert fit.residual_deg < 1e-4


def test_fit_is_scale_invariant_and_tolerates_noise():
    rng = np.random.default_rng(7)
    errs = []
    for _ in range(10):
        ang = _random_pose(rng)
        wrist = rng.normal(size=3)
        kps = 1.15 * mano_joint_positions(np.concatenate([wrist, anatomical_to_pose(ang)]))  # bigger hand
        kps += rng.normal(scale=0.0005, size=kps.shape)  # 0.5 mm landmark noise (bones are 2-4 cm)
        fit = fit_mano_skeleton(kps)
        errs.append(np.abs(np.degrees(pose_to_anatomical(fit.hand_pose)[:, 2] - ang[:, 2])))
        assert np.degrees(rotation_angle_between(axis_angle_to_matrix(fit.wrist_rotation), axis_angle_to_matrix(wrist))) < 5
    assert np.median(errs) < 3.0, np.median(errs)


def test_fit_with_unmodelled_twist_keeps_bends_close():
    rng = np.random.default_rng(3)
    ang = _random_pose(rng)
    ang[:, 0] = rng.uniform(-0.1, 0.1, 15)  # a little twist the fit cannot see
    kps = mano_joint_positions(np.concatenate([np.zeros(3), anatomical_to_pose(ang)]))
    fit = fit_mano_skeleton(kps)
    assert np.max(np.abs(np.degrees(fit.angles[:, 2] - ang[:, 2]))) < 8


def test_bad_keypoints_raise():
    with pytest.raises(HandPoseError, match="21, 3"):
        fit_mano_skeleton(np.zeros((20, 3)))
    with pytest.raises(HandPoseError, match="coincide"):
        fit_mano_skeleton(np.zeros((21, 3)))


def test_orders_and_kabsch():
    assert [MANO_TO_OPENPOSE[i] for i in OPENPOSE_TO_MANO] == list(range(21))
    rng = np.random.default_rng(0)
    R = axis_angle_to_matrix(rng.normal(size=3))
    x = rng.normal(size=(6, 3))
    np.testing.assert_allclose(kabsch(x, 2.0 * x @ R.T + 1.0), R, atol=1e-9)


def test_wrist_translation_recovers_position():
    rng = np.random.default_rng(1)
    K = np.array([[300.0, 0, 228], [0, 300.0, 128], [0, 0, 1]])
    local = mano_joint_positions(np.concatenate([rng.normal(size=3), anatomical_to_pose(_random_pose(rng))]))
    local -= local.mean(0)  # MediaPipe's world landmarks are centred on the hand
    wrist_true = local[0] + np.array([0.05, -0.02, 0.45])
    cam = local + (wrist_true - local[0])
    px = cam[:, :2] / cam[:, 2:] * [300.0, 300.0] + [228, 128]
    np.testing.assert_allclose(wrist_translation(px, local, K), wrist_true, atol=1e-9)


def test_missing_bundle_names_file_and_command(tmp_path):
    pytest.importorskip("mediapipe", reason="mediapipe not installed (pip install mediapipe)")
    with pytest.raises(FileNotFoundError, match=r"nope\.task.*mediapipe_bundle\.py"):
        make_hand_pose_backend("mediapipe", model_path=str(tmp_path / "nope.task"))


@pytest.mark.slow
def test_landmarker_on_rendered_synthetic_hand():
    """The real MediaPipe model on the procedural hand rendered by the MuJoCo renderer: the hand is
    found and its 2-D landmarks land near the true projected keypoints."""
    pytest.importorskip("mediapipe", reason="mediapipe not installed (pip install mediapipe)")
    if not default_bundle_path().is_file():
        pytest.skip(f"MediaPipe bundle {default_bundle_path()} absent: build it with python scripts/mediapipe_bundle.py")
    import os
    os.environ.setdefault("MUJOCO_GL", "egl")
    from pipelines.synth.render import render_clip
    from pipelines.stages.hand_pose_mediapipe import MediaPipeHandPose

    clip = render_clip(clip_id="t", seed=11, fps=10, width=456, height=256, task="pick_cup", duration_s=2.0)
    be = MediaPipeHandPose(fov_deg=float(np.degrees(2 * np.arctan(228 / clip.K[0, 0]))))
    K = be.intrinsics_for(456, 256)
    found, px_err = 0, []
    for t in range(0, clip.frames.shape[0], 2):
        try:
            est = be.estimate_frame(clip.frames[t], clip.hand_boxes[t], K)
        except HandPoseError:
            continue
        found += 1
        true = mano_joint_positions(clip.mano_pose[t], clip.hand_trans[t])
        proj = true @ clip.K.T
        proj = proj[:, :2] / proj[:, 2:]
        px_err.append(np.median(np.linalg.norm(est.detection.image_px[list(OPENPOSE_TO_MANO)] - proj, axis=1)))
        assert np.all(np.isfinite(est.fit.hand_pose)) and np.all(np.isfinite(est.wrist_position))
    assert found >= 2, f"MediaPipe found the hand in only {found} frames"
    assert np.median(px_err) < 20, px_err


def test_crop_detection_maps_landmarks_back_to_frame_pixels():
    """detect_in_box runs the landmarker on an upscaled crop; landmarks must come back in frame pixels."""
    from pipelines.stages.hand_pose_mediapipe import HandDetection, MediaPipeHandPose

    class Recorder:
        def detect(self, img):
            self.shape = img.shape
            h, w = img.shape[:2]
            return [HandDetection(np.array([[w / 2, h / 2]] * 21), np.zeros((21, 3)), "Right", 0.9)]

    be = MediaPipeHandPose.__new__(MediaPipeHandPose)
    be.landmarker = Recorder()
    frame = np.zeros((256, 456, 3), np.uint8)
    (det,) = be.detect_in_box(frame, [200, 100, 240, 140])
    assert max(be.landmarker.shape[:2]) == 256
    np.testing.assert_allclose(det.image_px[0], [220, 120], atol=1.0)


def _det(box, label, score=0.9):
    from pipelines.stages.hand_pose_mediapipe import HandDetection

    x1, y1, x2, y2 = box
    px = np.array([[x1, y1], [x2, y2]] + [[(x1 + x2) / 2, (y1 + y2) / 2]] * 19, np.float64)
    return HandDetection(px, np.zeros((21, 3)), label, score)


def test_pick_detection_prefers_the_contact_hand_over_a_larger_overlap():
    """Two-handed egocentric frame: the left hand sits entirely inside the right hand's contact box (overlap
    1.0), the right hand half inside. Overlap alone fitted the left hand as a right one."""
    from pipelines.stages.hand_pose_mediapipe import pick_detection

    box = np.array([100, 100, 200, 200])
    left, right = _det((120, 120, 160, 160), "Left"), _det((150, 150, 250, 250), "Right")
    assert pick_detection([left, right], box) is right
    assert pick_detection([left, right], box, side="left") is left
    assert pick_detection([left], box) is left                      # only one hand there: its label may be wrong
    assert pick_detection([left, _det((300, 10, 340, 50), "Right")], box) is left  # the right one is elsewhere
    assert pick_detection([_det((0, 0, 9, 9), "Left", 0.99), right], None) is right
    with pytest.raises(HandPoseError, match="overlaps"):
        pick_detection([_det((300, 10, 340, 50), "Right")], box)


def test_a_left_hand_is_fitted_in_the_mirrored_frame():
    """contact side 'left': the landmarker sees the mirrored frame (where the hand is a right one) and the
    contact box mirrored with it; the fit is the right-hand pose of the mirrored image."""
    from pipelines.stages.hand_pose_mediapipe import HandDetection, MediaPipeHandPose

    rng = np.random.default_rng(3)
    pose = np.concatenate([[0.2, -0.1, 0.3], rng.normal(0, 0.2, 45)])
    kps = mano_joint_positions(pose)[list(MANO_TO_OPENPOSE)]

    class Recorder:
        def detect(self, img):
            self.img = img.copy()
            return [HandDetection(np.array([[330.0, 60.0]] * 10 + [[350.0, 80.0]] * 11), kps, "Right", 0.9)]

    be = MediaPipeHandPose.__new__(MediaPipeHandPose)
    be.landmarker = Recorder()
    frame = np.zeros((256, 456, 3), np.uint8)
    frame[70, 110] = 255                                           # a pixel inside the left hand's box
    est = be.estimate_frame(frame, [100, 50, 130, 90], None, side="left")   # mirrored: [325, 50, 355, 90]
    assert be.landmarker.img[70, 455 - 110].max() == 255 and be.landmarker.img[70, 110].max() == 0
    np.testing.assert_allclose(est.fit.hand_pose, fit_mano_skeleton(kps[list(OPENPOSE_TO_MANO)]).hand_pose, atol=1e-9)
    with pytest.raises(HandPoseError, match="overlaps"):           # unmirrored, the box would miss the hand
        be.estimate_frame(frame, [100, 50, 130, 90], None, side="right")


def test_a_process_that_used_the_landmarker_exits_without_a_traceback():
    """HandLandmarker.__del__ at interpreter exit ran after the thread-pool shutdown and printed a
    TypeError/RuntimeError traceback after every extraction or trajectory run."""
    import subprocess
    import sys

    pytest.importorskip("mediapipe", reason="mediapipe not installed (pip install mediapipe)")
    if not default_bundle_path().is_file():
        pytest.skip(f"MediaPipe bundle {default_bundle_path()} absent: build it with python scripts/mediapipe_bundle.py")
    code = ("import numpy as np\nfrom pipelines.stages.hand_pose_mediapipe import MediaPipeLandmarker\n"
            "lm = MediaPipeLandmarker()\nlm.detect(np.zeros((64, 64, 3), np.uint8))\nprint('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-2000:]

