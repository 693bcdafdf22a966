"""deft data trajectory: τ from a wrist track, grasp detection, camera→base mapping, errors, CLI (truth)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deft_core.geometry import axis_angle_to_matrix
from deft_core.trajectory import PostGraspTrajectory
from pipelines.cli import main
from pipelines.trajectory import (TrajectoryError, WristTrack, detect_grasp_frame, extract_trajectory, smooth_positions,
                                  trajectory_error, truth_track)


def _track(n=90, grasp=35, seed=0):
    """Reach (decelerating), a pause at the grasp, then a lift with a turn."""
    t = np.arange(n, dtype=float)
    x = np.where(t < grasp, 0.3 * (1 - ((grasp - t) / grasp) ** 2) ** 0 * (t / grasp) * (2 - t / grasp), 0.3)
    z = np.where(t > grasp + 2, 0.004 * (t - grasp - 2), 0.0)
    pos = np.stack([x, np.zeros(n), z], 1) + np.random.default_rng(seed).normal(scale=1e-4, size=(n, 3))
    rot = axis_angle_to_matrix(np.stack([np.zeros(n), np.zeros(n), np.clip(t - grasp, 0, None) * 0.01], 1))
    return WristTrack(pos, rot, np.ones(n, bool), 30.0)


def test_detect_grasp_frame_near_the_pause():
    tr = _track()
    assert abs(detect_grasp_frame(tr) - 36) <= 3


def test_extract_trajectory_deltas_and_errors():
    tr = _track()
    tau = extract_trajectory(tr, 35, "pick_cup")
    assert tau.deltas.shape == (40, 6) and tau.task == "pick_cup" and tau.meta["grasp_frame"] == 35
    np.testing.assert_allclose(tau.cumulative()[-1, :3], tr.positions[75] - tr.positions[35], atol=1e-12)
    np.testing.assert_allclose(tau.deltas[5:, 5], 0.01, atol=1e-9)  # yaw turns 0.01 rad per frame after the grasp
    err = trajectory_error(tau, tau)
    assert err["endpoint_pos_error_mm"] == 0 and err["delta_rot_rmse_deg"] == 0
    shifted = extract_trajectory(tr, 30)
    assert trajectory_error(shifted, tau)["endpoint_pos_error_mm"] > 5
    with pytest.raises(TrajectoryError, match="need 41 frames"):
        extract_trajectory(tr, 60)


def test_smoothing_keeps_linear_motion():
    p = np.stack([np.linspace(0, 1, 20)] * 3, 1)
    np.testing.assert_allclose(smooth_positions(p, 5)[2:-2], p[2:-2], atol=1e-12)


def test_cli_truth_matches_file_and_reports_zero_error(tmp_path, capsys):
    tr = _track()
    T = np.tile(np.eye(4), (len(tr.positions), 1, 1))
    T[:, :3, :3], T[:, :3, 3] = tr.rotations, tr.positions
    np.savez(tmp_path / "pick_cup_wrist.npz", T_world_wrist=T, T_world_camera=np.tile(np.eye(4), (len(T), 1, 1)),
             fps=30.0, grasp_frame=35, K=np.eye(3))
    out = tmp_path / "tau.npz"
    assert main(["data", "trajectory", "--video", str(tmp_path / "pick_cup.mp4"), "--out", str(out), "--hand-pose", "truth",
                 "--task", "pick_cup", "--compare", str(tmp_path / "pick_cup_wrist.npz")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["grasp_frame"] == 35 and res["error"]["endpoint_pos_error_mm"] == 0
    tau = PostGraspTrajectory.load(out)
    track, g = truth_track(tmp_path / "pick_cup_wrist.npz")
    np.testing.assert_allclose(tau.deltas, extract_trajectory(track, g).deltas)
    # --compare with another wrist file: its own grasp frame, not the video's (a variable was shared)
    np.savez(tmp_path / "other_wrist.npz", T_world_wrist=T, fps=30.0, grasp_frame=30)
    assert main(["data", "trajectory", "--video", str(tmp_path / "pick_cup.mp4"), "--out", str(out), "--hand-pose", "truth",
                 "--task", "pick_cup", "--compare", str(tmp_path / "other_wrist.npz")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["grasp_frame"] == 35 and res["true_grasp_frame"] == 30


def test_cli_errors_name_the_file(tmp_path, capsys):
    assert main(["data", "trajectory", "--video", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "t.npz"), "--hand-pose", "truth"]) == 2
    assert "nope_wrist.npz" in capsys.readouterr().err


def test_cli_bad_camera_files_and_numbers_are_one_line_errors(tmp_path, capsys):
    """A text K, a zero K, a damaged .npz, a field of view no pinhole camera has, a negative smoothing
    window, a missing MediaPipe bundle, a --compare file that is not a demo's wrist file: exit 2 naming the
    file or flag, before the slow per-frame part (they were tracebacks, or silently wrong metres)."""
    import subprocess
    import sys

    from deft_core.video import write_video

    video = tmp_path / "demo.mp4"
    write_video(video, np.zeros((4, 48, 64, 3), np.uint8), 30)  # a real video: each check comes before its frames
    np.savetxt(tmp_path / "K.txt", np.eye(3))
    np.save(tmp_path / "Kzero.npy", np.zeros((3, 3)))
    (tmp_path / "Kbad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    np.savez(tmp_path / "clip.npz", hand_boxes=np.zeros((3, 4)))
    base = ["data", "trajectory", "--video", str(video), "--out", str(tmp_path / "t.npz")]
    for extra, expected in (
            (["--intrinsics", str(tmp_path / "K.txt")], "is not a NumPy array file"),
            (["--intrinsics", str(tmp_path / "Kzero.npy")], "K needs positive, finite focal lengths"),
            (["--intrinsics", str(tmp_path / "Kbad.npz")], "is not a NumPy array file"),
            (["--fov-deg", "90", "--model", str(tmp_path / "none.task")], "--model"),
            (["--fov-deg", "90", "--compare", str(tmp_path / "clip.npz")], "is not a demo's wrist file (no T_world_wrist")):
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err, (extra, err)
    for extra, expected in ((["--fov-deg", "-60"], "must be between 10 and 170 degrees"),
                            (["--fov-deg", "90", "--smooth", "-4"], "must be an integer >= 1")):
        res = subprocess.run([sys.executable, "-m", "pipelines.cli", *base, *extra], capture_output=True, text=True)
        assert res.returncode == 2 and expected in res.stderr, res.stderr


def test_grasp_detection_ignores_the_rest_before_the_reach():
    """Rest, accelerate, decelerate onto the object, short pause, lift: the grasp is the pause."""
    n, g = 100, 45
    t = np.arange(n, dtype=float)
    s = np.clip((t - 10) / (g - 10), 0, 1)
    x = 0.3 * (3 * s**2 - 2 * s**3)  # smooth start and stop
    z = np.where(t > g + 3, 0.004 * (t - g - 3), 0.0)
    tr = WristTrack(np.stack([x, np.zeros(n), z], 1), np.tile(np.eye(3), (n, 1, 1)), np.ones(n, bool), 30.0)
    assert abs(detect_grasp_frame(tr) - g) <= 4


def test_rotation_smoothing_removes_jitter_keeps_rotation():
    from pipelines.trajectory import smooth_rotations
    from deft_core.geometry import rotation_angle_between
    rng = np.random.default_rng(0)
    n = 60
    true = axis_angle_to_matrix(np.stack([np.zeros(n), np.zeros(n), np.linspace(0, 1.0, n)], 1))
    noisy = true @ axis_angle_to_matrix(rng.normal(scale=0.05, size=(n, 3)))
    sm = smooth_rotations(noisy, 5)
    e_noisy = np.degrees(rotation_angle_between(noisy, true))[5:-5].mean()
    e_sm = np.degrees(rotation_angle_between(sm, true))[5:-5].mean()
    assert e_sm < 0.6 * e_noisy


def _truth_demo(tmp_path):
    """A synthetic demo's <task>_wrist.npz (the --hand-pose truth input) next to a (missing) video."""
    tr = _track()
    T = np.tile(np.eye(4), (len(tr.positions), 1, 1))
    T[:, :3, :3], T[:, :3, 3] = tr.rotations, tr.positions
    np.savez(tmp_path / "pick_cup_wrist.npz", T_world_wrist=T, fps=30.0, grasp_frame=35, K=np.eye(3))
    return tmp_path / "pick_cup.mp4"


