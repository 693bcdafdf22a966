"""``fake`` backends: deterministic, in-memory arm, hand and camera for tests, demos and dry runs.

They go through exactly the same base-class code paths as the hardware backends (connection guards,
safety limits, returned commands), so code that works on them exercises the real control flow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from deft_core.geometry import intrinsics_from_fovy
from robot.safety import _vec
from robot.base import (Arm, ArmState, Camera, ControllerError, DeviceAlreadyConnectedError, DeviceError, Frame, Hand,
                        HandState, N_HAND_JOINTS, Pose, now)

log = logging.getLogger(__name__)


@dataclass
class FakeArmConfig:
    """``home_position`` (m, base frame) and ``home_euler_xyz`` (rad) of the wrist."""

    home_position: list = field(default_factory=lambda: [0.35, 0.0, 0.35])
    home_euler_xyz: list = field(default_factory=lambda: [np.pi, 0.0, 0.0])

    def __post_init__(self) -> None:
        self.home_position = _vec(self.home_position, 3, "home_position").tolist()
        self.home_euler_xyz = _vec(self.home_euler_xyz, 3, "home_euler_xyz").tolist()


class FakeArm(Arm):
    """The wrist moves instantly to each commanded pose. ``inject_error(code, meaning)`` makes the next
    command fail like a controller error (the arm is then stopped and motion disabled until :meth:`recover`)."""

    Config = FakeArmConfig

    def __init__(self, config: FakeArmConfig | None = None, safety=None):
        super().__init__(safety)
        self.config = config or FakeArmConfig()
        self._connected = False
        self._enabled = False
        self._pose = Pose.from_euler_xyz(self.config.home_position, self.config.home_euler_xyz)
        self._pending_error: tuple[int, str] | None = None
        self.history: list[Pose] = []  #: every pose that reached the "controller"

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if self._connected:
            raise DeviceAlreadyConnectedError("FakeArm is already connected")
        self._connected = self._enabled = True

    def disconnect(self) -> None:
        if self._connected:
            self._stop()
        self._connected = False

    @property
    def motion_enabled(self) -> bool:
        return self._enabled

    def inject_error(self, code: int, meaning: str = "injected fault") -> None:
        self._pending_error = (code, meaning)

    def recover(self) -> None:
        """Clear a controller error and re-enable motion (the operator's decision)."""
        self._pending_error = None
        self._enabled = True

    def _read_state(self) -> ArmState:
        return ArmState(pose=self._pose, joints=np.zeros(6), timestamp=now())

    def _command_pose(self, pose: Pose, speed_m_s: float, wait: bool) -> None:
        if not self._enabled:
            raise DeviceError("FakeArm: motion is disabled after a stop; call recover() or home()")
        if self._pending_error is not None:  # like a controller, the error stays until recover()
            code, meaning = self._pending_error
            raise ControllerError("FakeArm", code, meaning)
        self._pose = pose
        self.history.append(pose)

    def _stop(self) -> None:
        self._enabled = False

    def _home(self) -> None:
        self.recover()
        self._pose = Pose.from_euler_xyz(self.config.home_position, self.config.home_euler_xyz)


@dataclass
class FakeHandConfig:
    """``tracking``: fraction of the way each readback moves towards the last command (1 = exact)."""

    tracking: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < float(self.tracking) <= 1.0:
            raise ValueError(f"tracking must be in (0, 1], got {self.tracking!r}")


class FakeHand(Hand):
    Config = FakeHandConfig

    def __init__(self, config: FakeHandConfig | None = None, safety=None):
        super().__init__(safety)
        self.config = config or FakeHandConfig()
        self._connected = False
        self._target = np.zeros(N_HAND_JOINTS)
        self._q = np.zeros(N_HAND_JOINTS)

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if self._connected:
            raise DeviceAlreadyConnectedError("FakeHand is already connected")
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def _command_joints(self, joints: np.ndarray) -> None:
        self._target = joints.copy()

    def _read_state(self) -> HandState:
        self._q = self._q + self.config.tracking * (self._target - self._q)
        return HandState(joints=self._q.copy(), timestamp=now(), current_ma=np.zeros(N_HAND_JOINTS))


@dataclass
class FakeCameraConfig:
    """A camera looking straight down at a table ``table_distance_m`` away with a box of height
    ``box_height_m`` in the middle. ``seed`` fixes the texture."""

    width: int = 320
    height: int = 240
    fovy_deg: float = 58.0
    table_distance_m: float = 0.8
    box_height_m: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if int(self.width) < 8 or int(self.height) < 8:
            raise ValueError(f"width/height must be >= 8 pixels, got {self.width}x{self.height}")
        if not 1.0 < float(self.fovy_deg) < 170.0:
            raise ValueError(f"fovy_deg must be in (1, 170) degrees, got {self.fovy_deg}")
        if not 0.0 < float(self.box_height_m) < float(self.table_distance_m):
            raise ValueError("box_height_m must be positive and below table_distance_m")


class FakeCamera(Camera):
    """Deterministic RGB-D frames: seeded texture, planar table depth, a box (mask id 1)."""

    Config = FakeCameraConfig

    def __init__(self, config: FakeCameraConfig | None = None):
        self.config = config or FakeCameraConfig()
        self._connected = False
        c = self.config
        self.K = intrinsics_from_fovy(c.fovy_deg, c.width, c.height)
        rng = np.random.default_rng(c.seed)
        self._rgb = rng.integers(90, 160, size=(c.height, c.width, 3), dtype=np.uint8)
        self._depth = np.full((c.height, c.width), c.table_distance_m, np.float32)
        self._mask = np.zeros((c.height, c.width), np.int32)
        h4, w4 = c.height // 4, c.width // 4
        box = (slice(c.height // 2 - h4 // 2, c.height // 2 + h4 // 2), slice(c.width // 2 - w4 // 2, c.width // 2 + w4 // 2))
        self._rgb[box] = (200, 40, 40)
        self._depth[box] = c.table_distance_m - c.box_height_m
        self._mask[box] = 1
        self.frames_read = 0

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if self._connected:
            raise DeviceAlreadyConnectedError("FakeCamera is already connected")
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def _capture(self, timeout_s: float) -> Frame:
        self.frames_read += 1
        return Frame(rgb=self._rgb.copy(), depth=self._depth.copy(), K=self.K.copy(), timestamp=now(), mask=self._mask.copy())
