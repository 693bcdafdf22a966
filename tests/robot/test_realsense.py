"""The RealSense backend against a stand-in with pyrealsense2's interface: no-device error, frame conversion."""

from types import SimpleNamespace

import numpy as np
import pytest

from robot.backends.realsense import RealSenseCamera, RealSenseConfig, frame_from_realsense
from robot.base import DeviceError, DeviceNotFoundError


class _Data:
    def __init__(self, a):
        self.a = a

    def get_data(self):
        return self.a

    def __bool__(self):
        return self.a is not None


def fake_rs(devices=("123456",), fail_frames=False, coeffs=(0.0, 0.0, 0.0, 0.0, 0.0)):
    H, W = 48, 64
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 200
    raw = np.full((H, W), 800, np.uint16)  # 0.8 m at 1 mm units
    raw[0, 0] = 0
    raw[1, 1] = 65000  # beyond max depth
    calls = []

    class Device:
        def __init__(self, s):
            self.s = s

        def get_info(self, what):
            return self.s

        def first_depth_sensor(self):
            return SimpleNamespace(get_depth_scale=lambda: 0.001)

    class Profile:
        def get_device(self):
            return Device(devices[0])

        def get_stream(self, s):
            intr = SimpleNamespace(fx=50.0, fy=51.0, ppx=31.5, ppy=23.5, model="inverse_brown_conrady", coeffs=list(coeffs))
            return SimpleNamespace(as_video_stream_profile=lambda: SimpleNamespace(get_intrinsics=lambda: intr))

    class Pipeline:
        def __init__(self, ctx):
            pass

        def start(self, cfg):
            calls.append(("start", cfg.streams))
            return Profile()

        def wait_for_frames(self, timeout_ms):
            if fail_frames:
                raise RuntimeError("Frame didn't arrive within 5000")
            return "frames"

        def stop(self):
            calls.append(("stop",))

    class Config:
        def __init__(self):
            self.streams = []

        def enable_device(self, s):
            self.streams.append(("device", s))

        def enable_stream(self, *a):
            self.streams.append(a)

    class Align:
        def __init__(self, to):
            calls.append(("align", to))

        def process(self, frames):
            return SimpleNamespace(get_color_frame=lambda: _Data(rgb), get_depth_frame=lambda: _Data(raw))

    rs = SimpleNamespace(
        context=lambda: SimpleNamespace(query_devices=lambda: [Device(s) for s in devices]),
        pipeline=Pipeline, config=Config, align=Align,
        stream=SimpleNamespace(color="color", depth="depth"), format=SimpleNamespace(rgb8="rgb8", z16="z16"),
        camera_info=SimpleNamespace(serial_number="serial_number"),
    )
    return rs, calls


def test_no_device_is_a_clear_error():
    rs, _ = fake_rs(devices=())
    with pytest.raises(DeviceNotFoundError, match="no Intel RealSense camera found"):
        RealSenseCamera(RealSenseConfig(), rs_module=rs).connect()
    rs, _ = fake_rs(devices=("111",))
    with pytest.raises(DeviceNotFoundError, match=r"'999' not found; connected cameras: \['111'\]"):
        RealSenseCamera(RealSenseConfig(serial="999"), rs_module=rs).connect()


def test_frames_are_aligned_metric_and_carry_intrinsics():
    rs, calls = fake_rs()
    cam = RealSenseCamera(RealSenseConfig(width=64, height=48, warmup_frames=2, max_depth_m=4.0), rs_module=rs)
    with cam:
        f = cam.read()
    assert ("align", "color") in calls and calls[-1] == ("stop",)
    start = [c for c in calls if c[0] == "start"][0][1]
    assert ("color", 64, 48, "rgb8", 30) in start and ("depth", 64, 48, "z16", 30) in start
    assert f.rgb.shape == (48, 64, 3) and f.depth.dtype == np.float32
    assert f.depth[5, 5] == pytest.approx(0.8) and f.depth[0, 0] == 0.0 and f.depth[1, 1] == 0.0
    np.testing.assert_allclose(f.K, [[50, 0, 31.5], [0, 51, 23.5], [0, 0, 1]])


def test_frame_timeouts_and_bad_formats():
    rs, _ = fake_rs(fail_frames=True)
    with pytest.raises(DeviceError, match="warm-up"):
        RealSenseCamera(RealSenseConfig(warmup_frames=1), rs_module=rs).connect()
    with pytest.raises(DeviceError, match="Z16"):
        frame_from_realsense(_Data(np.zeros((4, 4, 3), np.uint8)), _Data(np.zeros((4, 5), np.uint16)), 0.001, np.eye(3))
    with pytest.raises(ValueError, match="fps"):
        RealSenseConfig(fps=25)


def test_uncorrected_lens_distortion_is_announced(caplog):
    """The pinhole K is all the robot uses: a camera that reports distortion coefficients gets a warning."""
    import logging

    for coeffs, warned in (((0.0,) * 5, False), ((-0.055, 0.066, 0.0, 0.0, -0.021), True)):
        rs, _ = fake_rs(coeffs=coeffs)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="robot.backends.realsense"):
            with RealSenseCamera(RealSenseConfig(width=64, height=48, warmup_frames=0), rs_module=rs):
                pass
        assert ("lens distortion" in caplog.text) == warned, caplog.text