@pytest.mark.parametrize("content", [b"", bytes(np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8))],
                         ids=["empty", "random-bytes"])
def test_cli_undecodable_video_is_a_clean_error(tmp_path, capsys, content):
    (tmp_path / "bad.mp4").write_bytes(content)
    assert main(["data", "trajectory", "--video", str(tmp_path / "bad.mp4"), "--out", str(tmp_path / "t.npz"),
                 "--fov-deg", "90"]) == 2
    err = capsys.readouterr().err
    assert f"cannot decode video {tmp_path / 'bad.mp4'}" in err and "Traceback" not in err
    assert not (tmp_path / "t.npz").exists()


def test_cli_help_says_intrinsics_or_fov_is_required(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "trajectory", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help lines
    assert "this or --fov-deg is required" in text and "required with --hand-pose mediapipe when no --intrinsics" in text


def test_cli_unknown_task_fails_listing_the_tasks(tmp_path, capsys):
    video = _truth_demo(tmp_path)
    argv = ["data", "trajectory", "--video", str(video), "--out", str(tmp_path / "t.npz"), "--hand-pose", "truth"]
    assert main([*argv, "--task", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--task 'nope': unknown task" in err and "pick_cup" in err and "squeeze_lemon" in err
    assert not (tmp_path / "t.npz").exists()
    assert main([*argv, "--task", "pick_cup"]) == 0 and PostGraspTrajectory.load(tmp_path / "t.npz").task == "pick_cup"


def test_camera_poses_from_the_robot_config(tmp_path):
    """A lab demo filmed by the robot's fixed camera: --camera-poses takes the robot YAML and uses its
    calibrated camera.T_base_camera (the bundled lab config's matrix, exactly)."""
    import yaml

    from pipelines.trajectory import load_camera_poses
    from robot.config import example_config_path, load_robot_config

    lab = example_config_path("lab_xarm6")
    T = load_camera_poses(lab)
    assert T.shape == (1, 4, 4)
    np.testing.assert_allclose(T[0], load_robot_config(lab).camera.T_base_camera)
    bad = tmp_path / "nocam.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "arm": {"backend": "fake"}}))
    with pytest.raises(TrajectoryError, match="no camera.T_base_camera"):
        load_camera_poses(bad)
    with pytest.raises(TrajectoryError, match="not found"):
        load_camera_poses(tmp_path / "missing.yaml")
