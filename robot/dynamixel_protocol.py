"""Dynamixel Protocol 2.0 packets (ROBOTIS e-Manual "Protocol 2.0"): framing, byte stuffing and CRC-16,
plus the X-series control-table addresses and unit conversions the hand backend uses.

Packet layout (little-endian)::

    FF FF FD 00 | ID | LEN_L LEN_H | INSTRUCTION | [ERROR (status only)] PARAMS... | CRC_L CRC_H

``LEN`` counts the bytes after itself (instruction + error + params + CRC). Inside the
instruction..params region every ``FF FF FD`` is stuffed to ``FF FF FD FD``; the CRC covers the whole
stuffed packet from the header. Pure Python, no SDK: used by the test bus emulator and for checks.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE

INST_PING = 0x01
INST_READ = 0x02
INST_WRITE = 0x03
INST_SYNC_READ = 0x82
INST_SYNC_WRITE = 0x83
INST_STATUS = 0x55

# status error numbers (low 7 bits of the error byte); bit 7 is the hardware alert flag
ERR_RESULT_FAIL, ERR_INSTRUCTION, ERR_CRC, ERR_DATA_RANGE, ERR_DATA_LENGTH, ERR_DATA_LIMIT, ERR_ACCESS = range(1, 8)
ERROR_MEANINGS = {1: "result fail", 2: "instruction error", 3: "CRC error", 4: "data range error",
                  5: "data length error", 6: "data limit error", 7: "access error (e.g. EEPROM write with torque on)"}

# X-series control table (address, size in bytes)
MODEL_NUMBER = (0, 2)
FIRMWARE_VERSION = (6, 1)
RETURN_DELAY_TIME = (9, 1)
OPERATING_MODE = (11, 1)
CURRENT_LIMIT = (38, 2)
TORQUE_ENABLE = (64, 1)
POSITION_D_GAIN = (80, 2)
POSITION_P_GAIN = (84, 2)
HARDWARE_ERROR_STATUS = (70, 1)  #: latched alerts; the motor switches its torque off (bits below)
GOAL_CURRENT = (102, 2)
GOAL_POSITION = (116, 4)
PRESENT_CURRENT = (126, 2)
PRESENT_POSITION = (132, 4)
#: Hardware Error Status bits (X series e-manual): what a latched alert means
HARDWARE_ERROR_BITS = {0: "input voltage", 2: "overheating", 3: "motor encoder", 4: "electrical shock", 5: "overload"}
ALERT_BIT = 0x80  #: set in every status packet's error byte while a hardware error is latched
EEPROM_END = 64  #: addresses below this are EEPROM: writable only with torque off

MODE_CURRENT = 0
MODE_POSITION = 3
MODE_EXTENDED_POSITION = 4
MODE_CURRENT_BASED_POSITION = 5

TICKS_PER_REV = 4096


class PacketError(ValueError):
    """A malformed Protocol 2.0 packet (bad CRC, bad length)."""


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16 of Protocol 2.0 (polynomial 0x8005, not reflected, initial value 0)."""
    for b in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """Byte stuffing of the instruction..params region: ``FF FF FD`` → ``FF FF FD FD``."""
    out = bytearray()
    for b in body:
        out.append(b)
        if b == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        out.append(body[i])
        if body[i] == 0xFD and i + 1 < len(body) and body[i + 1] == 0xFD and len(out) >= 3 \
                and out[-3] == 0xFF and out[-2] == 0xFF:
            i += 1  # skip the stuffed byte
        i += 1
    return bytes(out)


def _frame(dxl_id: int, body: bytes) -> bytes:
    if not 0 <= dxl_id <= 0xFE:
        raise ValueError(f"Dynamixel id must be 0..254, got {dxl_id}")
    body = stuff(body)
    head = HEADER + bytes([dxl_id]) + struct.pack("<H", len(body) + 2)
    crc = crc16(head + body)
    return head + body + struct.pack("<H", crc)


def encode_instruction(dxl_id: int, instruction: int, params: bytes = b"") -> bytes:
    return _frame(dxl_id, bytes([instruction]) + bytes(params))


def encode_status(dxl_id: int, error: int = 0, params: bytes = b"") -> bytes:
    return _frame(dxl_id, bytes([INST_STATUS, error]) + bytes(params))


@dataclass(frozen=True)
class Packet:
    """A decoded packet. ``error`` is set only for status packets (instruction 0x55)."""

    id: int
    instruction: int
    params: bytes
    error: int | None = None


def decode_packet(buf: bytes) -> tuple[Packet | None, int]:
    """Parse the first packet in ``buf``. Returns ``(packet, bytes consumed)``; ``(None, n)`` when more
    bytes are needed (``n`` leading garbage bytes may be dropped). Raises :class:`PacketError` on a bad CRC."""
    start = buf.find(HEADER)
    if start < 0:
        keep = 3 if buf.endswith(b"\xff\xff\xfd") else 2 if buf.endswith(b"\xff\xff") else 1 if buf.endswith(b"\xff") else 0
        return None, len(buf) - keep
    if len(buf) < start + 7:
        return None, start
    length = struct.unpack_from("<H", buf, start + 5)[0]
    end = start + 7 + length
    if length < 3:
        raise PacketError(f"packet length field {length} is too small")
    if len(buf) < end:
        return None, start
    raw = bytes(buf[start:end])
    crc = struct.unpack_from("<H", raw, len(raw) - 2)[0]
    if crc16(raw[:-2]) != crc:
        raise PacketError(f"CRC mismatch: got 0x{crc:04x}, expected 0x{crc16(raw[:-2]):04x}")
    body = unstuff(raw[7:-2])
    inst = body[0]
    if inst == INST_STATUS:
        return Packet(raw[4], inst, body[2:], body[1]), end
    return Packet(raw[4], inst, body[1:]), end


# ----------------------------------------------------------------------------------- units


def rad_to_ticks(angle_rad: float) -> int:
    """Motor angle in radians (0 .. 2π, π = centre) → position ticks (4096 per revolution, 2048 = π)."""
    return int(round(angle_rad * TICKS_PER_REV / (2.0 * math.pi)))


def ticks_to_rad(ticks: int) -> float:
    return ticks * 2.0 * math.pi / TICKS_PER_REV


def to_signed(value: int, size: int) -> int:
    """Interpret an unsigned ``size``-byte register value as two's complement."""
    bits = 8 * size
    return value - (1 << bits) if value >= 1 << (bits - 1) else value
