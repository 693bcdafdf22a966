"""An emulated Dynamixel Protocol 2.0 bus on a pseudo-terminal, for testing the real SDK code path.

``DxlBusEmulator(ids)`` opens a pty pair; its ``port`` (the slave path, e.g. ``/dev/pts/7``) is opened by
``dynamixel_sdk.PortHandler`` exactly like a USB adapter. A thread reads instruction packets from the
master side and answers with status packets (with CRC) from a per-motor X-series control table:

- PING, READ, WRITE, SYNC READ, SYNC WRITE (broadcast), with status errors for bad CRC (3), unknown
  instruction (2), EEPROM writes while torque is on (access error 7), Goal Current above Current Limit
  (data range 4);
- motion: with torque on in a position mode, Present Position follows Goal Position instantly unless the
  test sets ``obstacle[id] = ticks`` (the finger is blocked there and the motor pushes with its Goal Current);
- hardware alerts: ``overload(id)`` latches bit 5 of Hardware Error Status (70) as an X-series motor does:
  its torque goes off, it stops following goals, and every status packet it sends carries the alert bit
  (0x80) in its error byte (which dynamixel_sdk's GroupSyncRead discards).
"""

from __future__ import annotations

import os
import select
import struct
import threading
import tty

from robot import dynamixel_protocol as dp


class EmulatedMotor:
    def __init__(self, dxl_id: int, model: int = 1200):
        self.id = dxl_id
        self.table = bytearray(256)
        self.set(dp.MODEL_NUMBER, model)
        self.set(dp.FIRMWARE_VERSION, 52)
        self.set(dp.OPERATING_MODE, dp.MODE_POSITION)
        self.set(dp.CURRENT_LIMIT, 1750)
        self.set(dp.GOAL_CURRENT, 1750)
        self.set(dp.PRESENT_POSITION, 2048)
        self.set(dp.GOAL_POSITION, 2048)

    def get(self, reg) -> int:
        addr, size = reg
        return int.from_bytes(self.table[addr: addr + size], "little")

    def set(self, reg, value: int) -> None:
        addr, size = reg
        self.table[addr: addr + size] = (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")


class DxlBusEmulator:
    def __init__(self, ids, model: int = 1200):
        self.motors = {i: EmulatedMotor(i, model) for i in ids}
        self.obstacle: dict[int, int] = {}
        self.packets_seen: list[dp.Packet] = []
        self.crc_errors = 0
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave  # keep the slave open so the master never sees EIO between SDK opens
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dxl-emulator", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def overload(self, dxl_id: int) -> None:
        """Latch an overload alert on motor ``dxl_id``: torque off, alert bit on its status packets."""
        m = self.motors[dxl_id]
        m.set(dp.HARDWARE_ERROR_STATUS, m.get(dp.HARDWARE_ERROR_STATUS) | 1 << 5)
        m.set(dp.TORQUE_ENABLE, 0)

    @staticmethod
    def _err(m: EmulatedMotor, error: int = 0) -> int:
        return error | (dp.ALERT_BIT if m.get(dp.HARDWARE_ERROR_STATUS) else 0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    # ------------------------------------------------------------------ bus loop
    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 4096)
            except OSError:
                return
            while True:
                try:
                    pkt, used = dp.decode_packet(buf)
                except dp.PacketError:
                    self.crc_errors += 1
                    start = buf.find(dp.HEADER)
                    if start >= 0 and len(buf) > start + 4:
                        os.write(self.master, dp.encode_status(buf[start + 4], dp.ERR_CRC))
                    buf = buf[buf.find(dp.HEADER) + 4:] if dp.HEADER in buf else b""
                    continue
                buf = buf[used:]
                if pkt is None:
                    break
                self.packets_seen.append(pkt)
                for reply in self._handle(pkt):
                    os.write(self.master, reply)

    def _step(self, m: EmulatedMotor) -> None:
        if m.get(dp.TORQUE_ENABLE) and m.get(dp.OPERATING_MODE) in (dp.MODE_POSITION, dp.MODE_EXTENDED_POSITION,
                                                                   dp.MODE_CURRENT_BASED_POSITION):
            goal = dp.to_signed(m.get(dp.GOAL_POSITION), 4)
            block = self.obstacle.get(m.id)
            if block is not None and goal > block:
                m.set(dp.PRESENT_POSITION, block)
                push = m.get(dp.GOAL_CURRENT) if m.get(dp.OPERATING_MODE) == dp.MODE_CURRENT_BASED_POSITION else m.get(dp.CURRENT_LIMIT)
                m.set(dp.PRESENT_CURRENT, push)
            else:
                m.set(dp.PRESENT_POSITION, goal)
                m.set(dp.PRESENT_CURRENT, 5)
        else:
            m.set(dp.PRESENT_CURRENT, 0)

    def _write(self, m: EmulatedMotor, addr: int, data: bytes) -> int:
        if addr < dp.EEPROM_END and m.get(dp.TORQUE_ENABLE) and not (addr == dp.TORQUE_ENABLE[0]):
            return dp.ERR_ACCESS
        if addr == dp.GOAL_CURRENT[0] and len(data) >= 2 and int.from_bytes(data[:2], "little") > m.get(dp.CURRENT_LIMIT):
            return dp.ERR_DATA_RANGE
        m.table[addr: addr + len(data)] = data
        self._step(m)
        return 0

    def _handle(self, pkt: dp.Packet):
        targets = self.motors if pkt.id == dp.BROADCAST_ID else ({pkt.id: self.motors[pkt.id]} if pkt.id in self.motors else {})
        if pkt.instruction == dp.INST_PING:
            for m in targets.values():
                yield dp.encode_status(m.id, self._err(m), struct.pack("<HB", m.get(dp.MODEL_NUMBER), m.get(dp.FIRMWARE_VERSION)))
        elif pkt.instruction == dp.INST_READ and pkt.id in self.motors:
            addr, size = struct.unpack_from("<HH", pkt.params)
            m = self.motors[pkt.id]
            self._step(m)
            yield dp.encode_status(m.id, self._err(m), bytes(m.table[addr: addr + size]))
        elif pkt.instruction == dp.INST_WRITE and pkt.id in self.motors:
            addr = struct.unpack_from("<H", pkt.params)[0]
            m = self.motors[pkt.id]
            yield dp.encode_status(pkt.id, self._err(m, self._write(m, addr, pkt.params[2:])))
        elif pkt.instruction == dp.INST_SYNC_WRITE:
            addr, size = struct.unpack_from("<HH", pkt.params)
            body = pkt.params[4:]
            for k in range(0, len(body), size + 1):
                m = self.motors.get(body[k])
                if m is not None:
                    self._write(m, addr, body[k + 1: k + 1 + size])
            # broadcast: no status packets
        elif pkt.instruction == dp.INST_SYNC_READ:
            addr, size = struct.unpack_from("<HH", pkt.params)
            for dxl_id in pkt.params[4:]:
                m = self.motors.get(dxl_id)
                if m is not None:
                    self._step(m)
                    yield dp.encode_status(m.id, self._err(m), bytes(m.table[addr: addr + size]))
        elif pkt.id in self.motors:
            yield dp.encode_status(pkt.id, dp.ERR_INSTRUCTION)
