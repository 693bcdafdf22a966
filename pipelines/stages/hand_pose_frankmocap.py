"""``frankmocap`` hand-pose backend: an adapter for a local FrankMocap checkout and its weights.

Needs (nothing is downloaded): a FrankMocap checkout (``checkout``, put on ``sys.path`` to import
``handmocap.hand_mocap_api.HandMocap``), its hand regressor weights
(``extra_data/hand_module/pretrained_weights/pose_shape_best.pth``), the hand module's data
(``extra_data/hand_module/mean_mano_params.pkl``, ``SMPLX_HAND_INFO.pkl``: FrankMocap's own download
script) and the SMPL-X folder (``extra_data/smpl/SMPLX_NEUTRAL.pkl``, which needs registration on the
SMPL-X site; FrankMocap loads the ``.pkl``). FrankMocap is imported only when this backend is built.

What FrankMocap itself requires (facebookresearch/frankmocap, ``handmocap/hand_mocap_api.py`` and
``hand_modules/h3dw_model.py``): a **CUDA** device (``HandMocap`` builds ``H3DWModel`` with
``use_cuda=True`` whatever ``device`` says), and the checkout as working directory while it is built
(``model_root = "./extra_data"``) — the adapter changes into it for the construction only. Its
``regress`` returns the list of per-box predictions (older versions: a ``(boxes, predictions)`` tuple;
both are read).

Conversions to the project's convention (:mod:`pipelines.stages.hand_pose`):

- ``pred_hand_pose`` (1×48) = wrist orientation (3) + 45 finger values **relative to the SMPL-X hand
  mean** (smplx's default ``flat_hand_mean=False``). The flat-hand-mean pose is ``fingers + mean``,
  where ``mean`` is the SMPL-X model's right-hand mean ``hands_meanr`` (45). It is read from the
  user's SMPL-X model file (or ``hand_mean=`` a ``.npy`` of 45 values / an ``.npz`` with ``hands_meanr``
  or ``hands_mean``); it cannot ship with this project (SMPL-X license), so without it the backend
  refuses to run rather than write unconverted values.
- the wrist orientation is FrankMocap's global hand rotation in its image-aligned weak-perspective
  frame (x right, y down; inferred from ``mocap_utils/coordconv.py``, no axis flip), taken as the
  OpenCV camera frame (exact for rotation about the optical axis, approximate off-centre);
- left hands: FrankMocap flips the crop, runs the right-hand model and un-mirrors the output
  (negating y and z of every axis-angle triple). We mirror back so every row is a right hand (a
  left-hand grasp becomes the right-hand grasp of the mirrored image).
"""

from __future__ import annotations

import contextlib
import pickle
import sys
from pathlib import Path

import cv2
import numpy as np

from pipelines.stages.hand_pose import HandPose, HandPoseError, mirror_axis_angle


