"""Device interfaces of the robot process: :class:`Arm`, :class:`Hand`, :class:`Camera`.

Backends (``sim``, ``fake``, ``xarm``, ``dynamixel``, ``realsense``) implement these ABCs and are picked
by name from :mod:`robot.registry`. Every device is a context manager (``with arm: ...`` guarantees
``disconnect``), and methods that talk to hardware are guarded by :func:`requires_connection`.

Frames and units (DESIGN.md §3, :mod:`deft_core.geometry`):

- Arm poses are the **wrist** (tool centre) pose in the **robot base frame**: position in metres,
  orientation as a 3×3 rotation matrix (``p_base = R @ p_wrist``); quaternions are ``(w, x, y, z)``.
- Hand joints are 16 angles in radians in :data:`deft_core.grasp.HAND_JOINT_NAMES` order, 0 = flat.
- Camera frames use OpenCV axes (x right, y down, z forward); depth is metres along the optical axis.

Safety is applied in the driver: :meth:`Arm.send` and :meth:`Hand.send` pass every target through the
configured :mod:`robot.safety` limits and return what was **actually commanded**. This module imports
nothing heavy (numpy only) so that the robot process starts fast.
"""

from __future__ import annotations

import functools
import importlib
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import numpy as np

from deft_core.geometry import euler_xyz_to_matrix, matrix_to_euler_xyz, matrix_to_quaternion, quaternion_to_matrix

log = logging.getLogger(__name__)

N_HAND_JOINTS = 16

# ------------------------------------------------------------------------------------------ errors


class DeviceError(RuntimeError):
    """Base class of robot-device failures."""


class DeviceNotConnectedError(ConnectionError):
    """A device method was called before :meth:`Device.connect` (or after ``disconnect``)."""


class DeviceAlreadyConnectedError(ConnectionError):
    """:meth:`Device.connect` was called twice."""


class DeviceNotFoundError(DeviceError):
    """No physical device answered (no camera plugged in, no motor with that id, ...)."""


class ControllerError(DeviceError):
    """The device's controller reported an error. ``code`` is the vendor's code; ``meaning`` its text.
    When raised by an arm, the driver has already stopped it and disabled motion."""

    def __init__(self, device: str, code: int, meaning: str, hint: str = ""):
        self.device, self.code, self.meaning, self.hint = device, code, meaning, hint
        msg = f"{device}: controller error {code}: {meaning}"
        super().__init__(msg + (f" ({hint})" if hint else ""))


class ConfigError(ValueError):
    """Invalid robot configuration; the message names the file and the field."""


class BackendUnavailableError(ImportError):
    """An optional package a backend needs is not installed."""


def require_package(module: str, pip_name: str, extra: str = "robot") -> Any:
    """Import ``module`` or fail with the command that installs it (``pip install 'deft[extra]'``)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"this backend needs the Python package {pip_name!r} (module {module!r}), which is not importable "
            f"({exc}). Install it with: pip install 'deft[{extra}]'  (or: pip install {pip_name})"
        ) from exc


F = TypeVar("F", bound=Callable[..., Any])


def requires_connection(method: F) -> F:
    """Decorator: raise :class:`DeviceNotConnectedError` unless ``self.is_connected``."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self.is_connected:
            raise DeviceNotConnectedError(
                f"{type(self).__name__}.{method.__name__}() needs a connected device: call .connect() first "
                f"or use 'with {type(self).__name__}(...) as dev:'"
            )
        return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------ values


