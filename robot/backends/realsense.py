"""``realsense`` camera backend: an Intel RealSense (D400 series) through ``pyrealsense2``.

Colour (RGB8) and depth (Z16) streams at the same resolution; depth is aligned to the colour image with
``rs.align(rs.stream.color)`` and converted to metres with the device's depth scale. The intrinsics are
the colour stream profile's (after alignment the depth shares them). Frame timestamps are the process's
monotonic clock at arrival (the device clock is not comparable to the robot's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from deft_core.geometry import intrinsics_matrix
from robot.base import Camera, DeviceAlreadyConnectedError, DeviceError, DeviceNotFoundError, Frame, now, require_package

log = logging.getLogger(__name__)


@dataclass
class RealSenseConfig:
    """``serial``: the camera's serial number (None = the only/first one); ``width``×``height`` at ``fps``
    for both streams; ``warmup_frames`` dropped after start (auto-exposure settles); ``max_depth_m``:
    readings beyond are set to 0 (no reading)."""

    serial: str | None = None
    width: int = 640
    height: int = 480
    fps: int = 30
    warmup_frames: int = 15
    max_depth_m: float = 4.0

    def __post_init__(self) -> None:
        if self.serial is not None:
            self.serial = str(self.serial)
        if not (isinstance(self.width, int) and isinstance(self.height, int) and self.width > 0 and self.height > 0):
            raise ValueError(f"width/height must be positive integers, got {self.width!r}x{self.height!r}")
        if self.fps not in (6, 15, 30, 60, 90):
            raise ValueError(f"fps must be one of 6, 15, 30, 60, 90 (RealSense stream rates), got {self.fps!r}")
        if not (isinstance(self.warmup_frames, int) and self.warmup_frames >= 0):
            raise ValueError(f"warmup_frames must be a non-negative integer, got {self.warmup_frames!r}")
        if not float(self.max_depth_m) > 0:
            raise ValueError(f"max_depth_m must be positive, got {self.max_depth_m!r}")


def frame_from_realsense(color_frame: Any, depth_frame: Any, depth_scale: float, K: np.ndarray,
                         max_depth_m: float = np.inf, timestamp: float | None = None) -> Frame:
    """Convert aligned pyrealsense2 colour/depth frames into a :class:`robot.base.Frame`
    (RGB uint8, depth float32 metres with 0 = no reading)."""
    rgb = np.asanyarray(color_frame.get_data())
    raw = np.asanyarray(depth_frame.get_data())
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise DeviceError(f"RealSense colour frame must be RGB8 (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if raw.shape != rgb.shape[:2] or raw.dtype != np.uint16:
        raise DeviceError(f"RealSense depth frame must be Z16 {rgb.shape[:2]} aligned to colour, got {raw.shape} {raw.dtype}")
    depth = raw.astype(np.float32) * np.float32(depth_scale)
    depth[depth > max_depth_m] = 0.0
    return Frame(rgb=np.array(rgb, copy=True), depth=depth, K=np.asarray(K, dtype=np.float64),
                 timestamp=now() if timestamp is None else timestamp)


class RealSenseCamera(Camera):
    """``rs_module``: the ``pyrealsense2`` module or a stand-in with its interface (tests)."""

    Config = RealSenseConfig

    def __init__(self, config: RealSenseConfig | None = None, rs_module: Any = None):
        self.config = config or RealSenseConfig()
        self._rs = rs_module
        self._pipeline = None
        self._align = None
        self.depth_scale: float | None = None
        self.K: np.ndarray | None = None
        self.serial: str | None = None

    @property
    def is_connected(self) -> bool:
        return self._pipeline is not None

    def connect(self) -> None:
        if self.is_connected:
            raise DeviceAlreadyConnectedError("RealSense camera is already connected")
        rs = self._rs or require_package("pyrealsense2", "pyrealsense2")
        self._rs = rs
        c = self.config
        ctx = rs.context()
        devices = list(ctx.query_devices())
        if not devices:
            raise DeviceNotFoundError("no Intel RealSense camera found: check the USB 3 cable and that no other "
                                      "process holds the camera (realsense-viewer)")
        serials = [d.get_info(rs.camera_info.serial_number) for d in devices]
        if c.serial is not None and c.serial not in serials:
            raise DeviceNotFoundError(f"RealSense camera {c.serial!r} not found; connected cameras: {serials}")
        cfg = rs.config()
        self.serial = c.serial or serials[0]
        cfg.enable_device(self.serial)
        cfg.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, c.fps)
        cfg.enable_stream(rs.stream.depth, c.width, c.height, rs.format.z16, c.fps)
        pipeline = rs.pipeline(ctx)
        try:
            profile = pipeline.start(cfg)
        except RuntimeError as exc:
            raise DeviceError(f"RealSense {self.serial}: cannot start {c.width}x{c.height}@{c.fps} colour+depth "
                              f"streams ({exc}); try another resolution/fps supported by this model") from exc
        self.depth_scale = float(profile.get_device().first_depth_sensor().get_depth_scale())
        intr = profile.get_stream(rs.stream.color).as_video_stream_profile().get_intrinsics()
        self.K = intrinsics_matrix(intr.fx, intr.fy, intr.ppx, intr.ppy)
        coeffs = [float(c) for c in (getattr(intr, "coeffs", None) or [])]
        if any(abs(c) > 1e-6 for c in coeffs):  # D415/D435 colour streams report zeros; some models do not
            log.warning("RealSense %s: the colour stream reports lens distortion %s (%s) that is not corrected "
                        "(pixels are lifted with the pinhole K only): expect a few mm of error at the image edges",
                        self.serial, getattr(intr, "model", "?"), [round(c, 4) for c in coeffs])
        self._align = rs.align(rs.stream.color)
        self._pipeline = pipeline
        try:
            for _ in range(c.warmup_frames):
                pipeline.wait_for_frames(5000)
        except RuntimeError as exc:
            self.disconnect()
            raise DeviceError(f"RealSense {self.serial}: no frames during warm-up ({exc})") from exc

    def disconnect(self) -> None:
        if self._pipeline is None:
            return
        try:
            self._pipeline.stop()
        finally:
            self._pipeline = None

    def _capture(self, timeout_s: float) -> Frame:
        try:
            frames = self._pipeline.wait_for_frames(int(timeout_s * 1000))
        except RuntimeError as exc:
            raise DeviceError(f"RealSense {self.serial}: no frame within {timeout_s:.1f} s ({exc})") from exc
        t = now()
        aligned = self._align.process(frames)
        color, depth = aligned.get_color_frame(), aligned.get_depth_frame()
        if not color or not depth:
            raise DeviceError(f"RealSense {self.serial}: incomplete frameset (colour: {bool(color)}, depth: {bool(depth)})")
        return frame_from_realsense(color, depth, self.depth_scale, self.K, self.config.max_depth_m, timestamp=t)