def load_hand_mean(path: str | Path) -> np.ndarray:
    """The 45-d right-hand mean pose from ``.npy`` / ``.npz`` / SMPL-X or MANO ``.pkl``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MANO/SMPL-X hand-mean file not found: {path}")
    if path.suffix == ".npy":
        mean = np.load(path)
    elif path.suffix == ".npz":
        data = np.load(path, allow_pickle=False)
        key = next((k for k in ("hands_meanr", "hands_mean") if k in data.files), None)
        if key is None:
            raise HandPoseError(f"{path}: no 'hands_meanr' or 'hands_mean' array")
        mean = data[key]
    else:
        try:
            with path.open("rb") as f:
                data = pickle.load(f, encoding="latin1")
        except ModuleNotFoundError as exc:
            raise HandPoseError(f"{path}: unpickling needs {exc.name} (pip install chumpy), or convert it to .npz") from exc
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise HandPoseError(f"{path}: not a readable SMPL-X/MANO pickle ({type(exc).__name__}: {exc})") from exc
        if not isinstance(data, dict):
            raise HandPoseError(f"{path}: expected a SMPL-X/MANO model dict, got {type(data).__name__}")
        key = next((k for k in ("hands_meanr", "hands_mean") if k in data), None)
        if key is None:
            raise HandPoseError(f"{path}: no 'hands_meanr' or 'hands_mean' entry")
        mean = data[key]
    mean = np.asarray(mean, np.float64).reshape(-1)
    if mean.shape != (45,):
        raise HandPoseError(f"{path}: hand mean has {mean.size} values, expected 45")
    return mean


class FrankMocapHandPose:
    """``FrankMocapHandPose(checkout=..., checkpoint=..., smpl_dir=..., hand_mean=None, device="cuda")``."""

    name = "frankmocap"

    def __init__(self, checkout: str | Path, checkpoint: str | Path | None = None, smpl_dir: str | Path | None = None,
                 hand_mean: str | Path | None = None, device: str = "cuda"):
        checkout = Path(checkout).resolve()
        if not (checkout / "handmocap" / "hand_mocap_api.py").is_file():
            raise FileNotFoundError(f"no FrankMocap checkout at {checkout} (expected handmocap/hand_mocap_api.py); "
                                    "clone facebookresearch/frankmocap and install its hand module")
        checkpoint = Path(checkpoint or checkout / "extra_data" / "hand_module" / "pretrained_weights" / "pose_shape_best.pth")
        smpl_dir = Path(smpl_dir or checkout / "extra_data" / "smpl")
        if not checkpoint.is_file():
            raise FileNotFoundError(f"FrankMocap hand weights not found: {checkpoint}")
        if not (smpl_dir / "SMPLX_NEUTRAL.pkl").is_file():
            raise FileNotFoundError(f"FrankMocap loads the SMPL-X model as {smpl_dir / 'SMPLX_NEUTRAL.pkl'}, which is "
                                    "missing (an .npz alone is not enough): get it from the SMPL-X site")
        if hand_mean is None:
            hand_mean = next((p for p in (smpl_dir / "SMPLX_NEUTRAL.npz", smpl_dir / "SMPLX_NEUTRAL.pkl") if p.is_file()),
                             smpl_dir / "SMPLX_NEUTRAL.npz")
        self.hand_mean = load_hand_mean(hand_mean)
        if str(checkout) not in sys.path:
            sys.path.insert(0, str(checkout))
        with contextlib.chdir(checkout):  # FrankMocap reads ./extra_data/hand_module/... while building
            from handmocap.hand_mocap_api import HandMocap  # the user's FrankMocap

            try:
                self.model = HandMocap(str(checkpoint.resolve()), str(smpl_dir.resolve()), device=device)
            except (AssertionError, RuntimeError) as exc:
                if "cuda" in str(exc).lower() or "nvidia" in str(exc).lower():
                    raise HandPoseError(f"FrankMocap's hand regressor runs on CUDA only and could not start here "
                                        f"({type(exc).__name__}: {exc}); run this backend on a GPU worker "
                                        "(--num-gpus 1 on the extraction job)") from exc
                raise

    def convert(self, pred_hand_pose, side: str) -> HandPose:
        """FrankMocap ``pred_hand_pose`` (1×48, mean-relative, side's own convention) → right-hand flat-mean."""
        pose = np.asarray(pred_hand_pose, np.float64).reshape(-1)
        if pose.shape != (48,):
            raise HandPoseError(f"frankmocap: pred_hand_pose has {pose.size} values, expected 48")
        if side == "left":
            pose = mirror_axis_angle(pose)
        return HandPose(pose[:3], pose[3:] + self.hand_mean, self.name)

    def estimate(self, record, frame_rgb: np.ndarray | None, contact) -> HandPose:
        if frame_rgb is None:
            raise HandPoseError("frankmocap needs the contact frame's pixels")
        x1, y1, x2, y2 = (float(v) for v in contact.hand_box)
        side = contact.side if contact.side in ("left", "right") else "right"
        boxes = [{"left_hand": None, "right_hand": None, f"{side}_hand": np.array([x1, y1, x2 - x1, y2 - y1], np.float32)}]
        outputs = self.model.regress(cv2.cvtColor(np.ascontiguousarray(frame_rgb), cv2.COLOR_RGB2BGR), boxes, add_margin=True)
        if isinstance(outputs, tuple):  # older FrankMocap: (processed boxes, predictions)
            outputs = outputs[-1]
        out = (outputs[0] or {}).get(f"{side}_hand") if outputs else None
        if not out or "pred_hand_pose" not in out:
            raise HandPoseError(f"frankmocap returned no {side}-hand prediction for box {[x1, y1, x2, y2]}")
        return self.convert(out["pred_hand_pose"], side)
