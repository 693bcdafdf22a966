"""The frankmocap adapter against a fake FrankMocap module producing its output format."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.stages.contact_frame import ContactResult
from pipelines.stages.hand_pose import HandPoseError, make_hand_pose_backend
from pipelines.stages.hand_pose_frankmocap import load_hand_mean

FAKE_API = '''
import os
import numpy as np
CALLS = []
BUILT_IN = []
FAIL = None      # an exception to raise while building (e.g. no CUDA)
TUPLE = False    # older FrankMocap: regress returns (processed boxes, predictions)
class HandMocap:
    def __init__(self, regressor_checkpoint, smpl_dir, device="cuda"):
        # the real one reads ./extra_data/hand_module/mean_mano_params.pkl relative to the working directory
        BUILT_IN.append(os.getcwd())
        if FAIL is not None:
            raise FAIL
        open(os.path.join("extra_data", "hand_module", "mean_mano_params.pkl"), "rb").close()
        self.checkpoint, self.smpl_dir = regressor_checkpoint, smpl_dir
    def regress(self, img_original, hand_bbox_list, add_margin=False):
        CALLS.append((img_original.shape, hand_bbox_list))
        pose = np.arange(48, dtype=np.float32).reshape(1, 48) / 100.0
        out = {}
        for side in ("left_hand", "right_hand"):
            out[side] = None if hand_bbox_list[0][side] is None else {
                "pred_hand_pose": pose, "pred_hand_betas": np.zeros((1, 10), np.float32),
                "pred_camera": np.array([5.0, 0.0, 0.0]), "pred_joints_img": np.zeros((21, 3))}
        return ([None], [out]) if TUPLE else [out]
'''


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "frankmocap"
    (root / "handmocap").mkdir(parents=True)
    (root / "handmocap" / "__init__.py").write_text("")
    (root / "handmocap" / "hand_mocap_api.py").write_text(FAKE_API)
    (root / "extra_data" / "hand_module" / "pretrained_weights").mkdir(parents=True)
    (root / "extra_data" / "hand_module" / "pretrained_weights" / "pose_shape_best.pth").write_bytes(b"weights")
    (root / "extra_data" / "hand_module" / "mean_mano_params.pkl").write_bytes(b"")
    (root / "extra_data" / "smpl").mkdir(parents=True)
    np.savez(root / "extra_data" / "smpl" / "SMPLX_NEUTRAL.npz", hands_meanr=np.full(45, 0.5), hands_meanl=np.zeros(45))
    (root / "extra_data" / "smpl" / "SMPLX_NEUTRAL.pkl").write_bytes(b"")   # FrankMocap loads the .pkl itself
    yield root
    for name in [m for m in sys.modules if m == "handmocap" or m.startswith("handmocap.")]:
        del sys.modules[name]
    if str(root) in sys.path:
        sys.path.remove(str(root))


def test_right_hand_adds_the_hand_mean(checkout):
    be = make_hand_pose_backend("frankmocap", checkout=str(checkout))
    frame = np.zeros((256, 456, 3), np.uint8)
    pose = be.estimate(None, frame, ContactResult(10, np.array([100, 50, 160, 120.0]), np.array([150, 60, 220, 140.0])))
    expected = np.arange(48) / 100.0
    assert np.allclose(pose.wrist_rotation, expected[:3], atol=1e-6)
    assert np.allclose(pose.hand_pose, expected[3:] + 0.5, atol=1e-6) and pose.source == "frankmocap"
    from handmocap.hand_mocap_api import CALLS
    (shape, boxes), = CALLS
    assert shape == (256, 456, 3) and np.allclose(boxes[0]["right_hand"], [100, 50, 60, 70]) and boxes[0]["left_hand"] is None


def test_left_hand_is_mirrored_to_a_right_hand(checkout):
    be = make_hand_pose_backend("frankmocap", checkout=str(checkout))
    pose = be.convert(np.arange(48) / 100.0, "left").hand_pose
    raw = (np.arange(48) / 100.0).reshape(16, 3)
    raw[:, 1:] *= -1
    assert np.allclose(pose, raw.reshape(-1)[3:] + 0.5)


def test_missing_pieces_are_named(tmp_path, checkout):
    with pytest.raises(FileNotFoundError, match="no FrankMocap checkout"):
        make_hand_pose_backend("frankmocap", checkout=str(tmp_path / "nowhere"))
    (checkout / "extra_data" / "smpl" / "SMPLX_NEUTRAL.npz").unlink()   # the hand mean then comes from the .pkl
    with pytest.raises(HandPoseError, match=r"SMPLX_NEUTRAL\.pkl: not a readable SMPL-X/MANO pickle"):
        make_hand_pose_backend("frankmocap", checkout=str(checkout))
    np.save(tmp_path / "m.npy", np.zeros(44))
    with pytest.raises(ValueError, match="expected 45"):
        load_hand_mean(tmp_path / "m.npy")


def test_frankmocap_is_built_from_its_checkout_and_either_regress_format_is_read(checkout, tmp_path, monkeypatch):
    """FrankMocap reads ./extra_data/... relative to the working directory: the adapter builds it from inside
    the checkout and comes back; older versions return (boxes, predictions) from regress."""
    monkeypatch.chdir(tmp_path)
    be = make_hand_pose_backend("frankmocap", checkout=str(checkout))
    import handmocap.hand_mocap_api as api

    assert api.BUILT_IN == [str(checkout.resolve())] and Path.cwd() == tmp_path
    api.TUPLE = True
    frame = np.zeros((256, 456, 3), np.uint8)
    pose = be.estimate(None, frame, ContactResult(10, np.array([100, 50, 160, 120.0]), np.array([150, 60, 220, 140.0])))
    assert np.allclose(pose.hand_pose, np.arange(3, 48) / 100.0 + 0.5, atol=1e-6)


def test_frankmocap_without_cuda_or_the_pkl_says_so(checkout):
    make_hand_pose_backend("frankmocap", checkout=str(checkout))
    import handmocap.hand_mocap_api as api   # the fake, now importable: make its next build fail

    (checkout / "extra_data" / "smpl" / "SMPLX_NEUTRAL.pkl").unlink()
    with pytest.raises(FileNotFoundError, match=r"SMPLX_NEUTRAL\.pkl, which is missing"):
        make_hand_pose_backend("frankmocap", checkout=str(checkout))
    (checkout / "extra_data" / "smpl" / "SMPLX_NEUTRAL.pkl").write_bytes(b"")
    api.FAIL = AssertionError("Torch not compiled with CUDA enabled")
    with pytest.raises(HandPoseError, match="runs on CUDA only.*--num-gpus 1"):
        make_hand_pose_backend("frankmocap", checkout=str(checkout))