@dataclass(frozen=True)
class Pose:
    """A rigid pose in the robot base frame: ``position`` (3, metres) and ``rotation`` (3×3)."""

    position: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        p = np.asarray(self.position, dtype=np.float64).reshape(-1)
        R = np.asarray(self.rotation, dtype=np.float64)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise ValueError(f"Pose.position must be 3 finite numbers (metres), got {self.position!r}")
        if R.shape != (3, 3) or not np.all(np.isfinite(R)):
            raise ValueError(f"Pose.rotation must be a finite 3x3 matrix, got shape {R.shape}")
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
            raise ValueError(f"Pose.rotation is not a rotation matrix: {R.tolist()}")
        object.__setattr__(self, "position", p)
        object.__setattr__(self, "rotation", R)

    @classmethod
    def from_quaternion(cls, position, quat_wxyz) -> "Pose":
        return cls(position, quaternion_to_matrix(np.asarray(quat_wxyz, dtype=np.float64)))

    @classmethod
    def from_euler_xyz(cls, position, euler_xyz) -> "Pose":
        """Orientation as extrinsic Euler xyz angles in radians (the grasp parameters' θ convention)."""
        return cls(position, euler_xyz_to_matrix(np.asarray(euler_xyz, dtype=np.float64)))

    @property
    def quaternion(self) -> np.ndarray:
        """(w, x, y, z), w >= 0."""
        return matrix_to_quaternion(self.rotation)

    @property
    def euler_xyz(self) -> np.ndarray:
        return matrix_to_euler_xyz(self.rotation)

    def to_dict(self) -> dict:
        return {"position": self.position.tolist(), "quaternion_wxyz": self.quaternion.tolist()}


@dataclass(frozen=True)
class ArmState:
    """Arm readback: wrist ``pose`` (base frame), ``joints`` (rad), ``timestamp`` (``time.monotonic``)."""

    pose: Pose
    joints: np.ndarray
    timestamp: float


@dataclass(frozen=True)
class ArmCommand:
    """What :meth:`Arm.send` did: the ``requested`` pose, the pose actually ``commanded`` after the safety
    limits, the speed used (m/s) and, when a limit changed anything, the reasons (empty otherwise)."""

    requested: Pose
    commanded: Pose
    speed_m_s: float
    clamps: tuple[str, ...] = ()

    @property
    def clamped(self) -> bool:
        return bool(self.clamps)


@dataclass(frozen=True)
class HandState:
    """Hand readback: ``joints`` (16, rad, 0 = flat), optional motor ``current_ma`` (16), ``timestamp``."""

    joints: np.ndarray
    timestamp: float
    current_ma: np.ndarray | None = None


@dataclass(frozen=True)
class HandCommand:
    """What :meth:`Hand.send` did: ``requested`` and actually ``commanded`` joints (16, rad)."""

    requested: np.ndarray
    commanded: np.ndarray
    clamps: tuple[str, ...] = ()

    @property
    def clamped(self) -> bool:
        return bool(self.clamps)


@dataclass(frozen=True)
class Frame:
    """One aligned RGB-D capture.

    ``rgb`` (H, W, 3) uint8; ``depth`` (H, W) float32 metres along the optical axis (0 = no reading),
    registered to the colour image; ``K`` (3, 3) intrinsics of the colour image (OpenCV axes);
    ``timestamp`` (``time.monotonic`` seconds at capture); ``mask`` (H, W) int32 segmentation ids or None.
    """

    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    timestamp: float
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise ValueError(f"Frame.rgb must be (H, W, 3) uint8, got {self.rgb.shape} {self.rgb.dtype}")
        if self.depth.shape != self.rgb.shape[:2] or self.depth.dtype != np.float32:
            raise ValueError(f"Frame.depth must be {self.rgb.shape[:2]} float32 metres, got {self.depth.shape} {self.depth.dtype}")
        if np.asarray(self.K).shape != (3, 3):
            raise ValueError(f"Frame.K must be 3x3, got {np.asarray(self.K).shape}")
        if self.mask is not None and self.mask.shape != self.rgb.shape[:2]:
            raise ValueError(f"Frame.mask must be {self.rgb.shape[:2]}, got {self.mask.shape}")


# ------------------------------------------------------------------------------------------ devices


class Device(ABC):
    """Common lifecycle: ``connect`` / ``disconnect`` / ``is_connected`` and ``with device:``."""

    @property
    @abstractmethod
    def is_connected(self) -> bool: ...

    @abstractmethod
    def connect(self) -> None: ...

    @abstractmethod
    def disconnect(self) -> None:
        """Leave the device safe and release it. Must be idempotent."""

    def __enter__(self):
        if not self.is_connected:
            self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def __del__(self):  # last-resort net only; use `with` or disconnect()
        try:
            if self.is_connected:
                self.disconnect()
        except Exception:
            pass


