"""Camera extrinsics/intrinsics from synthetic board images (drawn and warped by OpenCV at known poses) and
the hand joint→motor mapping fit from synthetic pairs."""

import cv2
import numpy as np
import pytest

from deft_core.geometry import (euler_xyz_to_matrix, intrinsics_matrix, invert_transform, look_at, make_transform,
                                rotation_angle_between)
from robot.calibration import (BoardSpec, board_pose, calibrate_intrinsics, detect_board, extrinsics_from_board_pose,
                               extrinsics_hand_eye, fit_hand_mapping, load_pairs)

W, H = 640, 480
K = intrinsics_matrix(600.0, 600.0, 319.5, 239.5)
SPEC = BoardSpec.parse("checkerboard:9x6:0.025")


def _texture(spec, px=40, margin=40):
    cols, rows = spec.cols + 1, spec.rows + 1  # squares
    img = np.full((rows * px + 2 * margin, cols * px + 2 * margin), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            if (r + c) % 2 == 0:
                img[margin + r * px: margin + (r + 1) * px, margin + c * px: margin + (c + 1) * px] = 0
    s = spec.size / px
    c0 = margin + px - 0.5  # the first inner corner (board origin) lies between pixel centres
    return img, np.array([[s, 0, -c0 * s], [0, s, -c0 * s], [0, 0, 1.0]])


def render(T_camera_board, spec=SPEC, texture=None):
    tex, S = texture if texture is not None else _texture(spec)
    Hm = K @ np.column_stack([T_camera_board[:3, 0], T_camera_board[:3, 1], T_camera_board[:3, 3]]) @ S
    return cv2.warpPerspective(tex, Hm, (W, H), flags=cv2.INTER_LINEAR, borderValue=160)


def _board_facing_camera(dist, tilt):
    """A board pose in the camera frame, roughly fronto-parallel, centred in view."""
    R = euler_xyz_to_matrix(tilt)
    centre = np.array([(SPEC.cols - 1) * SPEC.size / 2, (SPEC.rows - 1) * SPEC.size / 2, 0.0])
    return make_transform(R, np.array([0.0, 0.0, dist]) - R @ centre)


def test_board_spec_parsing():
    assert (SPEC.cols, SPEC.rows, SPEC.size) == (9, 6, 0.025)
    a = BoardSpec.parse("aruco:4x4_50:0.08:3")
    assert a.kind == "aruco" and a.dictionary == "4X4_50" and a.marker_id == 3
    with pytest.raises(ValueError, match="checkerboard:COLSxROWS"):
        BoardSpec.parse("chessboard:9x6")


def test_intrinsics_and_pose_from_rendered_checkerboards():
    tilts = [(0.0, 0.0, 0.0), (0.35, 0.0, 0.05), (-0.3, 0.25, 0.0), (0.0, -0.4, -0.1), (0.25, 0.3, 0.1)]
    poses = [_board_facing_camera(0.45 + 0.03 * i, t) for i, t in enumerate(tilts)]
    pts = []
    for T in poses:
        p = detect_board(render(T), SPEC)
        assert p is not None
        pts.append(p)
    K_est, dist, rms = calibrate_intrinsics(pts, SPEC, (W, H))
    assert rms < 0.5
    np.testing.assert_allclose(np.diag(K_est)[:2], [600.0, 600.0], rtol=0.02)
    for p, T in zip(pts, poses):
        T_est, err = board_pose(p, SPEC, K)
        assert err < 0.5
        np.testing.assert_allclose(T_est[:3, 3], T[:3, 3], atol=2e-3)
        assert rotation_angle_between(T_est[:3, :3], T[:3, :3]) < np.deg2rad(0.5)


def test_extrinsics_from_a_board_on_the_table():
    eye = np.array([-0.1, 0.05, 0.75])
    T_base_cam = make_transform(look_at(eye, [0.45, 0.0, 0.0]), eye)
    T_base_board = make_transform(euler_xyz_to_matrix([np.pi, 0, np.pi / 2]), [0.50, -0.06, 0.0])  # face up: z down
    T_cam_board = invert_transform(T_base_cam) @ T_base_board
    p = detect_board(render(T_cam_board), SPEC)
    assert p is not None
    T_est, _ = board_pose(p, SPEC, K)
    T = extrinsics_from_board_pose([T_est], T_base_board)
    np.testing.assert_allclose(T[:3, 3], T_base_cam[:3, 3], atol=5e-3)
    assert rotation_angle_between(T[:3, :3], T_base_cam[:3, :3]) < np.deg2rad(0.5)


def test_hand_eye_extrinsics_with_the_board_on_the_wrist():
    eye = np.array([0.9, 0.0, 0.55])
    T_base_cam = make_transform(look_at(eye, [0.4, 0.0, 0.25]), eye)
    T_wrist_board = make_transform(euler_xyz_to_matrix([0.3, -np.pi / 2, 0.2]), [0.02, -0.07, -0.05])
    rng = np.random.default_rng(0)
    wrists, views = [], []
    for i in range(6):  # the wrist moves so that the board stays in view with varied orientations
        T_cb = _board_facing_camera(rng.uniform(0.4, 0.6), rng.uniform(-0.4, 0.4, 3))
        T_cb[:3, 3] += rng.uniform(-0.04, 0.04, 3)
        p = detect_board(render(T_cb), SPEC)
        assert p is not None
        wrists.append(T_base_cam @ T_cb @ invert_transform(T_wrist_board))
        views.append(board_pose(p, SPEC, K)[0])
        assert rotation_angle_between(views[-1][:3, :3], T_cb[:3, :3]) < np.deg2rad(1.0)  # no flipped ordering
    T, T_wb = extrinsics_hand_eye(wrists, views)
    np.testing.assert_allclose(T_wb[:3, 3], T_wrist_board[:3, 3], atol=5e-3)
    np.testing.assert_allclose(T[:3, 3], T_base_cam[:3, 3], atol=5e-3)
    assert rotation_angle_between(T[:3, :3], T_base_cam[:3, :3]) < np.deg2rad(0.5)


def test_checkerboard_origin_is_unique_under_a_half_turn():
    T = _board_facing_camera(0.5, (0.1, 0.0, 0.0))
    flipped = T @ make_transform(euler_xyz_to_matrix([0, 0, np.pi]), [(SPEC.cols - 1) * SPEC.size, (SPEC.rows - 1) * SPEC.size, 0])
    for pose in (T, flipped):
        p = detect_board(render(pose), SPEC)
        T_est, _ = board_pose(p, SPEC, K)
        assert rotation_angle_between(T_est[:3, :3], pose[:3, :3]) < np.deg2rad(1.0)
        np.testing.assert_allclose(T_est[:3, 3], pose[:3, 3], atol=3e-3)


def test_aruco_marker_pose():
    spec = BoardSpec.parse("aruco:4X4_50:0.10:7")
    px = 200
    marker = cv2.aruco.generateImageMarker(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50), 7, px)
    tex = np.full((px + 80, px + 80), 255, np.uint8)
    tex[40:40 + px, 40:40 + px] = marker
    s = spec.size / px  # texture (u, v) → board (x right, y up), origin at the marker centre
    c = 40 - 0.5 + px / 2  # marker centre in texture pixel-centre coordinates
    S = np.array([[s, 0, -c * s], [0, -s, c * s], [0, 0, 1.0]])
    T = make_transform(euler_xyz_to_matrix([np.pi + 0.3, 0.2, 0.1]), [0.02, -0.01, 0.6])
    p = detect_board(render(T, texture=(tex, S)), spec)
    assert p is not None
    T_est, err = board_pose(p, spec, K)
    assert err < 1.0
    np.testing.assert_allclose(T_est[:3, 3], T[:3, 3], atol=5e-3)
    assert rotation_angle_between(T_est[:3, :3], T[:3, :3]) < np.deg2rad(2.0)
    assert detect_board(render(T, texture=(tex, S)), BoardSpec.parse("aruco:4X4_50:0.10:8")) is None


