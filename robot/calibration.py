"""Calibration: camera intrinsics check and extrinsics ``T_base_camera`` from a checkerboard or an ArUco
marker (OpenCV), and the hand's joint → motor mapping from calibration pairs (paper Appendix B).

Frames: board points lie in the board's z = 0 plane (metres); ``T_camera_board`` maps board → OpenCV
camera; ``T_base_camera`` maps camera → robot base. Two ways to the extrinsics:

- **board on the table** at a measured pose ``T_base_board``: ``T_base_camera = T_base_board · T_camera_board⁻¹``
  (averaged over the images);
- **board on the wrist** (eye-to-hand) with the wrist pose ``T_base_wrist`` of each image: solve
  ``T_base_wrist_i · T_wrist_board = T_base_camera · T_camera_board_i`` (:func:`extrinsics_hand_eye`).

The board frame is OpenCV's: x along the first row of inner corners, y along the columns, z **into** the
board (away from a camera that sees its printed face). A board lying face-up on the table therefore has
its z axis pointing down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from deft_core.geometry import (axis_angle_to_matrix, invert_transform, make_transform, matrix_to_quaternion,
                                quaternion_to_matrix)


@dataclass(frozen=True)
class BoardSpec:
    """``checkerboard:COLSxROWS:SQUARE_M`` (inner corners; the board's origin is the inner corner next to
    a black corner square — use an odd × even number of squares so it is unique) or ``aruco:DICT:SIDE_M[:ID]`` (e.g.
    ``aruco:4X4_50:0.05:7``; ID omitted = any single marker)."""

    kind: str
    size: float
    cols: int = 0
    rows: int = 0
    dictionary: str = ""
    marker_id: int | None = None

    @classmethod
    def parse(cls, text: str) -> "BoardSpec":
        m = re.fullmatch(r"checkerboard:(\d+)x(\d+):([0-9.]+)", text.strip())
        if m:
            cols, rows, size = int(m[1]), int(m[2]), float(m[3])
            if cols < 2 or rows < 2 or size <= 0:
                raise ValueError(f"board {text!r}: need at least 2x2 inner corners and a positive square size")
            return cls("checkerboard", size, cols=cols, rows=rows)
        m = re.fullmatch(r"aruco:([0-9A-Za-z_]+):([0-9.]+)(?::(\d+))?", text.strip())
        if m:
            size = float(m[2])
            if size <= 0:
                raise ValueError(f"board {text!r}: marker side must be positive (metres)")
            return cls("aruco", size, dictionary=m[1].upper(), marker_id=None if m[3] is None else int(m[3]))
        raise ValueError(f"board {text!r}: expected 'checkerboard:COLSxROWS:SQUARE_M' (inner corners, metres) "
                         "or 'aruco:DICT:SIDE_M[:ID]' (e.g. aruco:4X4_50:0.05)")

    def object_points(self) -> np.ndarray:
        """(N, 3) board-frame points (m) in detection order."""
        if self.kind == "checkerboard":
            g = np.mgrid[0:self.cols, 0:self.rows].T.reshape(-1, 2) * self.size
            return np.hstack([g, np.zeros((len(g), 1))])
        h = self.size / 2.0  # ArUco corner order (OpenCV SOLVEPNP_IPPE_SQUARE convention)
        return np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]])


def detect_board(image: np.ndarray, spec: BoardSpec) -> np.ndarray | None:
    """Image points (N, 2) of the board in ``image`` (BGR or grey uint8), or None if not found."""
    import cv2

    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if spec.kind == "checkerboard":
        ok, corners = cv2.findChessboardCorners(grey, (spec.cols, spec.rows),
                                                cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE)
        if not ok:
            return None
        corners = cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1),
                                   (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4))
        return _canonical_order(grey, corners.reshape(-1, 2).astype(np.float64), spec)
    name = f"DICT_{spec.dictionary}"
    if not hasattr(cv2.aruco, name):
        raise ValueError(f"unknown ArUco dictionary {spec.dictionary!r} (OpenCV has e.g. 4X4_50, 5X5_100, 6X6_250)")
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name)), params)
    corners, ids, _ = detector.detectMarkers(grey)
    if ids is None:
        return None
    ids = ids.reshape(-1).tolist()
    if spec.marker_id is None:
        if len(ids) != 1:
            raise ValueError(f"found ArUco markers {ids}; name the one to use (aruco:DICT:SIDE:ID)")
        k = 0
    elif spec.marker_id in ids:
        k = ids.index(spec.marker_id)
    else:
        return None
    return corners[k].reshape(4, 2).astype(np.float64)


def _sample(grey: np.ndarray, p: np.ndarray) -> float:
    h, w = grey.shape
    x, y = int(round(np.clip(p[0], 1, w - 2))), int(round(np.clip(p[1], 1, h - 2)))
    return float(grey[y - 1: y + 2, x - 1: x + 2].mean())


def _canonical_order(grey: np.ndarray, pts: np.ndarray, spec: BoardSpec) -> np.ndarray:
    """OpenCV may return the corners of a checkerboard starting from either end (a 180° flip). Fix the
    origin at the inner corner whose outer diagonal square is **black** (the printed board's origin).
    Unambiguous for boards with an odd × even number of squares (e.g. 9×6 inner corners = 10×7 squares)."""
    c = spec.cols
    p0, p1, pc, pd = pts[0], pts[1], pts[c], pts[c + 1]
    outer_diag = _sample(grey, p0 + 0.5 * (p0 - pd))            # the corner square at the origin
    outer_side = _sample(grey, p0 + 0.5 * ((p0 - p1) + (pc - p0)))  # its neighbour along the board's y
    return pts[::-1].copy() if outer_diag > outer_side else pts


def calibrate_intrinsics(image_points: list[np.ndarray], spec: BoardSpec, image_size: tuple[int, int]):
    """``cv2.calibrateCamera`` over ≥ 3 views → (K 3×3, distortion (5,), RMS reprojection error in px).
    ``image_size`` is (width, height)."""
    import cv2

    if len(image_points) < 3:
        raise ValueError(f"intrinsics calibration needs at least 3 views of the board, got {len(image_points)}")
    obj = [spec.object_points().astype(np.float32)] * len(image_points)
    img = [p.astype(np.float32).reshape(-1, 1, 2) for p in image_points]
    rms, K, dist, _, _ = cv2.calibrateCamera(obj, img, image_size, None, None)
    return K, dist.reshape(-1)[:5], float(rms)


#: self-calibrated intrinsics need views whose board planes differ by at least this much (degrees)
MIN_TILT_SPREAD_DEG = 10.0
#: two views whose corners differ by less than this (RMS, px) are the same view
DUPLICATE_VIEW_PX = 1.0


def _board_normal(points: np.ndarray, spec: BoardSpec, image_size: tuple[int, int]) -> np.ndarray:
    """The board plane's normal in the camera frame from the board → image homography, with a nominal
    pinhole camera (focal = image width, principal point at the centre): exact enough to tell a tilt of
    several degrees from none, whatever the true intrinsics."""
    import cv2

    w, h = image_size
    K0 = np.array([[float(w), 0.0, (w - 1) / 2.0], [0.0, float(w), (h - 1) / 2.0], [0.0, 0.0, 1.0]])
    Hm, _ = cv2.findHomography(spec.object_points()[:, :2], np.asarray(points, dtype=np.float64).reshape(-1, 2), 0)
    if Hm is None:
        raise ValueError("no homography between the board and this view")
    M = np.linalg.inv(K0) @ Hm
    n = np.cross(M[:, 0] / np.linalg.norm(M[:, 0]), M[:, 1] / np.linalg.norm(M[:, 1]))
    n /= np.linalg.norm(n)
    return n if n[2] >= 0 else -n


def view_diversity(image_points: list[np.ndarray], spec: BoardSpec, image_size: tuple[int, int]) -> dict:
    """How different the board views are: ``views``, ``distinct`` (views whose corners differ from every
    earlier view by ≥ :data:`DUPLICATE_VIEW_PX` RMS), ``tilt_spread_deg`` (the largest angle between two
    views' board planes). ``image_size`` is (width, height)."""
    pts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in image_points]
    distinct: list[np.ndarray] = []
    for p in pts:
        if all(np.sqrt(np.mean(np.sum((p - q) ** 2, axis=1))) >= DUPLICATE_VIEW_PX for q in distinct):
            distinct.append(p)
    normals = [_board_normal(p, spec, image_size) for p in distinct]
    spread = max((float(np.degrees(np.arccos(np.clip(a @ b, -1.0, 1.0)))) for i, a in enumerate(normals)
                  for b in normals[i + 1:]), default=0.0)
    return {"views": len(pts), "distinct": len(distinct), "tilt_spread_deg": spread}


def diversity_problem(image_points: list[np.ndarray], spec: BoardSpec, image_size: tuple[int, int],
                      min_views: int = 3, min_tilt_deg: float = MIN_TILT_SPREAD_DEG) -> str | None:
    """Why these views cannot calibrate the intrinsics (``cv2.calibrateCamera`` is degenerate when every
    board plane is parallel: repeated views of a board fixed in front of a fixed camera), or None."""
    d = view_diversity(image_points, spec, image_size)
    if d["distinct"] < min_views:
        return (f"only {d['distinct']} distinct view(s) of the board among {d['views']} image(s) (need >= {min_views}; "
                f"views whose corners differ by < {DUPLICATE_VIEW_PX:g} px are the same view)")
    if d["tilt_spread_deg"] < min_tilt_deg:
        return (f"the board has the same tilt in every view (largest difference {d['tilt_spread_deg']:.1f} deg, "
                f"need >= {min_tilt_deg:g} deg)")
    return None


def intrinsics_problem(K: np.ndarray, dist: np.ndarray, rms: float, image_size: tuple[int, int],
                       image_points: list[np.ndarray] | None = None, max_rms_px: float = 1.0) -> str | None:
    """Why calibrated intrinsics are implausible, or None: reprojection RMS above ``max_rms_px``, focal
    lengths outside 0.2–5 × the image width or differing by > 10 %, the principal point outside the middle
    half of the image, radial distortion that scales a radius by < 0.75 or > 1.33 where the board was seen
    (``image_points``; the whole image when None: the polynomial is only constrained where there were
    corners), or tangential distortion above 0.05."""
    w, h = image_size
    K = np.asarray(K, dtype=np.float64)
    d = np.zeros(5)
    d[:min(5, len(dist))] = np.asarray(dist, dtype=np.float64).reshape(-1)[:5]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if not np.all(np.isfinite(K)) or not np.all(np.isfinite(d)) or not np.isfinite(rms):
        return "the calibration did not converge (non-finite values)"
    if rms > max_rms_px:
        return f"reprojection RMS {rms:.2f} px (> {max_rms_px:g} px)"
    if not (0.2 * w <= fx <= 5 * w and 0.2 * w <= fy <= 5 * w):
        return f"focal lengths fx {fx:.0f} fy {fy:.0f} px are outside 0.2-5 x the image width ({w} px)"
    if abs(fx / fy - 1) > 0.1:
        return f"focal lengths fx {fx:.0f} and fy {fy:.0f} px differ by {100 * abs(fx / fy - 1):.0f} % (> 10 %)"
    if abs(cx - w / 2) > w / 4 or abs(cy - h / 2) > h / 4:
        return f"principal point ({cx:.0f}, {cy:.0f}) px is far from the image centre ({w / 2:.0f}, {h / 2:.0f})"
    if image_points:
        uv = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in image_points])
        r2_max = float(np.max(((uv[:, 0] - cx) / fx) ** 2 + ((uv[:, 1] - cy) / fy) ** 2))
    else:
        r2_max = (max(cx, w - cx) / fx) ** 2 + (max(cy, h - cy) / fy) ** 2
    r2 = np.linspace(0.0, max(r2_max, 1e-9), 200)
    radial = 1 + d[0] * r2 + d[1] * r2 ** 2 + d[4] * r2 ** 3
    if radial.min() < 0.75 or radial.max() > 1.33 or max(abs(d[2]), abs(d[3])) > 0.05:
        return (f"distortion {np.array2string(d, precision=3, separator=', ')} moves points by up to "
                f"{100 * float(np.max(np.abs(radial - 1))):.0f} % of their radius where the board was seen")
    return None


