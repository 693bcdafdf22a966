"""Promptable segmentation (Segment-Anything through ``transformers``): box or point prompts → masks.

The paper crops the test-time object with Segment-Anything (§3.1). This module is the pure wrapper,
importable from the robot process: it needs only ``numpy`` and, when a model is loaded, ``torch`` +
``transformers`` (imported lazily; ``pip install 'deft[models]'``). It never imports ``ray`` or
``pipelines``; the extraction jobs reach it through :mod:`pipelines.models.segment`.

Image convention: RGB uint8 ``(H, W, 3)``; pixels x right, y down. Box prompts are ``(x1, y1, x2, y2)``
in pixels of that image; point prompts ``(x, y)`` pixels with label 1 (foreground) or 0 (background).
Masks are boolean ``(H, W)`` in the same image.

Weights are a directory in the ``save_pretrained`` layout (``config.json``, ``model.safetensors``,
``processor_config.json`` / ``preprocessor_config.json``) or a hub id already in the user's Hugging Face
cache (e.g. ``facebook/sam-vit-base``); nothing is downloaded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

MODELS_INSTALL = "pip install 'deft[models]'  (transformers>=4.45, torch)"


class WeightsNotFound(FileNotFoundError):
    """A model backend's weights are not on this machine (the message names the directory / hub id)."""


def require(module: str, install: str = MODELS_INSTALL):
    """Import ``module`` or fail with an ImportError naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is needed for this model backend: {install} ({exc})") from exc


def pick_device(device: str = "auto") -> str:
    """``"auto"`` → ``"cuda"`` when a GPU is visible, else ``"cpu"``; other values pass through."""
    if device != "auto":
        return device
    torch = require("torch")
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_pretrained_dir(weights: str | Path | None, backend: str, default_hub_id: str | None = None) -> str:
    """A ``save_pretrained`` directory for ``backend``: ``weights`` if it is a directory with a
    ``config.json``; else ``weights`` (or ``default_hub_id``) looked up as a hub id in the local Hugging
    Face cache only. Raises :class:`WeightsNotFound` naming what was looked for."""
    target = str(weights) if weights else default_hub_id
    if not target:
        raise WeightsNotFound(f"{backend}: no weights given (pass weights=<directory saved with save_pretrained>)")
    p = Path(target).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise WeightsNotFound(f"{backend}: weight directory {p} has no config.json (expected a save_pretrained layout)")
        return str(p)
    looks_like_path = target.startswith(("/", ".", "~")) or target.count("/") != 1
    if looks_like_path:
        raise WeightsNotFound(f"{backend}: weight directory not found: {p}")
    hub = require("huggingface_hub")
    try:
        return hub.snapshot_download(target, local_files_only=True)
    except Exception as exc:
        raise WeightsNotFound(
            f"{backend}: weights not found: {target} is neither a directory nor in the local Hugging Face cache "
            f"(download it once with `huggingface-cli download {target}` on a machine with network, or pass a "
            f"directory) [{type(exc).__name__}]") from None


def _as_rgb(image) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {img.dtype} {img.shape}")
    return img


@dataclass
class MaskResult:
    """Best mask for one prompt: ``mask`` (H, W) bool in image pixels, ``score`` the model's IoU estimate."""

    mask: np.ndarray
    score: float

    def box(self) -> np.ndarray | None:
        """Tight (x1, y1, x2, y2) pixel box of the mask (x2/y2 exclusive), or None for an empty mask."""
        ys, xs = np.nonzero(self.mask)
        if xs.size == 0:
            return None
        return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


class SamSegmenter:
    """Segment-Anything (``SamModel`` + ``SamProcessor``) loaded once; box or point prompts → masks.

    ``weights``: a save_pretrained directory or a cached hub id (default ``facebook/sam-vit-base``).
    ``multimask``: ask SAM for its 3 candidate masks and keep the one with the highest predicted IoU.
    """

    name = "sam"

    def __init__(self, weights: str | Path | None = None, device: str = "auto", multimask: bool = True,
                 mask_threshold: float = 0.0):
        transformers = require("transformers")
        self.torch = require("torch")
        path = resolve_pretrained_dir(weights, self.name, "facebook/sam-vit-base")
        self.device = pick_device(device)
        self.model = transformers.SamModel.from_pretrained(path, local_files_only=True).to(self.device).eval()
        self.processor = transformers.SamProcessor.from_pretrained(path, local_files_only=True)
        self.multimask, self.mask_threshold, self.weights = multimask, mask_threshold, path

    def _run(self, image: np.ndarray, **prompts) -> list[MaskResult]:
        torch = self.torch
        inputs = self.processor(images=[image], return_tensors="pt", **prompts)
        original, reshaped = inputs.pop("original_sizes"), inputs.pop("reshaped_input_sizes")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            out = self.model(**inputs, multimask_output=self.multimask)
        masks = self.processor.image_processor.post_process_masks(
            out.pred_masks.cpu(), original, reshaped, mask_threshold=self.mask_threshold, binarize=True)[0]
        iou = out.iou_scores.float().cpu()[0]  # (prompts, candidates)
        results = []
        for p in range(masks.shape[0]):
            k = int(torch.argmax(iou[p]))
            results.append(MaskResult(masks[p, k].numpy().astype(bool), float(iou[p, k])))
        return results

    def segment_boxes(self, image, boxes: Sequence[Sequence[float]]) -> list[MaskResult]:
        """One mask per box prompt ``(x1, y1, x2, y2)`` (pixels of ``image``)."""
        img = _as_rgb(image)
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if b.shape[0] == 0:
            return []
        if np.any(b[:, 2] <= b[:, 0]) or np.any(b[:, 3] <= b[:, 1]):
            raise ValueError(f"box prompts must have x2 > x1 and y2 > y1, got {b.tolist()}")
        return self._run(img, input_boxes=[b.tolist()])

    def segment_points(self, image, points: Sequence[Sequence[float]], labels: Sequence[int] | None = None) -> MaskResult:
        """One mask from a set of point prompts ``(x, y)`` pixels; ``labels`` 1 = object, 0 = background."""
        img = _as_rgb(image)
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if pts.shape[0] == 0:
            raise ValueError("segment_points needs at least one point")
        lab = [1] * len(pts) if labels is None else [int(v) for v in labels]
        if len(lab) != len(pts) or any(v not in (0, 1) for v in lab):
            raise ValueError(f"labels must be 0/1, one per point; got {lab} for {len(pts)} points")
        return self._run(img, input_points=[[pts.tolist()]], input_labels=[[lab]])[0]


#: segmentation backend name → "module:Class" (imported on use)
SEGMENT_BACKENDS: dict[str, str] = {"sam": "deft_core.segment:SamSegmenter"}


def make_segmenter(name: str = "sam", **options):
    """Instantiate the segmentation backend ``name`` (see :data:`SEGMENT_BACKENDS`)."""
    from deft_core.registry import load_class

    return load_class(SEGMENT_BACKENDS, name, "segmentation backend")(**options)
