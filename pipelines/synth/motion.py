"""Motion of the synthetic clips: the action timeline, the acting hand's wrist and finger trajectory
(rest → reach → grasp → use), the verb-specific use motion, and the head camera's drift.

All poses are in the world ("human") frame of :mod:`pipelines.synth.scene`: x right, y forward, z up,
metres; rotations are 3×3 matrices (world ← hand canonical frame). Everything is a deterministic
function of the arguments and the ``numpy`` generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deft_core.geometry import axis_angle_to_matrix, look_at, matrix_to_axis_angle


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk time scaling of s ∈ [0, 1] (zero velocity and acceleration at both ends)."""
    s = np.clip(s, 0.0, 1.0)
    return s ** 3 * (10 - 15 * s + 6 * s * s)


def slerp_matrix(R0: np.ndarray, R1: np.ndarray, s: float) -> np.ndarray:
    """Geodesic interpolation between rotation matrices (s = 0 → R0, 1 → R1)."""
    return R0 @ axis_angle_to_matrix(s * matrix_to_axis_angle(R0.T @ R1))


@dataclass(frozen=True)
class Timeline:
    """Frame indices of the phases (0-based, inclusive starts)."""

    num_frames: int
    reach_start: int     #: the action starts: the hand leaves its rest pose
    grasp: int           #: the wrist reaches the grasp pose (fingers closed)
    use_start: int       #: the use motion starts (object moves with the hand)
    action_end: int      #: last frame of the action (inclusive)


def make_timeline(fps: float, rng: np.random.Generator, duration_s: float | None, min_use_frames: int = 0) -> Timeline:
    """Idle 0.25–0.6 s, reach 0.9–1.3 s, hold 0.1–0.25 s, use ≥ 1.1 s (and ≥ ``min_use_frames``)."""
    idle, reach, hold = rng.uniform(0.25, 0.6), rng.uniform(0.9, 1.3), rng.uniform(0.1, 0.25)
    use = max(rng.uniform(1.1, 1.6), (min_use_frames + 1) / fps)
    total = idle + reach + hold + use
    if duration_s is not None:
        if duration_s <= 0:
            raise ValueError(f"duration_s must be positive, got {duration_s}")
        k = duration_s / total
        idle, reach, hold, use, total = idle * k, reach * k, hold * k, use * k, duration_s
    T = max(int(round(total * fps)), 8)
    reach_start = int(round(idle * fps))
    grasp = min(reach_start + max(int(round(reach * fps)), 3), T - 3)
    use_start = min(grasp + max(int(round(hold * fps)), 1), T - 2)
    if T - use_start < min_use_frames:
        raise ValueError(f"{T} frames at {fps} fps leave {T - use_start} use frames, need {min_use_frames}")
    return Timeline(T, reach_start, grasp, use_start, T - 1)