class Arm(Device):
    """A Cartesian arm. Subclasses implement the ``_``-prefixed primitives; :meth:`send` applies the
    configured :class:`robot.safety.ArmSafety` before anything reaches the controller."""

    def __init__(self, safety=None):
        from robot.safety import ArmSafety  # light module; local import avoids an import cycle

        self.safety: ArmSafety = safety if safety is not None else ArmSafety()

    # --- primitives for backends
    @abstractmethod
    def _read_state(self) -> ArmState: ...

    @abstractmethod
    def _command_pose(self, pose: Pose, speed_m_s: float, wait: bool) -> None:
        """Send one already-safe wrist pose to the controller. Raise :class:`ControllerError` on error."""

    @abstractmethod
    def _stop(self) -> None:
        """Stop motion now and disable further motion until :meth:`connect`/:meth:`home`."""

    @abstractmethod
    def _home(self) -> None: ...

    # --- public API
    @requires_connection
    def get_state(self) -> ArmState:
        return self._read_state()

    @requires_connection
    def send(self, target: Pose, speed_m_s: float | None = None, wait: bool = True) -> ArmCommand:
        """Move the wrist towards ``target`` (base frame). The target is clamped to the workspace box and
        table plane, limited to the per-step translation/rotation, and the speed capped; the returned
        :class:`ArmCommand` says what was commanded. Any device error while commanding (a controller error,
        a motion that timed out and may still be running, a lost connection) stops the arm and is re-raised."""
        current = self._read_state().pose
        cmd = self.safety.limit(target, current, speed_m_s)
        try:
            self._command_pose(cmd.commanded, cmd.speed_m_s, wait)
        except DeviceError:
            self.stop()
            raise
        return cmd

    def move_to(self, target: Pose, speed_m_s: float | None = None, max_steps: int = 1000) -> ArmCommand:
        """Reach ``target`` through repeated safe :meth:`send` steps (each within the step limits).
        Ends when a send is no longer step-limited: the target was reached, or the workspace limits hold
        the wrist as close to it as allowed. Returns the last :class:`ArmCommand`."""
        last = self.send(target, speed_m_s, wait=True)
        for _ in range(max_steps - 1):
            if not any(c.startswith(("step", "rot_step")) for c in last.clamps):
                break
            last = self.send(target, speed_m_s, wait=True)
        return last

    @requires_connection
    def home(self) -> None:
        self._home()

    def recover(self) -> None:
        """Clear a controller error and re-enable motion after a stop (the operator's decision)."""
        raise NotImplementedError(f"{type(self).__name__} does not support recover()")

    def stop(self) -> None:
        """Stop and disable motion. Safe to call at any time (no-op when disconnected)."""
        if self.is_connected:
            try:
                self._stop()
            except Exception:  # stopping must not mask the original problem
                log.exception("%s: stop failed", type(self).__name__)


class Hand(Device):
    """A 16-joint hand (radians, :data:`deft_core.grasp.HAND_JOINT_NAMES` order, 0 = flat). :meth:`send`
    clips to the configured :class:`robot.safety.HandSafety` limits and returns what was commanded."""

    def __init__(self, safety=None):
        from robot.safety import HandSafety

        self.safety: HandSafety = safety if safety is not None else HandSafety()

    @abstractmethod
    def _command_joints(self, joints: np.ndarray) -> None: ...

    @abstractmethod
    def _read_state(self) -> HandState: ...

    @requires_connection
    def send(self, joints) -> HandCommand:
        cmd = self.safety.limit(joints)
        self._command_joints(cmd.commanded)
        return cmd

    @requires_connection
    def read(self) -> HandState:
        return self._read_state()

    def open(self) -> HandCommand:
        """Flat open hand (all zeros)."""
        return self.send(np.zeros(N_HAND_JOINTS))


class Camera(Device):
    """An RGB-D camera returning :class:`Frame` objects (colour-aligned depth in metres)."""

    @abstractmethod
    def _capture(self, timeout_s: float) -> Frame: ...

    @requires_connection
    def read(self, timeout_s: float = 1.0) -> Frame:
        return self._capture(timeout_s)


def now() -> float:
    """The clock of every timestamp in the robot process (``time.monotonic``, seconds)."""
    return time.monotonic()