def extrinsics_spread(T_camera_board: list[np.ndarray], T_base_board: np.ndarray) -> tuple[float, float]:
    """How far apart the per-view estimates of ``T_base_camera`` are for a board at one pose ``T_base_board``:
    (largest distance between camera positions in m, largest angle between camera orientations in deg)."""
    from deft_core.geometry import rotation_angle_between

    Ts = [T_base_board @ invert_transform(T) for T in T_camera_board]
    dt = max((float(np.linalg.norm(a[:3, 3] - b[:3, 3])) for i, a in enumerate(Ts) for b in Ts[i + 1:]), default=0.0)
    da = max((float(np.degrees(rotation_angle_between(a[:3, :3], b[:3, :3]))) for i, a in enumerate(Ts)
              for b in Ts[i + 1:]), default=0.0)
    return dt, da


def board_pose(points: np.ndarray, spec: BoardSpec, K: np.ndarray, dist: np.ndarray | None = None):
    """``solvePnP`` → (T_camera_board 4×4, RMS reprojection error in px)."""
    import cv2

    obj = spec.object_points()
    dist = np.zeros(5) if dist is None else np.asarray(dist, dtype=np.float64)
    flag = cv2.SOLVEPNP_IPPE_SQUARE if spec.kind == "aruco" else cv2.SOLVEPNP_ITERATIVE
    ok, rvec, tvec = cv2.solvePnP(obj, points, K, dist, flags=flag)
    if not ok:
        raise ValueError("solvePnP failed for this view")
    proj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
    rms = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - points) ** 2, axis=1))))
    return make_transform(axis_angle_to_matrix(rvec.reshape(3)), tvec.reshape(3)), rms


