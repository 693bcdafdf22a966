"""Open-vocabulary object boxes queried with the narration's noun (the paper crops v1 with Detic).

Backends (see :data:`pipelines.models.base.OBJECT_BOX_BACKENDS`):

- ``owlv2``: ``Owlv2ForObjectDetection`` + ``Owlv2Processor`` (``transformers``); default weights
  ``google/owlv2-base-patch16-ensemble`` from the local HF cache, or a ``save_pretrained`` directory.
  OWLv2 pads images to a square at the bottom/right, so boxes are scaled to the padded square and
  clipped to the image.
- ``grounding-dino``: ``AutoModelForZeroShotObjectDetection`` + ``AutoProcessor``; default
  ``IDEA-Research/grounding-dino-tiny``. Queries are joined as ``"a cup. a knife."`` (lower case, each
  phrase ending in a period). ``post_process_grounded_object_detection`` took ``box_threshold`` before
  transformers 4.51 and ``threshold`` after; the keyword is chosen from the installed signature.
- ``detic``: a Detic (detectron2) predictor whose classifier is reset to the query's CLIP embeddings,
  as Detic's demo does for ``--vocabulary custom``; see :class:`DeticBoxes`.

All return, per image, :class:`~pipelines.models.base.BoxDetection` lists sorted by score, boxes in
pixels of the input image (x1, y1, x2, y2; x right, y down). :func:`pick_object_box` chooses the crop's
box among them given the box the contact stage predicted.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from pipelines.models.base import (DETECTRON2_INSTALL, BoxDetection, as_rgb, pick_device, require,
                                   resolve_pretrained_dir)


def _check_batch(images, queries) -> list[np.ndarray]:
    imgs = [as_rgb(im, f"image {i}") for i, im in enumerate(images)]
    if len(imgs) != len(queries):
        raise ValueError(f"{len(imgs)} images but {len(queries)} query lists")
    for i, q in enumerate(queries):
        if isinstance(q, str) or not q or not all(isinstance(s, str) and s.strip() for s in q):
            raise ValueError(f"queries[{i}] must be a non-empty list of non-empty phrases, got {q!r}")
    return imgs


def _clip_box(box, w: int, h: int) -> np.ndarray:
    b = np.asarray(box, np.float64)
    return np.clip(b, 0, [w, h, w, h])


class Owlv2Boxes:
    """OWLv2 text-queried boxes. ``template`` wraps each query (OWL-ViT's ``"a photo of a {}"``)."""

    name = "owlv2"
    default_weights = "google/owlv2-base-patch16-ensemble"  #: a hub id, looked up in the local cache only

    def __init__(self, weights: str | Path | None = None, device: str = "auto", threshold: float = 0.1,
                 template: str = "a photo of a {}", max_detections: int = 20):
        transformers = require("transformers")
        self.torch = require("torch")
        path = resolve_pretrained_dir(weights, self.name, self.default_weights)
        self.device = pick_device(device)
        self.model = transformers.Owlv2ForObjectDetection.from_pretrained(path, local_files_only=True).to(self.device).eval()
        self.processor = transformers.Owlv2Processor.from_pretrained(path, local_files_only=True)
        self.threshold, self.template, self.max_detections, self.weights = threshold, template, max_detections, path

    def detect(self, images: Sequence[np.ndarray], queries: Sequence[Sequence[str]]) -> list[list[BoxDetection]]:
        imgs = _check_batch(images, queries)
        if not imgs:
            return []
        text = [[self.template.format(q.strip()) for q in qs] for qs in queries]
        inputs = self.processor(text=text, images=imgs, return_tensors="pt").to(self.device)
        with self.torch.inference_mode():
            out = self.model(**inputs)
        sizes = [(max(im.shape[:2]),) * 2 for im in imgs]  # boxes are relative to the padded square
        res = self.processor.post_process_grounded_object_detection(out, threshold=self.threshold, target_sizes=sizes)
        result = []
        for im, qs, r in zip(imgs, queries, res):
            h, w = im.shape[:2]
            dets = [BoxDetection(_clip_box(b, w, h), float(s), qs[int(lab)])
                    for b, s, lab in zip(r["boxes"].cpu().numpy(), r["scores"].cpu().numpy(), r["labels"].cpu().numpy())
                    if int(lab) < len(qs)]  # labels past len(qs) are the processor's padding queries
            dets = [d for d in dets if d.box[2] > d.box[0] and d.box[3] > d.box[1]]
            result.append(sorted(dets, key=lambda d: -d.score)[: self.max_detections])
        return result


class GroundingDinoBoxes:
    """Grounding DINO text-grounded boxes; ``box_threshold`` on box scores, ``text_threshold`` on tokens."""

    name = "grounding-dino"
    default_weights = "IDEA-Research/grounding-dino-tiny"  #: a hub id, looked up in the local cache only

    def __init__(self, weights: str | Path | None = None, device: str = "auto", box_threshold: float = 0.3,
                 text_threshold: float = 0.25, max_detections: int = 20):
        transformers = require("transformers")
        self.torch = require("torch")
        path = resolve_pretrained_dir(weights, self.name, self.default_weights)
        self.device = pick_device(device)
        self.model = transformers.AutoModelForZeroShotObjectDetection.from_pretrained(path, local_files_only=True).to(self.device).eval()
        self.processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
        params = inspect.signature(self.processor.post_process_grounded_object_detection).parameters
        self._threshold_kw = "box_threshold" if "box_threshold" in params else "threshold"
        self.box_threshold, self.text_threshold, self.max_detections, self.weights = box_threshold, text_threshold, max_detections, path

    @staticmethod
    def prompt(queries: Sequence[str]) -> str:
        """``["Cup", "knife."]`` → ``"cup. knife."`` (the format Grounding DINO was trained on)."""
        return " ".join(q.strip().lower().rstrip(".") + "." for q in queries)

    @staticmethod
    def _label_to_query(label, queries: Sequence[str]) -> str:
        text = str(label).lower()
        hits = [q for q in queries if q.strip().lower().rstrip(".") in text]
        return max(hits, key=len) if hits else text.strip()

    def detect(self, images: Sequence[np.ndarray], queries: Sequence[Sequence[str]]) -> list[list[BoxDetection]]:
        imgs = _check_batch(images, queries)
        if not imgs:
            return []
        inputs = self.processor(images=imgs, text=[self.prompt(q) for q in queries], padding=True, return_tensors="pt").to(self.device)
        with self.torch.inference_mode():
            out = self.model(**inputs)
        kwargs = {self._threshold_kw: self.box_threshold, "text_threshold": self.text_threshold,
                  "target_sizes": [im.shape[:2] for im in imgs]}
        res = self.processor.post_process_grounded_object_detection(out, inputs["input_ids"], **kwargs)
        result = []
        for im, qs, r in zip(imgs, queries, res):
            h, w = im.shape[:2]
            labels = r.get("text_labels") or r.get("labels") or [""] * len(r["scores"])
            dets = [BoxDetection(_clip_box(b, w, h), float(s), self._label_to_query(lab, qs))
                    for b, s, lab in zip(r["boxes"].cpu().numpy(), r["scores"].cpu().numpy(), labels)]
            dets = [d for d in dets if d.box[2] > d.box[0] and d.box[3] > d.box[1]]
            result.append(sorted(dets, key=lambda d: -d.score)[: self.max_detections])
        return result


class DeticPredictor:
    """Detic (detectron2) predictor with a swappable vocabulary, following Detic's ``demo.py`` /
    ``detic/predictor.py``: ``get_cfg`` + ``add_centernet_config`` + ``add_detic_config``, the config file,
    ``MODEL.WEIGHTS``, ``ZEROSHOT_WEIGHT_PATH='rand'``, then ``reset_cls_test`` with CLIP text embeddings
    of ``"a " + noun`` (Detic's CLIP text encoder; its weights must already be cached).

    ``detic_root`` is a clone of ``facebookresearch/Detic`` (with ``third_party/CenterNet2``);
    ``weights`` e.g. ``Detic_LCOCOI21k_CLIP_SwinB_896b32_4x_ft4x_max-size.pth``.
    """

    def __init__(self, detic_root: str | Path, weights: str | Path, config_file: str | None = None,
                 device: str = "auto", threshold: float = 0.3):
        root, w = Path(detic_root), Path(weights)
        if not (root / "detic").is_dir():
            raise FileNotFoundError(f"detic: Detic checkout not found at {root} (git clone --recursive https://github.com/facebookresearch/Detic)")
        if not w.is_file():
            raise FileNotFoundError(f"detic: weight file not found: {w}")
        cfg_path = Path(config_file) if config_file else root / "configs" / "Detic_LCOCOI21k_CLIP_SwinB_896b32_4x_ft4x_max-size.yaml"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"detic: config file not found: {cfg_path}")
        for p in (root / "third_party" / "CenterNet2", root):
            if str(p) not in sys.path:
                sys.path.insert(0, str(p))
        config = require("detectron2.config", DETECTRON2_INSTALL)
        engine = require("detectron2.engine", DETECTRON2_INSTALL)
        from centernet.config import add_centernet_config  # from Detic's third_party/CenterNet2
        from detic.config import add_detic_config
        from detic.modeling.text.text_encoder import build_text_encoder
        from detic.modeling.utils import reset_cls_test

        cfg = config.get_cfg()
        add_centernet_config(cfg)
        add_detic_config(cfg)
        cfg.merge_from_file(str(cfg_path.resolve()))
        cfg.MODEL.WEIGHTS = str(w)
        cfg.MODEL.RETINANET.SCORE_THRESH_TEST = threshold
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = threshold
        cfg.MODEL.ROI_BOX_HEAD.ZEROSHOT_WEIGHT_PATH = "rand"
        cfg.MODEL.ROI_HEADS.ONE_CLASS_PER_PROPOSAL = True
        cfg.MODEL.DEVICE = pick_device(device)
        # Detic's configs name files relative to its checkout (e.g. ROI_BOX_HEAD.CAT_FREQ_PATH
        # 'datasets/metadata/lvis_v1_train_cat_info.json', read while the box head is built), as its demo.py
        # runs from there: make them absolute, and build inside the checkout for anything else relative
        freq = getattr(cfg.MODEL.ROI_BOX_HEAD, "CAT_FREQ_PATH", None)
        if isinstance(freq, str) and freq and not Path(freq).is_absolute():
            cfg.MODEL.ROI_BOX_HEAD.CAT_FREQ_PATH = str(root.resolve() / freq)
        cfg.freeze()
        with contextlib.chdir(root):
            self.predictor = engine.DefaultPredictor(cfg)
            self._text_encoder = build_text_encoder(pretrain=True).eval()
        self._reset = reset_cls_test
        self._vocabulary: tuple[str, ...] | None = None

    def set_vocabulary(self, names: Sequence[str]) -> None:
        names = tuple(names)
        if names == self._vocabulary:
            return
        emb = self._text_encoder(["a " + n for n in names]).detach().permute(1, 0).contiguous().cpu()
        self._reset(self.predictor.model, emb, len(names))
        self._vocabulary = names

    def __call__(self, bgr: np.ndarray) -> dict:
        return self.predictor(bgr)