def rest_pose(side: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Where the hand waits before reaching: near the person, low, palm down, fingers forward."""
    sx = -1.0 if side == "left" else 1.0
    pos = np.array([sx * rng.uniform(0.16, 0.24), rng.uniform(-0.28, -0.2), rng.uniform(0.04, 0.08)])
    fingers = np.array([-sx * 0.35, 1.0, -0.15])
    fingers /= np.linalg.norm(fingers)
    y = np.array([0.0, 0.0, 1.0])  # dorsal up: palm faces the table
    x = -sx * fingers  # canonical −x is the finger direction for the right hand, +x for the left
    x -= (x @ y) * y
    x /= np.linalg.norm(x)
    return pos, np.stack([x, y, np.cross(x, y)], axis=1)


def use_motion(verb: str, n: int, wrist_pos: np.ndarray, wrist_R: np.ndarray, object_center: np.ndarray,
               support_top: np.ndarray | None, pull_dir: np.ndarray | None, side: str,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wrist trajectory of the ``n`` use frames after the grasp, for a task verb.

    Returns (positions (n, 3), rotations (n, 3, 3), drawer opening offsets (n,) in metres). The grasped
    object moves rigidly with the wrist (except the drawer, which slides by the returned offset).
    """
    s = min_jerk(np.linspace(0, 1, n + 1)[1:])
    pos = np.repeat(wrist_pos[None], n, 0)
    rot = np.repeat(wrist_R[None], n, 0)
    slide = np.zeros(n)
    up = np.array([0.0, 0.0, 1.0])
    lift = rng.uniform(0.09, 0.14)

    def carry_to(target, height, frac):  # move the object centre over `target` during the first `frac`
        k = min_jerk(np.clip(np.linspace(0, 1, n + 1)[1:] / frac, 0, 1))
        off = np.array([target[0] - object_center[0], target[1] - object_center[1], height])
        return wrist_pos + k[:, None] * off

    if verb == "open" and pull_dir is not None:
        dist = rng.uniform(0.07, 0.12)
        pos = wrist_pos + s[:, None] * dist * pull_dir
        slide = s * dist
    elif verb == "pour":
        pos = wrist_pos + np.minimum(s * 2, 1)[:, None] * lift * up
        axis = wrist_R[:, 1] - (wrist_R[:, 1] @ up) * up  # the handle's outward direction, horizontal
        axis /= max(np.linalg.norm(axis), 1e-9)
        tilt = min_jerk(np.clip(s * 2 - 0.6, 0, 1)) * rng.uniform(1.0, 1.4) * (-1 if side == "left" else 1)
        rot = axis_angle_to_matrix(tilt[:, None] * axis) @ wrist_R
    elif verb in ("stir", "scoop", "flip", "squeeze") and support_top is not None:
        height = support_top[2] - object_center[2] + (0.06 if verb != "squeeze" else 0.02)
        pos = carry_to(support_top, height, 0.5)
        late = np.clip(np.linspace(0, 1, n + 1)[1:] * 2 - 1, 0, 1)
        if verb == "stir":
            ang = late * 4 * np.pi
            pos = pos + (late > 0)[:, None] * np.stack([0.025 * np.sin(ang), 0.025 * (np.cos(ang) - 1), -0.03 * min_jerk(late * 3)], -1)
        elif verb == "scoop":
            pos = pos + np.stack([np.zeros(n), 0.03 * np.sin(np.pi * late), -0.035 * np.sin(np.pi * late)], -1)
            rot = axis_angle_to_matrix((0.6 * min_jerk(late))[:, None] * wrist_R[:, 2][None]) @ wrist_R
        elif verb == "flip":
            fingers = -wrist_R[:, 0] if side == "right" else wrist_R[:, 0]
            rot = axis_angle_to_matrix((2.2 * min_jerk(late))[:, None] * fingers[None]) @ wrist_R
        else:  # squeeze: press down and twist back and forth about the vertical
            pos = pos - (0.015 * min_jerk(late))[:, None] * up
            rot = axis_angle_to_matrix((0.6 * np.sin(2 * np.pi * late))[:, None] * up[None]) @ wrist_R
    else:  # pick up (and fallbacks): lift with a slight tilt and drift towards the person
        pos = wrist_pos + s[:, None] * (lift * up + np.array([0.0, -0.05, 0.0]) * rng.uniform(0, 1))
        rot = axis_angle_to_matrix((s * rng.normal(0, 0.15))[:, None] * np.array([1.0, 0.0, 0.0])) @ wrist_R
    return pos, rot, slide


class HeadCamera:
    """A head-mounted camera that looks at the work area, follows the hand a little, and drifts
    (translation ~2–4 cm, rotation a few degrees, roll): consecutive frames need a homography."""

    def __init__(self, rng: np.random.Generator, work_center: np.ndarray):
        self.eye0 = np.array([rng.uniform(-0.04, 0.04), rng.uniform(-0.36, -0.28), rng.uniform(0.38, 0.46)])
        self.center = np.asarray(work_center, dtype=np.float64) + [0.0, rng.uniform(-0.04, 0.02), 0.0]
        self.amp = rng.uniform(0.01, 0.03, 3)
        self.freq = rng.uniform(0.15, 0.5, 3)
        self.phase = rng.uniform(0, 2 * np.pi, 6)
        self.roll_amp = np.deg2rad(rng.uniform(1.0, 4.0))
        self.follow = rng.uniform(0.15, 0.35)

    def pose(self, t: float, hand_pos: np.ndarray) -> np.ndarray:
        """T_world_camera (4×4, OpenCV camera axes) at time ``t`` seconds."""
        w = 2 * np.pi * self.freq * t
        eye = self.eye0 + self.amp * np.sin(w + self.phase[:3])
        target = (1 - self.follow) * self.center + self.follow * np.asarray(hand_pos)
        target = target + 0.02 * np.sin(w[::-1] + self.phase[3:])
        R = look_at(eye, target)
        roll = self.roll_amp * np.sin(2 * np.pi * 0.3 * t + self.phase[5])
        R = R @ axis_angle_to_matrix(np.array([0.0, 0.0, roll]))
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, eye
        return T
