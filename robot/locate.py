"""Finding the grasped object's box in the real robot's initial image I₀ (paper §3.1: the affordance
model sees a crop around the object).

An :class:`ObjectLocator` maps an RGB image and a text prompt (e.g. ``"cup"``) to a :class:`Detection`
(pixel box ``(x1, y1, x2, y2)``, x right / y down, x2/y2 exclusive) or None. Backends (imported lazily,
``pip install 'deft[models]'``; weights are local directories or hub ids already in the Hugging Face
cache — nothing is downloaded):

- ``text`` (:class:`TextBoxLocator`): open-vocabulary detection with OWL-ViT / OWLv2
  (``transformers``' zero-shot object detection) from the prompt; optionally refined with
  Segment-Anything (:class:`deft_core.segment.SamSegmenter`, box prompt → mask → tight box).
- ``point`` (:class:`PointLocator`): Segment-Anything from a point prompt at a fixed pixel (where the
  operator places the object); the text prompt is ignored.

When a locator finds nothing the real-robot environment (:mod:`robot.real_env`) falls back to the
operator (a box typed by the person at the robot, through a callback the CLI supplies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

#: locator backend name → "module:Class" (imported on use)
LOCATORS: dict[str, str] = {"text": "robot.locate:TextBoxLocator", "point": "robot.locate:PointLocator"}


@dataclass
class Detection:
    """An object box in image pixels ``(x1, y1, x2, y2)`` (float, x2/y2 exclusive), the backend's
    ``score`` in [0, 1] and which backend produced it (``source``)."""

    box: np.ndarray
    score: float
    source: str


class ObjectLocator(Protocol):
    def locate(self, image: np.ndarray, prompt: str) -> Detection | None:
        """The best box of ``prompt`` in ``image`` (RGB uint8 H × W × 3), or None if nothing was found."""
        ...


def check_box(box, width: int, height: int, min_side_px: float = 4.0) -> np.ndarray:
    """``box`` as a float (4,) array clipped to the image; raises ValueError (naming the box) when it is
    not 4 finite numbers, is inverted, or is smaller than ``min_side_px`` after clipping."""
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"object box must be 4 numbers x1 y1 x2 y2 (pixels), got {box!r}") from None
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise ValueError(f"object box must be 4 finite numbers x1 y1 x2 y2 (pixels), got {box!r}")
    b = np.clip(b, 0.0, [width, height, width, height])
    if b[2] - b[0] < min_side_px or b[3] - b[1] < min_side_px:
        raise ValueError(f"object box {np.asarray(box).tolist()} is empty or under {min_side_px:g} px inside the "
                         f"{width}x{height} image (need x2 > x1, y2 > y1)")
    return b


class TextBoxLocator:
    """OWL-ViT / OWLv2 text-prompted detection (+ optional SAM refinement).

    ``weights``: detector directory (``save_pretrained`` layout) or a cached hub id (default
    ``google/owlv2-base-patch16-ensemble``); ``sam_weights``: refine the detected box with SAM (None: no
    refinement); ``threshold``: minimum detection score; ``device``: ``auto``/``cpu``/``cuda``.
    """

    name = "text"

    def __init__(self, weights: str | None = None, sam_weights: str | None = None, threshold: float = 0.1,
                 device: str = "auto"):
        from deft_core.segment import pick_device, require, resolve_pretrained_dir

        path = resolve_pretrained_dir(weights, "owl-vit detector", "google/owlv2-base-patch16-ensemble")
        transformers = require("transformers")
        self.torch = require("torch")
        self.device = pick_device(device)
        self.model = transformers.AutoModelForZeroShotObjectDetection.from_pretrained(
            path, local_files_only=True).to(self.device).eval()
        self.processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
        self.square_pad = "owlv2" in str(getattr(self.model.config, "model_type", ""))
        self.threshold = float(threshold)
        self.sam = None
        if sam_weights:
            from deft_core.segment import SamSegmenter

            self.sam = SamSegmenter(sam_weights, device=device)

    def locate(self, image: np.ndarray, prompt: str) -> Detection | None:
        torch = self.torch
        h, w = image.shape[:2]
        inputs = self.processor(text=[[prompt]], images=[image], return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            out = self.model(**inputs)
        side = max(h, w) if self.square_pad else None  # OWLv2 pads the image to a square at the bottom/right
        sizes = torch.tensor([[side, side] if side else [h, w]])
        post = (getattr(self.processor, "post_process_grounded_object_detection", None)
                or self.processor.post_process_object_detection)
        res = post(outputs=out, threshold=self.threshold, target_sizes=sizes)[0]
        box = score = None
        for k in torch.argsort(res["scores"], descending=True).tolist():  # best first; skip degenerate boxes
            try:
                box, score = check_box(res["boxes"][k].detach().cpu().numpy(), w, h), float(res["scores"][k])
                break
            except ValueError:
                continue
        if box is None:
            return None
        if self.sam is not None:
            refined = self.sam.segment_boxes(image, [box])[0].box()
            if refined is not None:
                return Detection(refined, score, "text+sam")
        return Detection(box, score, "text")


class PointLocator:
    """Segment-Anything from a point prompt at ``point`` (x, y pixels; default: the image centre).
    ``sam_weights``: SAM directory or cached hub id (default ``facebook/sam-vit-base``)."""

    name = "point"

    def __init__(self, sam_weights: str | None = None, point: Sequence[float] | None = None, device: str = "auto"):
        from deft_core.segment import SamSegmenter

        self.sam = SamSegmenter(sam_weights, device=device)
        self.point = None if point is None else np.asarray(point, dtype=np.float64).reshape(2)

    def locate(self, image: np.ndarray, prompt: str) -> Detection | None:
        h, w = image.shape[:2]
        pt = self.point if self.point is not None else np.array([w / 2.0, h / 2.0])
        result = self.sam.segment_points(image, [pt])
        box = result.box()
        return None if box is None else Detection(box, result.score, "point")


def make_locator(name: str, **options) -> ObjectLocator:
    """Instantiate the locator backend ``name`` (see :data:`LOCATORS`)."""
    from deft_core.registry import load_class

    return load_class(LOCATORS, name, "object locator")(**options)


__all__ = ["Detection", "ObjectLocator", "TextBoxLocator", "PointLocator", "LOCATORS", "make_locator", "check_box"]