def instances_to_numpy(instances) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """detectron2 ``Instances`` → (boxes (N, 4) px, scores (N,), classes (N,) int)."""
    inst = instances.to("cpu") if hasattr(instances, "to") else instances
    boxes = inst.pred_boxes.tensor.detach().numpy().astype(np.float64).reshape(-1, 4)
    scores = inst.scores.detach().numpy().astype(np.float64).reshape(-1)
    classes = inst.pred_classes.detach().numpy().astype(np.int64).reshape(-1)
    if not (len(boxes) == len(scores) == len(classes)):
        raise ValueError(f"Instances fields disagree: {len(boxes)} boxes, {len(scores)} scores, {len(classes)} classes")
    return boxes, scores, classes


class DeticBoxes:
    """Detic boxes for the query nouns. ``predictor``: anything with ``set_vocabulary(names)`` and
    ``__call__(bgr) -> {"instances": Instances}`` (default: :class:`DeticPredictor` built from
    ``detic_root`` / ``weights`` / ``config_file``)."""

    name = "detic"

    def __init__(self, weights: str | Path | None = None, detic_root: str | Path | None = None, config_file: str | None = None,
                 device: str = "auto", threshold: float = 0.3, max_detections: int = 20, predictor=None):
        if predictor is None:
            if not weights or not detic_root:
                raise ValueError("detic needs weights=<.pth file> and detic_root=<Detic checkout>")
            predictor = DeticPredictor(detic_root, weights, config_file, device, threshold)
        self.predictor, self.threshold, self.max_detections = predictor, threshold, max_detections

    def detect(self, images: Sequence[np.ndarray], queries: Sequence[Sequence[str]]) -> list[list[BoxDetection]]:
        imgs = _check_batch(images, queries)
        result = []
        for im, qs in zip(imgs, queries):
            self.predictor.set_vocabulary(list(qs))
            boxes, scores, classes = instances_to_numpy(self.predictor(np.ascontiguousarray(im[:, :, ::-1]))["instances"])
            h, w = im.shape[:2]
            dets = [BoxDetection(_clip_box(b, w, h), s, qs[c]) for b, s, c in zip(boxes, scores, classes)
                    if s >= self.threshold and 0 <= c < len(qs)]
            result.append(sorted(dets, key=lambda d: -d.score)[: self.max_detections])
        return result