def average_transforms(Ts: list[np.ndarray]) -> np.ndarray:
    """Mean of rigid transforms: mean translation, rotation from the principal eigenvector of Σ q qᵀ."""
    q = np.array([matrix_to_quaternion(T[:3, :3]) for T in Ts])
    w, v = np.linalg.eigh(q.T @ q)
    return make_transform(quaternion_to_matrix(v[:, -1]), np.mean([T[:3, 3] for T in Ts], axis=0))


def extrinsics_from_board_pose(T_camera_board: list[np.ndarray], T_base_board: np.ndarray) -> np.ndarray:
    """Board at a known pose in the base frame: ``T_base_camera = T_base_board · T_camera_board⁻¹``."""
    return average_transforms([T_base_board @ invert_transform(T) for T in T_camera_board])


def _project_so3(M: np.ndarray) -> np.ndarray:
    U, _, Vt = np.linalg.svd(M)
    R = U @ Vt
    if np.linalg.det(R) < 0:
        R = U @ np.diag([1.0, 1.0, -1.0]) @ Vt
    return R


def extrinsics_hand_eye(T_base_wrist: list[np.ndarray], T_camera_board: list[np.ndarray]):
    """Eye-to-hand: board rigidly on the wrist, static camera, ≥ 3 views with varied wrist rotations.

    Solves ``T_base_wrist_i · Y = X · T_camera_board_i`` for ``X = T_base_camera`` and ``Y = T_wrist_board``
    (the robot-world/hand-eye form, Shah 2013: a linear Kronecker solution for the rotations, linear least
    squares for the translations, then a joint nonlinear refinement). Returns ``(T_base_camera, T_wrist_board)``.
    (OpenCV's ``calibrateHandEye`` is absent from some OpenCV 5 builds, so this is self-contained.)"""
    from scipy.optimize import least_squares

    from deft_core.geometry import matrix_to_axis_angle

    A = [np.asarray(T, dtype=np.float64) for T in T_base_wrist]
    B = [np.asarray(T, dtype=np.float64) for T in T_camera_board]
    if len(A) != len(B) or len(A) < 3:
        raise ValueError("hand-eye calibration needs the same number (>= 3) of wrist poses and board views")
    I3 = np.eye(3)
    M = np.vstack([np.hstack([np.kron(I3, a[:3, :3]), -np.kron(b[:3, :3].T, I3)]) for a, b in zip(A, B)])
    v = np.linalg.svd(M)[2][-1]
    RY, RX = v[:9].reshape(3, 3, order="F"), v[9:].reshape(3, 3, order="F")
    if np.linalg.det(RX) < 0:
        RX, RY = -RX, -RY
    RX, RY = _project_so3(RX), _project_so3(RY)
    # R_A t_Y + t_A = R_X t_B + t_X  →  [R_A, −I] [t_Y; t_X] = R_X t_B − t_A
    C = np.vstack([np.hstack([a[:3, :3], -I3]) for a in A])
    d = np.concatenate([RX @ b[:3, 3] - a[:3, 3] for a, b in zip(A, B)])
    t = np.linalg.lstsq(C, d, rcond=None)[0]

    def unpack(p):
        return (make_transform(axis_angle_to_matrix(p[0:3]), p[3:6]), make_transform(axis_angle_to_matrix(p[6:9]), p[9:12]))

    def residual(p):
        X, Y = unpack(p)
        return np.concatenate([((a @ Y) - (X @ b))[:3, :].ravel() for a, b in zip(A, B)])

    p0 = np.concatenate([matrix_to_axis_angle(RX), t[3:], matrix_to_axis_angle(RY), t[:3]])
    X, Y = unpack(least_squares(residual, p0, method="lm").x)
    return X, Y


