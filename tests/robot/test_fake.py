"""The in-package fake backends: lifecycle guards, determinism, frame contract."""

import numpy as np
import pytest

from deft_core.geometry import deproject_pixel
from robot.backends.fake import FakeArm, FakeCamera, FakeCameraConfig, FakeHand, FakeHandConfig
from robot.base import DeviceAlreadyConnectedError, DeviceNotConnectedError, Frame, Pose
from robot.registry import resolve


def test_guards_and_context_managers():
    for dev in (FakeArm(), FakeHand(), FakeCamera()):
        assert not dev.is_connected
        with pytest.raises(DeviceNotConnectedError, match="connect"):
            (dev.get_state if isinstance(dev, FakeArm) else dev.read)()
        with dev:
            assert dev.is_connected
            with pytest.raises(DeviceAlreadyConnectedError):
                dev.connect()
        assert not dev.is_connected


def test_registry_resolves_fake_backends_and_rejects_unknown_names():
    assert resolve("arm", "fake") is FakeArm and resolve("camera", "fake") is FakeCamera
    with pytest.raises(ValueError, match="known hand backends"):
        resolve("hand", "allegro")


def test_fake_camera_is_deterministic_and_metric():
    a = FakeCamera(FakeCameraConfig(seed=3))
    b = FakeCamera(FakeCameraConfig(seed=3))
    with a, b:
        fa, fb = a.read(), b.read()
        f2 = a.read()
    assert isinstance(fa, Frame)
    assert np.array_equal(fa.rgb, fb.rgb) and np.array_equal(fa.depth, fb.depth)
    assert fa.rgb.dtype == np.uint8 and fa.depth.dtype == np.float32
    assert f2.timestamp >= fa.timestamp
    h, w = fa.depth.shape
    # the box top at the centre is 0.7 m away, the table 0.8 m; the centre pixel deprojects on the axis
    centre = deproject_pixel(np.array([fa.K[0, 2], fa.K[1, 2]]), fa.depth[h // 2, w // 2], fa.K)
    np.testing.assert_allclose(centre, [0, 0, 0.7], atol=1e-6)
    assert fa.mask[h // 2, w // 2] == 1 and fa.mask[0, 0] == 0 and fa.depth[0, 0] == pytest.approx(0.8)


def test_fake_hand_tracking_and_arm_home():
    hand = FakeHand(FakeHandConfig(tracking=0.5))
    with hand:
        hand.send(np.full(16, 0.4))
        assert hand.read().joints[1] == pytest.approx(0.2)
        assert hand.read().joints[1] == pytest.approx(0.3)
    arm = FakeArm()
    with arm:
        arm.send(Pose.from_euler_xyz([0.38, 0.0, 0.35], [np.pi, 0, 0]))
        arm.home()
        np.testing.assert_allclose(arm.get_state().pose.position, [0.35, 0.0, 0.35])
