"""The Dynamixel hand backend + the real dynamixel_sdk, talking Protocol 2.0 over a pseudo-terminal to an
emulated bus (tests/robot/dxl_emulator.py) — no mock of the SDK."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dynamixel_sdk")

from robot import dynamixel_protocol as dp
from robot.backends.dynamixel import DynamixelConfig, DynamixelHand
from robot.base import DeviceError, DeviceNotFoundError

sys.path.insert(0, str(Path(__file__).parent))  # tests/robot is not a package: `robot` is the real one
from dxl_emulator import DxlBusEmulator  # noqa: E402

IDS = list(range(1, 17))


def _hand(port, **kw):
    return DynamixelHand(DynamixelConfig(port=port, motor_ids=IDS, baudrate=1000000, **kw))


def test_crc_and_stuffing_match_the_sdk():
    import dynamixel_sdk as sdk

    ph = sdk.PacketHandler(2.0)
    rng = np.random.default_rng(0)
    for n in (1, 5, 40):
        data = bytes(rng.integers(0, 256, n, dtype=np.uint8))
        assert dp.crc16(data) == ph.updateCRC(0, list(data), len(data))
    # the ROBOTIS manual's PING example: FF FF FD 00 01 03 00 01 19 4E
    assert dp.encode_instruction(1, dp.INST_PING) == bytes.fromhex("FFFFFD000103000119 4E".replace(" ", ""))
    body = bytes([dp.INST_WRITE, 0xFF, 0xFF, 0xFD, 0x01])
    pkt = dp.encode_instruction(7, dp.INST_WRITE, body[1:])
    assert b"\xff\xff\xfd\xfd" in pkt[7:]
    decoded, used = dp.decode_packet(b"\x00\x01" + pkt + b"\xff")
    assert used == len(pkt) + 2 and decoded.params == body[1:] and decoded.id == 7
    with pytest.raises(dp.PacketError, match="CRC"):
        dp.decode_packet(pkt[:-1] + bytes([pkt[-1] ^ 1]))


def test_connect_configures_current_based_position_mode_and_moves():
    with DxlBusEmulator(IDS) as bus:
        hand = _hand(bus.port, current_limit_ma=350)
        with hand:
            for m in bus.motors.values():
                assert m.get(dp.OPERATING_MODE) == dp.MODE_CURRENT_BASED_POSITION
                assert m.get(dp.CURRENT_LIMIT) == 350 and m.get(dp.GOAL_CURRENT) == 350
                assert m.get(dp.TORQUE_ENABLE) == 1
            np.testing.assert_allclose(hand.read().joints, 0.0, atol=2 * math.pi / 4096)  # 2048 ticks = flat
            q = np.linspace(0.0, 1.0, 16)
            cmd = hand.send(q)
            state = hand.read()  # the bus is serial: once this reply is in, the (unacknowledged) sync write was applied
            # flat = π = 2048 ticks; joint angle maps 1:1 onto the motor
            for k, i in enumerate(IDS):
                assert bus.motors[i].get(dp.GOAL_POSITION) == dp.rad_to_ticks(math.pi + cmd.commanded[k])
            np.testing.assert_allclose(state.joints, cmd.commanded, atol=2 * math.pi / 4096)
            assert any(p.instruction == dp.INST_SYNC_WRITE for p in bus.packets_seen)
            assert any(p.instruction == dp.INST_SYNC_READ for p in bus.packets_seen)
        assert all(m.get(dp.TORQUE_ENABLE) == 0 for m in bus.motors.values())  # limp and safe after disconnect


def test_blocked_finger_stays_within_the_current_limit_and_mapping_is_applied():
    with DxlBusEmulator(IDS) as bus:
        scale = [1.0] * 16
        scale[1] = -1.0  # a motor mounted the other way round
        hand = _hand(bus.port, current_limit_ma=300, current_unit_ma=1.0, scale=scale)
        with hand:
            bus.obstacle[IDS[5]] = 2048 + 200  # middle MCP-forward blocked by an object
            hand.send(np.full(16, 0.8))
            st = hand.read()
            assert st.current_ma[5] == pytest.approx(300.0)
            assert np.all(st.current_ma <= 300.0)
            assert st.joints[5] == pytest.approx(dp.ticks_to_rad(200), abs=1e-9)
            assert bus.motors[IDS[1]].get(dp.GOAL_POSITION) == dp.rad_to_ticks(math.pi - 0.8)
            assert st.joints[1] == pytest.approx(0.8, abs=2e-3)


def test_missing_motor_and_missing_port_are_named():
    with DxlBusEmulator(IDS[:-1]) as bus:
        with pytest.raises(DeviceNotFoundError, match=r"id\(s\) \[16\]"):
            _hand(bus.port, retries=0).connect()
    with pytest.raises(DeviceNotFoundError, match="/dev/does-not-exist"):
        _hand("/dev/does-not-exist").connect()


def test_emulated_bus_rejects_eeprom_writes_with_torque_on():
    with DxlBusEmulator(IDS) as bus:
        hand = _hand(bus.port)
        with hand:
            with pytest.raises(DeviceError, match="access error"):
                hand._write(dp.OPERATING_MODE, IDS[0], dp.MODE_POSITION)


def test_a_motor_that_latched_an_overload_stops_the_hand_with_its_name():
    """Gripping overloads finger motor 6: it switches its torque off and keeps answering reads with
    plausible positions (the SDK's sync read drops the alert bit), so a grasp would fail silently; reading
    the hand raises instead, naming the motor, its joint and the alert."""
    with DxlBusEmulator(IDS) as bus:
        hand = _hand(bus.port)
        with hand:
            hand.send(np.full(16, 0.3))
            hand.read()
            bus.overload(IDS[5])
            with pytest.raises(DeviceError, match=r"motor 6 \(joint 5\): overload.*power-cycle"):
                hand.read()


def test_reconnecting_does_not_rewrite_eeprom():
    """Operating Mode and Current Limit live in EEPROM (limited writes): written on the first connect,
    only read on the next ones."""
    with DxlBusEmulator(IDS) as bus:
        def eeprom_writes():
            return [p for p in bus.packets_seen if p.instruction == dp.INST_WRITE
                    and int.from_bytes(p.params[:2], "little") in (dp.OPERATING_MODE[0], dp.CURRENT_LIMIT[0])]
        with _hand(bus.port, current_limit_ma=350):
            pass
        assert len(eeprom_writes()) == 2 * len(IDS)
        with _hand(bus.port, current_limit_ma=350):
            pass
        assert len(eeprom_writes()) == 2 * len(IDS)       # nothing new: the values were already there
        with _hand(bus.port, current_limit_ma=300):
            pass
        assert len(eeprom_writes()) == 3 * len(IDS)       # a new current limit is written once per motor


def test_config_validation():
    with pytest.raises(ValueError, match="motor_ids"):
        DynamixelConfig(port="/dev/ttyUSB0", motor_ids=[1] * 16)
    with pytest.raises(ValueError, match="baudrate"):
        DynamixelConfig(port="/dev/ttyUSB0", baudrate=12345)
    with pytest.raises(ValueError, match="current_limit_ma"):
        DynamixelConfig(port="/dev/ttyUSB0", current_limit_ma=5000)