# -------------------------------------------------------------------------------- hand mapping


@dataclass(frozen=True)
class HandMappingFit:
    """``motor = scale · joint + offset`` per joint (16 each, rad), the RMS residual (rad) per joint and the
    number of pairs used per joint."""

    scale: np.ndarray
    offset: np.ndarray
    rms: np.ndarray
    count: np.ndarray


def fit_hand_mapping(motor_rad: np.ndarray, joint_rad: np.ndarray, min_pairs: int = 2) -> HandMappingFit:
    """Least-squares fit of the joint → motor mapping (Appendix B) from calibration pairs.

    ``motor_rad`` (N, 16): commanded motor angles; ``joint_rad`` (N, 16): the joint angles observed (e.g.
    measured visually) at those motor angles, NaN where a joint was not observed. Joint ``i`` is fitted
    from the pairs where it was observed; each needs ≥ ``min_pairs`` pairs with distinct joint angles."""
    from deft_core.grasp import HAND_JOINT_NAMES

    motor = np.asarray(motor_rad, dtype=np.float64)
    joint = np.asarray(joint_rad, dtype=np.float64)
    if motor.ndim != 2 or motor.shape[1] != 16 or motor.shape != joint.shape:
        raise ValueError(f"calibration pairs must be (N, 16) motor and joint angles, got {motor.shape} and {joint.shape}")
    scale, offset, rms, count = (np.zeros(16) for _ in range(4))
    for i in range(16):
        ok = np.isfinite(joint[:, i]) & np.isfinite(motor[:, i])
        x, y = joint[ok, i], motor[ok, i]
        if ok.sum() < min_pairs or np.ptp(x) < 1e-6:
            got = (f"{int(ok.sum())} pair(s) where it was observed (empty, null or NaN = not observed)"
                   if ok.sum() < min_pairs else f"{int(ok.sum())} pairs, all at the same observed angle")
            raise ValueError(f"joint {HAND_JOINT_NAMES[i]}: need >= {min_pairs} pairs with different observed "
                             f"angles, got {got}")
        A = np.stack([x, np.ones_like(x)], 1)
        (a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
        scale[i], offset[i], count[i] = a, b, ok.sum()
        rms[i] = np.sqrt(np.mean((A @ [a, b] - y) ** 2))
    return HandMappingFit(scale, offset, rms, count.astype(int))


def load_pairs(path) -> tuple[np.ndarray, np.ndarray]:
    """Read calibration pairs: CSV with columns ``motor_0..motor_15, joint_0..joint_15`` (empty = not
    observed) or JSON ``{"pairs": [{"motor": [16], "joint": [16 or null]}, ...]}``. Angles in radians."""
    import csv
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pairs file {str(path)!r} does not exist")
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text())
        rows = data.get("pairs") if isinstance(data, dict) else None
        if not isinstance(rows, list) or not rows:
            raise ValueError(f"{path}: expected {{'pairs': [{{'motor': [...16], 'joint': [...16]}}, ...]}}")
        try:
            motor = np.array([[np.nan if v is None else v for v in r["motor"]] for r in rows], dtype=np.float64)
            joint = np.array([[np.nan if v is None else v for v in r["joint"]] for r in rows], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: bad pair entry ({exc})") from exc
        return motor, joint
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        need = [f"motor_{i}" for i in range(16)] + [f"joint_{i}" for i in range(16)]
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}")
        rows = list(reader)

    def num(v):
        return float(v) if v not in ("", None) else np.nan

    motor = np.array([[num(r[f"motor_{i}"]) for i in range(16)] for r in rows])
    joint = np.array([[num(r[f"joint_{i}"]) for i in range(16)] for r in rows])
    return motor, joint
