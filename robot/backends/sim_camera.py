"""``sim`` camera: the workcell's fixed ``overhead`` RGB-D camera (RealSense-like intrinsics).

Frames: RGB uint8, depth in metres along the optical axis (MuJoCo's z-buffer linearised with the
model's near/far planes), intrinsics ``K`` (OpenCV axes) for the configured resolution, ``timestamp``
(``time.monotonic``), and a segmentation ``mask`` of role ids (:data:`robot.sim.world.SEGMENT_IDS`:
0 background, 1 table, 2 arm, 3 hand, 4 grasped object, 5 support object). The camera's pose
(``T_base_camera``, OpenCV axes → base) is :attr:`SimCamera.T_base_camera`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deft_core.geometry import intrinsics_from_fovy
from robot.base import Camera, Frame, now
from robot.backends.sim_device import SharedWorldDevice


@dataclass
class SimCameraConfig:
    """``width``/``height`` in pixels (the scene's camera is 640×480; smaller renders faster),
    ``depth``/``segmentation``: whether to render them (RGB only is ~3× faster)."""

    world: str = "default"
    width: int = 640
    height: int = 480
    depth: bool = True
    segmentation: bool = True

    def __post_init__(self) -> None:
        if not (16 <= int(self.width) <= 1280 and 16 <= int(self.height) <= 960):
            raise ValueError(f"sim camera size must be within 16..1280 x 16..960 pixels, got {self.width}x{self.height}")


class SimCamera(SharedWorldDevice, Camera):
    Config = SimCameraConfig

    def __init__(self, config: SimCameraConfig | None = None):
        self.config = config or SimCameraConfig()
        self.world = None

    @property
    def K(self) -> np.ndarray:
        from deft_core.world.robot_scene import CAMERA_FOVY

        return intrinsics_from_fovy(CAMERA_FOVY, self.config.width, self.config.height)

    @property
    def T_base_camera(self) -> np.ndarray:
        """4×4 camera (OpenCV axes) → robot base transform, metres."""
        return np.array(self.world.info.T_base_cam, dtype=np.float64)

    def _capture(self, timeout_s: float) -> Frame:
        c = self.config
        rgb, depth, mask = self.world.render(c.width, c.height, depth=c.depth, segmentation=c.segmentation)
        if depth is None:
            depth = np.zeros(rgb.shape[:2], np.float32)
        return Frame(rgb=rgb, depth=depth, K=self.K, timestamp=now(), mask=mask)
