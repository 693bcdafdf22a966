"""Calibration commands of ``deft-robot``.

``deft-robot calibrate-camera``: camera extrinsics ``T_base_camera`` (and an intrinsics check) from
images of a checkerboard or an ArUco marker::

    # board lying face-up on the table at a measured pose (4x4 T_base_board, metres, in YAML or JSON);
    # K.json: the camera's factory intrinsics (a RealSense reports them)
    deft-robot calibrate-camera --images calib/ --board checkerboard:9x6:0.025 \\
        --board-pose board_pose.yaml --intrinsics K.json --config robot/configs/lab_xarm6.yaml
    # board fixed on the wrist; robot_poses.json maps image file name -> 4x4 T_base_wrist
    deft-robot calibrate-camera --images calib/ --board aruco:4X4_50:0.08:0 \\
        --robot-poses robot_poses.json --intrinsics K.json --config robot/configs/lab_xarm6.yaml

``deft-robot calibrate-hand``: fit the hand's joint → motor mapping (Appendix B) from calibration pairs
(CSV ``motor_0..15, joint_0..15`` or JSON ``{"pairs": [{"motor": [...], "joint": [...]}]}``, radians)::

    deft-robot calibrate-hand --pairs pairs.csv --config robot/configs/lab_xarm6.yaml

Both write the result into the robot config (unless ``--dry-run``) and can save a JSON report (``--out``).

Without ``--intrinsics`` the intrinsics are calibrated from the images (``cv2.calibrateCamera``), which is
only meaningful when the views differ: >= 3 distinct views with board planes >= 10° apart (e.g. a board on
the wrist). Repeated views of a board fixed on the table are refused, as are implausible results (RMS,
focal length, principal point, distortion), instead of writing a wrong ``T_base_camera``; with
``--board-pose`` every image must agree on ``T_base_camera`` (within 1 cm / 1°).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from deft_core.cli_util import CommandError

HELP = "calibrate the camera extrinsics (calibrate-camera) or the hand's joint→motor mapping (calibrate-hand)"
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def _command(parser: argparse.ArgumentParser) -> str:
    return "calibrate-hand" if parser.prog.endswith("calibrate-hand") else "calibrate-camera"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(_command=_command(parser))
    if _command(parser) == "calibrate-hand":
        parser.add_argument("--pairs", required=True, type=Path, help="calibration pairs (CSV or JSON, radians)")
    else:
        parser.add_argument("--images", required=True, type=Path, help="folder of board images")
        parser.add_argument("--board", required=True, help="checkerboard:COLSxROWS:SQUARE_M or aruco:DICT:SIDE_M[:ID]")
        parser.add_argument("--intrinsics", type=Path, help="JSON {K: 3x3, dist: [k1 k2 p1 p2 k3]}, e.g. the camera's "
                            "factory intrinsics; default: calibrated from the images (>= 3 views at board tilts >= 10 "
                            "deg apart; a board fixed on the table needs --intrinsics); when given, diverse images check it")
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--board-pose", type=Path, help="YAML/JSON 4x4 T_base_board of a board fixed on the table")
        where.add_argument("--robot-poses", type=Path, help="JSON {image file name: 4x4 T_base_wrist}, board on the wrist")
    parser.add_argument("--config", type=Path, help="robot config to update (camera.T_base_camera / hand.scale, offset)")
    parser.add_argument("--dry-run", action="store_true", help="compute and report, do not write the config")
    parser.add_argument("--out", type=Path, help="write a JSON report here")


def _load_matrix(path: Path, shape=(4, 4)) -> np.ndarray:
    import yaml

    if not path.is_file():
        raise CommandError(f"{path} does not exist")
    try:
        m = np.asarray(yaml.safe_load(path.read_text()), dtype=np.float64)
    except (ValueError, TypeError, yaml.YAMLError) as exc:
        raise CommandError(f"{path}: expected a {shape[0]}x{shape[1]} matrix ({exc})") from None
    if m.shape != shape:
        raise CommandError(f"{path}: expected a {shape[0]}x{shape[1]} matrix, got shape {m.shape}")
    return m


def _finish(args, report: dict, keys_values: list[tuple[tuple[str, ...], object]]) -> int:
    from robot.base import ConfigError
    from robot.config import update_robot_config

    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
        print(f"report written to {args.out}")
    if args.config and not args.dry_run:
        try:
            for keys, value in keys_values:
                update_robot_config(args.config, keys, value)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        print(f"updated {', '.join('.'.join(k) for k, _ in keys_values)} in {args.config}")
    elif not args.config:
        print("no --config given: nothing written")
    return 0


def _run_camera(args) -> int:
    import cv2

    from robot import calibration as cal

    try:
        spec = cal.BoardSpec.parse(args.board)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not args.images.is_dir():
        raise CommandError(f"--images {args.images} is not a folder")
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise CommandError(f"no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) in {args.images}")
    found, size = {}, None
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise CommandError(f"cannot read image {f}")
        size = (img.shape[1], img.shape[0])
        try:
            pts = cal.detect_board(img, spec)
        except ValueError as exc:
            raise CommandError(f"{f.name}: {exc}") from None
        print(f"{f.name}: {'board found' if pts is not None else 'no board'}")
        if pts is not None:
            found[f.name] = pts
    if not found:
        raise CommandError(f"the board {args.board!r} was not found in any of the {len(files)} images")
    report: dict = {"board": args.board, "images": len(files), "detected": sorted(found)}
    if args.intrinsics:
        data = json.loads(args.intrinsics.read_text())
        K, dist = np.asarray(data["K"], dtype=np.float64), np.asarray(data.get("dist", np.zeros(5)), dtype=np.float64)
        if len(found) >= 3 and spec.kind == "checkerboard":
            why = cal.diversity_problem(list(found.values()), spec, size)
            if why:  # e.g. a board fixed on the table: calibrateCamera would be degenerate, its K meaningless
                report["intrinsics_check"] = {"skipped": why}
                print(f"intrinsics check skipped: {why}")
            else:
                K_cal, _, rms = cal.calibrate_intrinsics(list(found.values()), spec, size)
                df = float(np.max(np.abs(np.diag(K_cal)[:2] / np.diag(K)[:2] - 1)))
                report["intrinsics_check"] = {"K_calibrated": K_cal.tolist(), "rms_px": rms, "focal_rel_diff": df}
                print(f"intrinsics check: focal lengths differ by {100 * df:.2f}% (calibration RMS {rms:.3f} px)")
    else:
        if spec.kind != "checkerboard" or len(found) < 3:
            raise CommandError("without --intrinsics the images must show a checkerboard in >= 3 views "
                               f"(found {len(found)}) to calibrate the intrinsics")
        why = cal.diversity_problem(list(found.values()), spec, size)
        if why is None:
            K, dist, rms = cal.calibrate_intrinsics(list(found.values()), spec, size)
            why = cal.intrinsics_problem(K, dist, rms, size, list(found.values()))
            if why:
                why = (f"the calibrated intrinsics are implausible: {why} (fx {K[0, 0]:.0f} fy {K[1, 1]:.0f} "
                       f"cx {K[0, 2]:.0f} cy {K[1, 2]:.0f} px)")
        if why:
            tilt = (f", or take views of the board at different tilts (>= {cal.MIN_TILT_SPREAD_DEG:g} deg apart)"
                    if args.robot_poses else
                    ": with --board-pose the board stays at its one measured pose, so views of it at different "
                    "tilts need the board on the wrist (--robot-poses)")
            raise CommandError(f"cannot calibrate the intrinsics from these images: {why}; pass --intrinsics K.json "
                               f"(e.g. the camera's factory intrinsics, which a RealSense reports){tilt}")
        report["intrinsics"] = {"K": K.tolist(), "dist": dist.tolist(), "rms_px": rms}
        print(f"intrinsics: fx {K[0, 0]:.1f} fy {K[1, 1]:.1f} cx {K[0, 2]:.1f} cy {K[1, 2]:.1f} px (RMS {rms:.3f} px)")
    views = {name: cal.board_pose(p, spec, K, dist) for name, p in found.items()}
    report["pnp_rms_px"] = {name: v[1] for name, v in views.items()}
    if args.board_pose:
        T_base_board = _load_matrix(args.board_pose)
        dt, da = cal.extrinsics_spread([v[0] for v in views.values()], T_base_board)
        report["extrinsics_spread"] = {"m": dt, "deg": da}
        if dt > 0.01 or da > 1.0:
            raise CommandError(f"the images disagree about T_base_camera by {100 * dt:.1f} cm / {da:.1f} deg: with "
                               "--board-pose every image must show the board at that one measured pose, seen by the "
                               "fixed camera (remove the images where the board or the camera moved)")
        T = cal.extrinsics_from_board_pose([v[0] for v in views.values()], T_base_board)
    else:
        poses = json.loads(args.robot_poses.read_text())
        names = [n for n in views if n in poses]
        if len(names) < 3:
            raise CommandError(f"{args.robot_poses}: need wrist poses for >= 3 images with a detected board, "
                               f"have {len(names)} ({names})")
        T, T_wb = cal.extrinsics_hand_eye([np.asarray(poses[n], dtype=np.float64) for n in names], [views[n][0] for n in names])
        report["T_wrist_board"] = T_wb.tolist()
    report["T_base_camera"] = T.tolist()
    print("T_base_camera =\n" + np.array2string(T, precision=4, suppress_small=True))
    return _finish(args, report, [(("camera", "T_base_camera"), T)])


def _run_hand(args) -> int:
    from robot import calibration as cal

    try:
        motor, joint = cal.load_pairs(args.pairs)
        fit = cal.fit_hand_mapping(motor, joint)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    from deft_core.grasp import HAND_JOINT_NAMES

    print(f"{'joint':<18}{'scale':>9}{'offset':>9}{'rms (rad)':>11}{'pairs':>7}")
    for i, name in enumerate(HAND_JOINT_NAMES):
        print(f"{name:<18}{fit.scale[i]:>9.4f}{fit.offset[i]:>9.4f}{fit.rms[i]:>11.4f}{fit.count[i]:>7d}")
    report = {"scale": fit.scale.tolist(), "offset": fit.offset.tolist(), "rms_rad": fit.rms.tolist(),
              "pairs": fit.count.tolist(), "source": str(args.pairs)}
    return _finish(args, report, [(("hand", "scale"), fit.scale), (("hand", "offset"), fit.offset)])


def run(args: argparse.Namespace) -> int:
    # checked before any work: a fit computed and then lost to a mistyped --config path helps nobody
    if args.config is not None and not args.dry_run and not args.config.is_file():
        raise CommandError(f"--config {args.config} does not exist (the robot YAML to update; --dry-run to only "
                           "compute and report)")
    if args.out is not None and not args.out.parent.is_dir():
        raise CommandError(f"--out {args.out}: folder {args.out.parent} does not exist")
    return _run_hand(args) if args._command == "calibrate-hand" else _run_camera(args)
