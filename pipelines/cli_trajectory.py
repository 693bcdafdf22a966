"""Turn one human demo video into the post-grasp trajectory τ (paper §3.1): 40 wrist displacements.

Examples::

    deft data trajectory --video demo.mp4 --out pick_cup.npz --task pick_cup --intrinsics K.npy
    deft data trajectory --video _demos/pick_cup.mp4 --out pick_cup.npz --task pick_cup \\
        --intrinsics _demos/pick_cup_wrist.npz --camera-poses _demos/pick_cup_wrist.npz --compare _demos/pick_cup_wrist.npz
    deft data trajectory --video _demos/pick_cup.mp4 --out pick_cup.npz --hand-pose truth   # synthetic demos only

--intrinsics (a .npy 3x3 K or an .npz with 'K') or --fov-deg is required with --hand-pose mediapipe;
--task, when given, must be one of deft_core.tasks; --camera-poses: camera→base transforms
(T_world_camera in an .npz, or a (T,4,4)/(4,4) .npy; default: the camera frame is the base frame).
--hand-pose truth reads the synthetic demo's <task>_wrist.npz next to the video.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deft_core.cli_util import CommandError

HELP = "one human demo video → post-grasp trajectory τ (.npz)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from deft_core.cli_util import int_at_least

    p.add_argument("--video", required=True, help="demo video (RGB)")
    p.add_argument("--out", required=True, help="output .npz (deft_core.trajectory.PostGraspTrajectory)")
    p.add_argument("--hand-pose", default="mediapipe", choices=["mediapipe", "truth"])
    p.add_argument("--task", default="", help="task name stored with τ, one of deft_core.tasks (default: none)")
    p.add_argument("--intrinsics", help="K: .npy 3x3 or .npz with 'K'; this or --fov-deg is required "
                                        "with --hand-pose mediapipe (to place the wrist in metres)")
    p.add_argument("--fov-deg", type=_fov, default=None,
                   help="horizontal field of view, degrees; required with --hand-pose mediapipe when no --intrinsics")
    p.add_argument("--camera-poses", help="camera→base poses (.npz T_world_camera or .npy), or a robot config YAML "
                                          "(its calibrated camera.T_base_camera)")
    p.add_argument("--grasp-frame", type=int, default=None, help="0-based grasp frame (default: detected)")
    p.add_argument("--smooth", type=int_at_least(1), default=5, help="moving-average window for positions, frames (1: none)")
    p.add_argument("--model", help="MediaPipe .task bundle (default: the installed one)")
    p.add_argument("--compare", help="true wrist .npz (T_world_wrist, grasp_frame) to report the error against")


def _fov(text: str) -> float:
    """argparse type of --fov-deg: a pinhole camera's horizontal field of view, between 10 and 170 degrees."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of degrees, got {text!r}") from None
    if not 10.0 <= v <= 170.0:
        raise argparse.ArgumentTypeError(f"must be between 10 and 170 degrees (a pinhole camera's horizontal field "
                                         f"of view; GoPro-style wide lenses are 90-120), got {v:g}")
    return v


def _intrinsics(a, width: int, height: int):
    import numpy as np

    from pipelines.trajectory import load_intrinsics
    if a.intrinsics:
        return load_intrinsics(a.intrinsics)
    if a.fov_deg is None:
        raise CommandError("--intrinsics or --fov-deg is needed to place the wrist in metres")
    f = (width / 2.0) / np.tan(np.radians(a.fov_deg) / 2.0)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])


def _check_task(task: str) -> None:
    from deft_core.tasks import TASKS

    if task and task not in TASKS:
        raise CommandError(f"--task {task!r}: unknown task; known tasks: {', '.join(TASKS)}")


def run(a: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from pipelines.trajectory import (TrajectoryError, detect_grasp_frame, estimate_track, extract_trajectory,
                                      load_camera_poses, trajectory_error, truth_track)
    from pipelines.stages.video import VideoError

    _check_task(a.task)
    if a.model and not Path(a.model).is_file():
        raise CommandError(f"--model {a.model}: file not found (a MediaPipe .task bundle)")
    con = Console(stderr=True)
    video = Path(a.video)
    try:
        # the file to compare with is read first: a wrong one fails before the slow part, not after it
        compare_track, compare_grasp = truth_track(a.compare) if a.compare else (None, None)
        if a.hand_pose == "truth":
            wrist = video.with_name(f"{video.stem}_wrist.npz")
            track, true_grasp = truth_track(wrist)
            grasp = a.grasp_frame if a.grasp_frame is not None else true_grasp
            meta = {"source": "truth", "wrist_file": str(wrist)}
        else:
            import av
            if not video.is_file():
                raise CommandError(f"--video {video}: file not found")
            try:
                with av.open(str(video)) as c:
                    if not c.streams.video:
                        raise CommandError(f"cannot decode video {video}: no video stream")
                    s = c.streams.video[0]
                    width, height = s.width, s.height
            except av.error.FFmpegError as exc:  # random bytes, an empty or truncated file
                raise CommandError(f"cannot decode video {video}: {exc.strerror or exc}") from None
            K = _intrinsics(a, width, height)
            cams = load_camera_poses(a.camera_poses) if a.camera_poses else None
            try:
                with Progress(console=con, transient=True) as bar:
                    task = bar.add_task("hand pose per frame", total=None)
                    track = estimate_track(video, K, cams, a.model, a.smooth,
                                           progress=lambda i, n: bar.update(task, completed=i, total=n))
            except (av.error.FFmpegError, VideoError) as exc:  # a header that opens, frames that do not decode
                raise CommandError(f"cannot decode video {video}: {exc}") from None
            except RuntimeError as exc:
                if a.model:  # MediaPipe refusing the given bundle ("Unable to open zip archive")
                    raise CommandError(f"--model {a.model}: MediaPipe cannot load it ({exc})") from None
                raise
            grasp = a.grasp_frame if a.grasp_frame is not None else detect_grasp_frame(track)
            meta = {"source": "mediapipe", "detected_fraction": float(track.detected.mean()),
                    "base_frame": "camera_poses" if cams is not None else "camera"}
        tau = extract_trajectory(track, grasp, a.task, {"video": str(video), **meta})
    except TrajectoryError as exc:
        raise CommandError(str(exc)) from exc
    tau.save(a.out)
    result = {"out": str(a.out), "grasp_frame": int(grasp), **meta}
    if compare_track is not None:
        try:
            true_tau = extract_trajectory(compare_track, compare_grasp, a.task)
        except TrajectoryError as exc:
            raise CommandError(f"--compare {a.compare}: {exc}") from exc
        result["true_grasp_frame"] = compare_grasp
        result["error"] = trajectory_error(tau, true_tau)
    print(json.dumps(result, indent=2))
    return 0