def test_hand_mapping_fit_from_noisy_pairs(tmp_path):
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.8, 1.3, 16) * rng.choice([-1, 1], 16)
    offset = np.pi + rng.uniform(-0.2, 0.2, 16)
    joint = rng.uniform(0.0, 1.5, (40, 16))
    motor = scale * joint + offset
    observed = joint + rng.normal(0, 0.01, joint.shape)  # visual measurement noise
    observed[::7, 3] = np.nan  # some joints not visible in some pairs
    fit = fit_hand_mapping(motor, observed)
    np.testing.assert_allclose(fit.scale, scale, rtol=0.03)
    np.testing.assert_allclose(fit.offset, offset, atol=0.03)
    assert np.all(fit.rms < 0.03) and fit.count[3] < 40
    # CSV round trip, missing values as empty cells
    import csv
    path = tmp_path / "pairs.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([f"motor_{i}" for i in range(16)] + [f"joint_{i}" for i in range(16)])
        for m, j in zip(motor, observed):
            w.writerow(list(m) + ["" if np.isnan(v) else v for v in j])
    m2, j2 = load_pairs(path)
    np.testing.assert_allclose(m2, motor)
    assert np.isnan(j2[0, 3])
    with pytest.raises(ValueError, match="index_mcp_side.*got 1 pair\\(s\\) where it was observed"):
        fit_hand_mapping(motor[:1], observed[:1])
    with pytest.raises(ValueError, match="all at the same observed angle"):
        fit_hand_mapping(motor[:3], np.repeat(observed[:1], 3, axis=0))


