"""``dynamixel`` hand backend: 16 Dynamixel X-series motors (LEAP / DASH style) via ``dynamixel-sdk``,
Protocol 2.0.

On connect: open the serial port, PING every motor (missing ids are named), torque off, Operating Mode 5
(current-based position), Current Limit and Goal Current = ``current_limit_ma``, torque on. Targets go out
in one GroupSyncWrite of Goal Position (116); state comes back in one GroupSyncRead of Present Current
(126) … Present Position (132), and a second of Hardware Error Status (70): a motor that latched an alert
(overload while gripping, overheating, ...) has switched its torque off and would otherwise go on reporting
plausible positions while ignoring its goal (the SDK's GroupSyncRead drops the status error byte), so
reading the hand raises instead, naming the motor and the alert. On disconnect the torque is switched off.

Joint ↔ motor mapping (Appendix B): ``motor_angle = scale · joint_angle + offset`` per joint (radians;
motor angle 0..2π with π at position 2048). The default (scale 1, offset π) is LEAP's convention where
3.14 rad is the flat hand; ``deft-robot calibrate-hand`` fits scale and offset from calibration pairs.
Motor ``motor_ids[i]`` drives joint ``i`` of :data:`deft_core.grasp.HAND_JOINT_NAMES`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from robot import dynamixel_protocol as dp
from robot.base import (DeviceAlreadyConnectedError, DeviceError, DeviceNotFoundError, Hand, HandState,
                        N_HAND_JOINTS, now, require_package)

log = logging.getLogger(__name__)

SDK_BAUDRATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000,
                 2000000, 2500000, 3000000, 3500000, 4000000)
_READ_START = dp.PRESENT_CURRENT[0]
_READ_LEN = dp.PRESENT_POSITION[0] + dp.PRESENT_POSITION[1] - _READ_START  # 126..135


@dataclass
class DynamixelConfig:
    """``port``: serial device (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``); ``baudrate``; ``motor_ids``:
    16 ids in HAND_JOINT_NAMES order; ``current_limit_ma``: per-motor current cap (mA) for grasping;
    ``current_unit_ma``: mA per current register unit (1.0 on XC330/XL330, 2.69 on XM430);
    ``scale``/``offset``: the joint → motor angle mapping (16 each, rad); ``retries``: re-tries of a failed
    bus transaction before giving up."""

    port: str
    motor_ids: list = field(default_factory=lambda: list(range(16)))
    baudrate: int = 4000000
    current_limit_ma: float = 350.0
    current_unit_ma: float = 1.0
    max_current_ma: float = 1000.0
    scale: list = field(default_factory=lambda: [1.0] * N_HAND_JOINTS)
    offset: list = field(default_factory=lambda: [math.pi] * N_HAND_JOINTS)
    retries: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.port, str) or not self.port:
            raise ValueError(f"port must be a serial device path, got {self.port!r}")
        ids = list(self.motor_ids)
        if len(ids) != N_HAND_JOINTS or len(set(ids)) != N_HAND_JOINTS or not all(isinstance(i, int) and 0 <= i <= 252 for i in ids):
            raise ValueError(f"motor_ids must be {N_HAND_JOINTS} distinct integers 0..252, got {self.motor_ids!r}")
        self.motor_ids = ids
        if self.baudrate not in SDK_BAUDRATES:
            raise ValueError(f"baudrate {self.baudrate} is not supported by dynamixel-sdk; use one of {SDK_BAUDRATES}")
        if not (0 < float(self.current_limit_ma) <= float(self.max_current_ma)):
            raise ValueError(f"current_limit_ma must be in (0, max_current_ma={self.max_current_ma}], got {self.current_limit_ma!r}")
        if not float(self.current_unit_ma) > 0:
            raise ValueError(f"current_unit_ma must be positive, got {self.current_unit_ma!r}")
        for name in ("scale", "offset"):
            v = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if v.shape != (N_HAND_JOINTS,) or not np.all(np.isfinite(v)):
                raise ValueError(f"{name} must be {N_HAND_JOINTS} finite numbers, got {getattr(self, name)!r}")
            setattr(self, name, v.tolist())
        if np.any(np.abs(self.scale) < 1e-3):
            raise ValueError(f"scale entries must be non-zero (|scale| >= 1e-3), got {self.scale}")
        if not (isinstance(self.retries, int) and self.retries >= 0):
            raise ValueError(f"retries must be a non-negative integer, got {self.retries!r}")

    def joints_to_motor_rad(self, joints: np.ndarray) -> np.ndarray:
        return np.asarray(self.scale) * joints + np.asarray(self.offset)

    def motor_rad_to_joints(self, motor: np.ndarray) -> np.ndarray:
        return (motor - np.asarray(self.offset)) / np.asarray(self.scale)


class DynamixelHand(Hand):
    Config = DynamixelConfig

    def __init__(self, config: DynamixelConfig, safety=None):
        super().__init__(safety)
        self.config = config
        self._port = None
        self._ph = None
        self._sdk = None
        self._writer = None
        self._reader = None
        self._alert_reader = None

    @property
    def is_connected(self) -> bool:
        return self._port is not None

    # ------------------------------------------------------------------ bus helpers
    def _fail(self, what: str, dxl_id: int | None, result: int, error: int = 0) -> None:
        who = f" (motor {dxl_id})" if dxl_id is not None else ""
        if result != self._sdk.COMM_SUCCESS:
            raise DeviceError(f"Dynamixel {what}{who} on {self.config.port}: {self._ph.getTxRxResult(result)}")
        if error:
            meaning = dp.ERROR_MEANINGS.get(error & 0x7F, "unknown")
            alert = " + hardware alert (check overload/temperature, Hardware Error Status 70)" if error & 0x80 else ""
            raise DeviceError(f"Dynamixel {what}{who}: status error {error}: {meaning}{alert}")

    def _write(self, reg, dxl_id: int, value: int) -> None:
        addr, size = reg
        fn = {1: self._ph.write1ByteTxRx, 2: self._ph.write2ByteTxRx, 4: self._ph.write4ByteTxRx}[size]
        for attempt in range(self.config.retries + 1):
            result, error = fn(self._port, dxl_id, addr, value)
            if result == self._sdk.COMM_SUCCESS or attempt == self.config.retries:
                break
        self._fail(f"write address {addr}", dxl_id, result, error)

    def _read(self, reg, dxl_id: int) -> int:
        addr, size = reg
        fn = {1: self._ph.read1ByteTxRx, 2: self._ph.read2ByteTxRx, 4: self._ph.read4ByteTxRx}[size]
        for attempt in range(self.config.retries + 1):
            value, result, error = fn(self._port, dxl_id, addr)
            if result == self._sdk.COMM_SUCCESS or attempt == self.config.retries:
                break
        self._fail(f"read address {addr}", dxl_id, result, error)
        return int(value)

    def _write_eeprom(self, reg, dxl_id: int, value: int) -> None:
        """Write an EEPROM register only when it differs (EEPROM wears: every connect would rewrite 32)."""
        if self._read(reg, dxl_id) != value:
            self._write(reg, dxl_id, value)

    # ------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        if self.is_connected:
            raise DeviceAlreadyConnectedError(f"Dynamixel hand on {self.config.port} is already connected")
        sdk = require_package("dynamixel_sdk", "dynamixel-sdk")
        self._sdk = sdk
        port = sdk.PortHandler(self.config.port)
        try:
            opened = port.openPort()
        except Exception as exc:  # pyserial raises SerialException for missing devices
            raise DeviceNotFoundError(f"cannot open the hand's serial port {self.config.port!r}: {exc}") from exc
        if not opened or not port.setBaudRate(self.config.baudrate):
            raise DeviceNotFoundError(f"cannot open {self.config.port!r} at {self.config.baudrate} baud")
        self._port, self._ph = port, sdk.PacketHandler(2.0)
        try:
            self._configure()
        except Exception:
            self.disconnect()
            raise

    def _configure(self) -> None:
        cfg = self.config
        missing = []
        for i in cfg.motor_ids:
            for _ in range(cfg.retries + 1):
                _, result, _ = self._ph.ping(self._port, i)
                if result == self._sdk.COMM_SUCCESS:
                    break
            else:
                missing.append(i)
        if missing:
            raise DeviceNotFoundError(f"no answer from Dynamixel id(s) {missing} on {cfg.port} at {cfg.baudrate} baud "
                                      "(power, cabling, ids and baud rate?); all 16 motors are required")
        units = int(round(cfg.current_limit_ma / cfg.current_unit_ma))
        for i in cfg.motor_ids:  # EEPROM registers need torque off
            self._write(dp.TORQUE_ENABLE, i, 0)
            self._write_eeprom(dp.OPERATING_MODE, i, dp.MODE_CURRENT_BASED_POSITION)
            self._write_eeprom(dp.CURRENT_LIMIT, i, units)
            self._write(dp.GOAL_CURRENT, i, units)
        self._writer = self._sdk.GroupSyncWrite(self._port, self._ph, *dp.GOAL_POSITION)
        self._reader = self._sdk.GroupSyncRead(self._port, self._ph, _READ_START, _READ_LEN)
        self._alert_reader = self._sdk.GroupSyncRead(self._port, self._ph, *dp.HARDWARE_ERROR_STATUS)
        for i in cfg.motor_ids:
            self._reader.addParam(i)
            self._alert_reader.addParam(i)
        # hold the current position before enabling torque, so nothing jumps
        present = self._read_motor()[0]
        self._sync_write_ticks(present)
        for i in cfg.motor_ids:
            self._write(dp.TORQUE_ENABLE, i, 1)

    def disconnect(self) -> None:
        if self._port is None:
            return
        try:
            for i in self.config.motor_ids:
                try:
                    self._ph.write1ByteTxRx(self._port, i, dp.TORQUE_ENABLE[0], 0)
                except Exception:
                    log.exception("Dynamixel: torque off failed for motor %s", i)
            self._port.closePort()
        finally:
            self._port = None

    # ------------------------------------------------------------------ I/O
    def _sync_write_ticks(self, ticks: np.ndarray) -> None:
        w = self._writer
        w.clearParam()
        for dxl_id, t in zip(self.config.motor_ids, ticks):
            w.addParam(dxl_id, list(int(t).to_bytes(4, "little", signed=True)))
        result = w.txPacket()
        self._fail("sync write Goal Position", None, result)

    def _sync_read(self, reader, what: str) -> None:
        """One GroupSyncRead transaction, re-tried ``retries`` times; a last failure raises naming ``what``."""
        for attempt in range(self.config.retries + 1):
            result = reader.txRxPacket()
            if result == self._sdk.COMM_SUCCESS:
                break
            log.debug("Dynamixel sync read of %s failed (%s), attempt %d", what, self._ph.getTxRxResult(result), attempt + 1)
        self._fail(f"sync read {what}", None, result)

    def _read_motor(self) -> tuple[np.ndarray, np.ndarray]:
        """(present position ticks, present current register units), each (16,)."""
        self._sync_read(self._reader, "Present Position/Current")
        pos, cur = np.empty(N_HAND_JOINTS), np.empty(N_HAND_JOINTS)
        for k, i in enumerate(self.config.motor_ids):
            if not self._reader.isAvailable(i, _READ_START, _READ_LEN):
                raise DeviceError(f"Dynamixel sync read: no data from motor {i}")
            pos[k] = dp.to_signed(self._reader.getData(i, *dp.PRESENT_POSITION), 4)
            cur[k] = dp.to_signed(self._reader.getData(i, *dp.PRESENT_CURRENT), 2)
        return pos, cur

    def _command_joints(self, joints: np.ndarray) -> None:
        motor = self.config.joints_to_motor_rad(joints)
        ticks = np.array([dp.rad_to_ticks(a) for a in motor])
        if np.any(ticks < 0) or np.any(ticks >= dp.TICKS_PER_REV):
            raise DeviceError(f"joint targets map outside one motor revolution (ticks {ticks.tolist()}); "
                              "check the hand mapping (scale/offset) in the robot config")
        self._sync_write_ticks(ticks)

    def _check_alerts(self) -> None:
        """Raise :class:`DeviceError` if any motor has latched a hardware error (its torque is off)."""
        self._sync_read(self._alert_reader, "Hardware Error Status")
        bad = {}
        for i in self.config.motor_ids:
            if not self._alert_reader.isAvailable(i, *dp.HARDWARE_ERROR_STATUS):
                raise DeviceError(f"Dynamixel sync read: no Hardware Error Status from motor {i}")
            status = self._alert_reader.getData(i, *dp.HARDWARE_ERROR_STATUS)
            if status:
                bad[i] = ", ".join(name for bit, name in dp.HARDWARE_ERROR_BITS.items() if status >> bit & 1) or f"status {status}"
        if bad:
            joints = {i: self.config.motor_ids.index(i) for i in bad}
            raise DeviceError("Dynamixel hardware alert, torque switched off: " + "; ".join(
                f"motor {i} (joint {joints[i]}): {why}" for i, why in bad.items())
                + ". Let the motor cool / free the finger, then power-cycle the hand (or reboot the motor) and reconnect")

    def _read_state(self) -> HandState:
        self._check_alerts()
        ticks, cur = self._read_motor()
        joints = self.config.motor_rad_to_joints(np.array([dp.ticks_to_rad(t) for t in ticks]))
        return HandState(joints=joints, timestamp=now(), current_ma=cur * self.config.current_unit_ma)