def box_iou(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def pick_object_box(detections: Sequence[BoxDetection], prior_box=None, min_iou: float = 0.1) -> BoxDetection | None:
    """The crop's box: with a ``prior_box`` (the contact stage's object box mapped to v1), the detection
    maximising ``score * IoU`` among those with IoU ≥ ``min_iou`` (the noun may name several objects in
    view; the touched one is the one near the prior); without a prior, the best-scoring detection.
    None when nothing qualifies (the caller keeps the prior)."""
    if not detections:
        return None
    if prior_box is None:
        return max(detections, key=lambda d: d.score)
    scored = [(d.score * box_iou(d.box, prior_box), d) for d in detections if box_iou(d.box, prior_box) >= min_iou]
    return max(scored, key=lambda t: t[0])[1] if scored else None


def refine_object_box(contact: dict, prior_box, min_iou: float = 0.1) -> np.ndarray:
    """The v1 object box for the crop: among the open-vocabulary boxes an :class:`ObjectBoxActor` stored
    in a record's ``contact["v1_object_boxes"]`` (pixels of v1), the one :func:`pick_object_box` chooses
    against ``prior_box`` (the contact stage's object box mapped to v1); ``prior_box`` itself when there
    are none or none overlaps it. The hook for :class:`pipelines.stages.process.ClipProcessor`."""
    prior = np.asarray(prior_box, np.float64)
    entry = (contact or {}).get("v1_object_boxes") or {}
    dets = [BoxDetection(b[:4], b[4], entry.get("query", "")) for b in entry.get("boxes", []) if len(b) == 5]
    best = pick_object_box(dets, prior, min_iou)
    return prior if best is None else best.box
