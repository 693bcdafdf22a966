"""One human demo video → the post-grasp trajectory τ (paper §3.1): the first 40 wrist displacements
after the grasp, as :class:`deft_core.trajectory.PostGraspTrajectory`.

Steps (:func:`extract_trajectory`):

1. **Wrist pose per frame** in the camera frame (OpenCV axes), from a hand-pose estimator:
   ``mediapipe`` — MediaPipe landmarks → MANO skeleton fit → PnP of the fitted skeleton on the 2-D
   landmarks with the camera intrinsics K (rotation + metric position; the hand is assumed MANO-sized);
   frames without a detection are filled by linear interpolation (positions) / nearest (rotations);
   positions get a running median then a moving average, rotations a quaternion moving average
   (``smooth`` frames each).
2. **Base frame**: with ``camera_poses`` (T_base_camera per frame, e.g. a fixed calibrated camera or a
   SLAM track) the wrist poses are mapped into the base frame; without, the camera frame is the base.
3. **Grasp frame**: given, or detected (:func:`detect_grasp_frame`) as the slowest moment of the wrist
   after the fastest moment of the approach.
4. τ = first 40 differences of position and extrinsic-xyz Euler angles after the grasp frame.

``truth`` reads the synthetic demo's ``<task>_wrist.npz`` (``T_world_wrist``, ``grasp_frame``) instead of
estimating: the reference the estimate is compared with (:func:`trajectory_error`).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deft_core.geometry import axis_angle_to_matrix, matrix_to_euler_xyz, matrix_to_quaternion, quaternion_to_matrix, wrap_angle
from deft_core.trajectory import TRAJECTORY_STEPS, PostGraspTrajectory
from deft_core.video import video_length


class TrajectoryError(ValueError):
    """A demo that cannot be turned into τ (the message names the file / reason)."""


@dataclass
class WristTrack:
    positions: np.ndarray   #: (T, 3) m, base frame
    rotations: np.ndarray   #: (T, 3, 3) wrist frame → base frame
    detected: np.ndarray    #: (T,) bool, frame had a hand detection (all True for truth)
    fps: float


def _load_array(path: Path, key: str, what: str) -> np.ndarray:
    """The array stored under ``key`` in an ``.npz`` file, or the whole ``.npy`` file (never unpickles)."""
    if not path.is_file():
        raise TrajectoryError(f"{what} file not found: {path}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if key not in z:
                    raise TrajectoryError(f"{path}: no '{key}' array")
                return z[key]
        return np.load(path, allow_pickle=False)
    except TrajectoryError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:  # text, damaged, or pickled object arrays
        raise TrajectoryError(f"{what} file {path} is not a NumPy array file (.npy from numpy.save, .npz from "
                              f"numpy.savez; {type(exc).__name__})") from None


def load_camera_poses(path: str | Path) -> np.ndarray:
    """(T, 4, 4) camera → base transforms from ``.npz`` (key ``T_world_camera``), ``.npy``, or a robot
    config YAML (its ``camera.T_base_camera``: a demo filmed by the robot's calibrated, fixed camera)."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        if not path.is_file():
            raise TrajectoryError(f"camera poses file not found: {path}")
        try:
            doc = yaml.safe_load(path.read_text())
            T = np.asarray(doc["camera"]["T_base_camera"], dtype=np.float64)
        except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise TrajectoryError(f"{path}: no camera.T_base_camera 4x4 matrix in this robot config ({exc})") from None
        if T.shape != (4, 4):
            raise TrajectoryError(f"{path}: camera.T_base_camera must be 4x4, got {T.shape}")
        return T[None]
    T = _load_array(path, "T_world_camera", "camera poses")
    if T.ndim == 2:
        T = T[None]
    if T.shape[1:] != (4, 4):
        raise TrajectoryError(f"{path}: camera poses must be (T, 4, 4), got {T.shape}")
    return T.astype(np.float64)


def load_intrinsics(path: str | Path) -> np.ndarray:
    path = Path(path)
    K = _load_array(path, "K", "intrinsics")
    if K.shape != (3, 3):
        raise TrajectoryError(f"{path}: K must be 3x3, got {K.shape}")
    K = K.astype(np.float64)
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise TrajectoryError(f"{path}: K needs positive, finite focal lengths (K[0,0], K[1,1]), got {K[0, 0]:g}, {K[1, 1]:g}")
    return K


def truth_track(wrist_npz: str | Path) -> tuple[WristTrack, int]:
    """The synthetic demo's true wrist track (world frame) and grasp frame."""
    path = Path(wrist_npz)
    if not path.is_file():
        raise TrajectoryError(f"demo wrist file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("T_world_wrist", "fps", "grasp_frame") if k not in z]
            if missing:
                raise TrajectoryError(f"{path} is not a demo's wrist file (no {', '.join(missing)}; the generator "
                                      "writes _demos/<task>_wrist.npz)")
            T = z["T_world_wrist"].astype(np.float64)
            return WristTrack(T[:, :3, 3], T[:, :3, :3], np.ones(len(T), bool), float(z["fps"])), int(z["grasp_frame"])
    except TrajectoryError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise TrajectoryError(f"{path} is not a demo's wrist file (.npz; {type(exc).__name__})") from None


def _fill(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        raise TrajectoryError("no frame of the demo has a hand detection")
    t = np.arange(len(values))
    out = values.copy()
    if values.ndim == 2:  # positions: linear interpolation
        for d in range(values.shape[1]):
            out[:, d] = np.interp(t, idx, values[idx, d])
    else:  # rotations: nearest detected frame
        near = idx[np.abs(t[:, None] - idx[None]).argmin(1)]
        out = values[near]
    return out


def smooth_positions(p: np.ndarray, window: int) -> np.ndarray:
    if window <= 1:
        return p
    k = np.ones(window) / window
    pad = np.pad(p, ((window // 2, window - 1 - window // 2), (0, 0)), mode="edge")
    return np.stack([np.convolve(pad[:, d], k, mode="valid") for d in range(3)], 1)


def median_filter(p: np.ndarray, window: int) -> np.ndarray:
    """Centred running median per column (edges padded): removes single-frame jumps of the estimator."""
    if window <= 1:
        return p
    pad = np.pad(p, ((window // 2, window - 1 - window // 2), (0, 0)), mode="edge")
    return np.stack([np.median(pad[i:i + window], axis=0) for i in range(len(p))])


def smooth_rotations(R: np.ndarray, window: int) -> np.ndarray:
    """Moving average of rotations as sign-aligned unit quaternions (chordal mean), renormalised."""
    if window <= 1:
        return R
    q = matrix_to_quaternion(R)
    for t in range(1, len(q)):  # keep neighbours on the same hemisphere
        if q[t] @ q[t - 1] < 0:
            q[t] = -q[t]
    qs = _smooth_cols(q, window)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    return quaternion_to_matrix(qs)


def _smooth_cols(x: np.ndarray, window: int) -> np.ndarray:
    k = np.ones(window) / window
    pad = np.pad(x, ((window // 2, window - 1 - window // 2), (0, 0)), mode="edge")
    return np.stack([np.convolve(pad[:, d], k, mode="valid") for d in range(x.shape[1])], 1)


def estimate_track(video: str | Path, K: np.ndarray, camera_poses: np.ndarray | None = None,
                   model_path: str | None = None, smooth: int = 5, progress=None) -> WristTrack:
    """Per-frame wrist poses of the demo with the mediapipe backend (see module docstring)."""
    from pipelines.stages.hand_pose import HandPoseError
    from pipelines.stages.hand_pose_mediapipe import MediaPipeHandPose
    from pipelines.stages.video import read_frames

    video = Path(video)
    if not video.is_file():
        raise TrajectoryError(f"demo video not found: {video}")
    n, fps = video_length(video)
    frames = read_frames(video, list(range(n)))
    backend = MediaPipeHandPose(model_path=model_path)
    pos, rot, ok = np.zeros((n, 3)), np.tile(np.eye(3), (n, 1, 1)), np.zeros(n, bool)
    for t in range(n):
        try:
            est = backend.estimate_frame(frames[t], None, K)
            pos[t], rot[t], ok[t] = est.wrist_position, axis_angle_to_matrix(est.wrist_rotation), True
        except HandPoseError:
            pass
        if progress is not None:
            progress(t + 1, n)
    backend.landmarker.close()
    pos, rot = _fill(pos, ok), _fill(rot, ok)
    if camera_poses is not None:
        if len(camera_poses) not in (1, n):
            raise TrajectoryError(f"camera poses: {len(camera_poses)} poses for {n} frames")
        Tc = np.broadcast_to(camera_poses, (n, 4, 4))
        pos = np.einsum("tij,tj->ti", Tc[:, :3, :3], pos) + Tc[:, :3, 3]
        rot = Tc[:, :3, :3] @ rot
    return WristTrack(smooth_positions(median_filter(pos, smooth), smooth), smooth_rotations(rot, smooth), ok, fps)


def detect_grasp_frame(track: WristTrack) -> int:
    """The grasp: the slowest moment of the wrist after the fastest moment of the approach (the hand
    accelerates towards the object, decelerates to close on it, then carries it away). Speeds from
    median-filtered, smoothed positions; the search ends 41 frames before the end (τ needs them)."""
    n = len(track.positions)
    last = n - (TRAJECTORY_STEPS + 1)
    if last < 2:
        raise TrajectoryError(f"demo has {n} frames; τ needs at least {TRAJECTORY_STEPS + 1} after the grasp")
    speed = np.linalg.norm(np.diff(smooth_positions(median_filter(track.positions, 5), 7), axis=0), axis=1)
    peak = int(np.argmax(speed[:last]))
    return int(peak + np.argmin(speed[peak:last + 1]))


def extract_trajectory(track: WristTrack, grasp_frame: int, task: str = "", meta: dict | None = None) -> PostGraspTrajectory:
    n = len(track.positions)
    if grasp_frame < 0 or grasp_frame + TRAJECTORY_STEPS >= n:
        raise TrajectoryError(f"grasp frame {grasp_frame}: need {TRAJECTORY_STEPS + 1} frames from it, the demo has {n}")
    g = slice(grasp_frame, None)
    return PostGraspTrajectory.from_wrist_poses(track.positions[g], track.rotations[g], task=task,
                                                meta={"grasp_frame": int(grasp_frame), "fps": track.fps, **(meta or {})})


def trajectory_error(pred: PostGraspTrajectory, true: PostGraspTrajectory) -> dict:
    """Position / rotation errors of τ: per-step delta RMSE (mm, deg) and end-point error after 40 steps."""
    d = pred.deltas - true.deltas
    cp, ct = pred.cumulative(), true.cumulative()
    return {"delta_pos_rmse_mm": float(1000 * np.sqrt(np.mean(np.sum(d[:, :3] ** 2, 1)))),
            "delta_rot_rmse_deg": float(np.degrees(np.sqrt(np.mean(np.sum(wrap_angle(d[:, 3:]) ** 2, 1))))),
            "endpoint_pos_error_mm": float(1000 * np.linalg.norm(cp[-1, :3] - ct[-1, :3])),
            "true_path_length_mm": float(1000 * np.sum(np.linalg.norm(true.deltas[:, :3], axis=1))),
            "endpoint_rot_error_deg": float(np.degrees(np.linalg.norm(wrap_angle(cp[-1, 3:] - ct[-1, 3:]))))}


def euler_track(track: WristTrack) -> np.ndarray:
    return matrix_to_euler_xyz(track.rotations)