def test_cli_calibrate_camera_and_hand_write_the_config(tmp_path, capsys):
    import json

    import yaml

    from robot.cli import main
    from robot.config import example_config_path, load_robot_config

    cfg = tmp_path / "lab.yaml"
    cfg.write_text(example_config_path("lab_xarm6").read_text())
    eye = np.array([-0.1, 0.05, 0.75])
    T_base_cam = make_transform(look_at(eye, [0.45, 0.0, 0.0]), eye)
    T_base_board = make_transform(euler_xyz_to_matrix([np.pi, 0, np.pi / 2]), [0.50, -0.06, 0.0])
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "a.png"), render(invert_transform(T_base_cam) @ T_base_board))
    (tmp_path / "board.yaml").write_text(yaml.safe_dump(T_base_board.tolist()))
    (tmp_path / "K.json").write_text(json.dumps({"K": K.tolist()}))
    rc = main(["calibrate-camera", "--images", str(imgs), "--board", "checkerboard:9x6:0.025", "--intrinsics",
               str(tmp_path / "K.json"), "--board-pose", str(tmp_path / "board.yaml"), "--config", str(cfg),
               "--out", str(tmp_path / "report.json")])
    assert rc == 0
    T = load_robot_config(cfg).camera.T_base_camera
    np.testing.assert_allclose(T[:3, 3], T_base_cam[:3, 3], atol=5e-3)
    assert "T_base_camera" in json.loads((tmp_path / "report.json").read_text())

    rng = np.random.default_rng(1)
    joint = rng.uniform(0, 1.2, (10, 16))
    motor = 1.1 * joint + 3.0
    pairs = {"pairs": [{"motor": m.tolist(), "joint": j.tolist()} for m, j in zip(motor, joint)]}
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    assert main(["calibrate-hand", "--pairs", str(tmp_path / "pairs.json"), "--config", str(cfg)]) == 0
    hand = load_robot_config(cfg).hand.options
    np.testing.assert_allclose(hand.scale, 1.1, rtol=1e-6)
    np.testing.assert_allclose(hand.offset, 3.0, rtol=1e-6)
    # errors are named, exit status 2
    assert main(["calibrate-camera", "--images", str(tmp_path / "nope"), "--board", "checkerboard:9x6:0.025",
                 "--board-pose", str(tmp_path / "board.yaml")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    # a mistyped --config is refused before the fit, not after it (the fit was printed, then lost)
    assert main(["calibrate-hand", "--pairs", str(tmp_path / "pairs.json"), "--config", str(tmp_path / "lab.yml")]) == 2
    captured = capsys.readouterr()
    assert "--config" in captured.err and "does not exist" in captured.err and "scale" not in captured.out


# ------------------------------------------------- self-calibrated intrinsics need diverse views

def _table_setup(tmp_path, copies=3):
    """The lab procedure: a board fixed on the table at a measured pose, a fixed camera, ``copies`` images
    (all the same view)."""
    import yaml

    eye = np.array([-0.1, 0.05, 0.75])
    T_base_cam = make_transform(look_at(eye, [0.45, 0.0, 0.0]), eye)
    T_base_board = make_transform(euler_xyz_to_matrix([np.pi, 0, np.pi / 2]), [0.50, -0.06, 0.0])
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    view = render(invert_transform(T_base_cam) @ T_base_board)
    for i in range(copies):
        cv2.imwrite(str(imgs / f"view{i}.png"), view)
    (tmp_path / "board.yaml").write_text(yaml.safe_dump(T_base_board.tolist()))
    return imgs, T_base_cam


def test_calibrate_camera_refuses_intrinsics_from_identical_views(tmp_path, capsys):
    """Three images of a board fixed in front of a fixed camera: cv2.calibrateCamera is degenerate there
    (fx 365 px for a true 600, wild distortion, a T_base_camera centimetres off); refused with exit 2 and
    the advice to pass --intrinsics, nothing written."""
    from robot.cli import main

    imgs, _ = _table_setup(tmp_path)
    rc = main(["calibrate-camera", "--images", str(imgs), "--board", "checkerboard:9x6:0.025",
               "--board-pose", str(tmp_path / "board.yaml"), "--out", str(tmp_path / "report.json")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "cannot calibrate the intrinsics from these images: only 1 distinct view(s) of the board among 3" in err
    assert "pass --intrinsics K.json (e.g. the camera's factory intrinsics, which a RealSense reports)" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "report.json").exists()
    # slightly moved but never tilted views are refused too: every board plane is parallel
    from robot.calibration import diversity_problem

    pts = [detect_board(render(_board_facing_camera(0.5 + 0.02 * i, (0.1, 0.05, 0.1 * i))), SPEC) for i in range(4)]
    assert "same tilt in every view" in diversity_problem(pts, SPEC, (W, H))


def test_calibrate_camera_implausible_intrinsics_are_refused():
    from robot.calibration import intrinsics_problem

    assert intrinsics_problem(K, np.zeros(5), 0.2, (W, H)) is None
    assert "reprojection RMS 3.00 px" in intrinsics_problem(K, np.zeros(5), 3.0, (W, H))
    assert "differ by 20 %" in intrinsics_problem(intrinsics_matrix(365.0, 305.0, 300.0, 205.0), np.zeros(5), 0.3, (W, H))
    assert "outside 0.2-5 x the image width" in intrinsics_problem(intrinsics_matrix(90.0, 90.0, 319.5, 239.5),
                                                                   np.zeros(5), 0.3, (W, H))
    assert "distortion" in intrinsics_problem(intrinsics_matrix(509.0, 509.0, 319.5, 239.5),
                                              np.array([-3.39, 187.0, 0.0, 0.0, -2792.0]), 0.3, (W, H))


def test_calibrate_camera_self_calibrates_from_diverse_views_on_the_wrist(tmp_path, capsys):
    """Board on the wrist, views at tilts up to ~23 deg: the intrinsics are still calibrated from the
    images (no --intrinsics) and T_base_camera is accurate. With --board-pose such views are refused:
    a board at one measured pose cannot have different tilts."""
    import json

    import yaml

    from robot.cli import main

    eye = np.array([0.9, 0.0, 0.55])
    T_base_cam = make_transform(look_at(eye, [0.4, 0.0, 0.25]), eye)
    T_wrist_board = make_transform(euler_xyz_to_matrix([0.3, -np.pi / 2, 0.2]), [0.02, -0.07, -0.05])
    rng = np.random.default_rng(0)
    imgs, poses = tmp_path / "imgs", {}
    imgs.mkdir()
    for i in range(6):
        T_cb = _board_facing_camera(rng.uniform(0.4, 0.6), rng.uniform(-0.4, 0.4, 3))
        T_cb[:3, 3] += rng.uniform(-0.04, 0.04, 3)
        cv2.imwrite(str(imgs / f"w{i}.png"), render(T_cb))
        poses[f"w{i}.png"] = (T_base_cam @ T_cb @ invert_transform(T_wrist_board)).tolist()
    (tmp_path / "poses.json").write_text(json.dumps(poses))
    rc = main(["calibrate-camera", "--images", str(imgs), "--board", "checkerboard:9x6:0.025",
               "--robot-poses", str(tmp_path / "poses.json"), "--out", str(tmp_path / "report.json")])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "report.json").read_text())
    np.testing.assert_allclose(np.diag(report["intrinsics"]["K"])[:2], [600.0, 600.0], rtol=0.02)
    np.testing.assert_allclose(np.array(report["T_base_camera"])[:3, 3], T_base_cam[:3, 3], atol=5e-3)
    (tmp_path / "board.yaml").write_text(yaml.safe_dump(np.eye(4).tolist()))
    assert main(["calibrate-camera", "--images", str(imgs), "--board", "checkerboard:9x6:0.025",
                 "--board-pose", str(tmp_path / "board.yaml")]) == 2
    assert "with --board-pose every image must show the board at that one measured pose" in capsys.readouterr().err


def test_calibrate_camera_with_intrinsics_accepts_identical_views(tmp_path, capsys):
    """The lab procedure with the factory intrinsics: identical views are fine (no intrinsics are estimated
    from them; the degenerate self-check is skipped, not reported as a focal length difference)."""
    import json

    from robot.cli import main

    imgs, T_base_cam = _table_setup(tmp_path)
    (tmp_path / "K.json").write_text(json.dumps({"K": K.tolist()}))
    rc = main(["calibrate-camera", "--images", str(imgs), "--board", "checkerboard:9x6:0.025", "--intrinsics",
               str(tmp_path / "K.json"), "--board-pose", str(tmp_path / "board.yaml"), "--out", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "intrinsics check skipped: only 1 distinct view(s)" in out and "focal lengths differ" not in out
    report = json.loads((tmp_path / "r.json").read_text())
    T = np.array(report["T_base_camera"])
    np.testing.assert_allclose(T[:3, 3], T_base_cam[:3, 3], atol=5e-3)
    assert rotation_angle_between(T[:3, :3], T_base_cam[:3, :3]) < np.deg2rad(0.5)
    assert report["extrinsics_spread"]["m"] < 1e-3
