"""Hand-object contact detection on raw video frames → the 100DOH / EPIC-100 detection structure.

Backends (see :data:`pipelines.models.base.HAND_OBJECT_BACKENDS`), both detectron2 models (detectron2
is not on PyPI: ``pip install 'git+https://github.com/facebookresearch/detectron2.git'``):

- ``hands23`` — the Hands23 detector (Cheng, Shan et al., NeurIPS 2023; a clone of
  ``ddshan/hands23_detector`` with ``model_hands23.pth``). Its ``Instances`` carry ``pred_boxes``,
  ``scores``, ``pred_classes`` (0 = hand, else object) and ``pred_dz`` whose columns (as its
  ``demo.py`` reads them) are: 4 linked object index (-1 none), 5 hand side (1 right), 6 grasp type,
  7 touch type, 8 contact state (0 no contact, 1 other person, 2 self, 3 object, 4 object-object).
- ``detic`` — Detic with the vocabulary ``["right hand", "left hand", *objects]``; Detic predicts no
  contact, so a hand is in PORTABLE_OBJECT contact when an object box covers at least
  ``min_overlap`` of the hand box (a geometric heuristic, weaker than a trained contact head).

Output per image: one :class:`pipelines.formats.epic_hoa.Detections` message, boxes normalised to
[0, 1] of that image (``left = x1 / W`` …), each hand's ``object_offset`` = (object centre − hand
centre) / (W, H) clipped to [-1, 1], exactly as the EPIC-100 release stores them; so the existing
EPIC contact rule (:class:`pipelines.stages.contact_frame.EpicDetectionsContact`) runs on them.

Hands23 → EPIC contact state: object contact → PORTABLE_OBJECT, except when the touched object is
``neither`` tool nor container and only ``touched`` (a counter, a wall) → STATIONARY_OBJECT; self →
SELF_CONTACT; other person → ANOTHER_PERSON; none → NO_CONTACT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from pipelines.formats.epic_hoa import Detections, FloatVector, HandSide, HandState, normalise_box
from pipelines.models.base import DETECTRON2_INSTALL, as_rgb, pick_device, require
from pipelines.models.open_vocab import DeticPredictor, instances_to_numpy

#: Hands23 grasp and touch names, in its class order (``demo.py`` ``parse_grasp`` / ``parse_touch``)
HANDS23_GRASPS = ("NP-Palm", "NP-Fin", "Pow-Pris", "Pre-Pris", "Pow-Circ", "Pre-Circ", "Later", "Other")
HANDS23_TOUCH = ("tool_,_touched", "tool_,_held", "tool_,_used", "container_,_touched", "container_,_held",
                 "neither_,_touched", "neither_,_held")
_HANDS23_CONTACT = {0: HandState.NO_CONTACT, 1: HandState.ANOTHER_PERSON, 2: HandState.SELF_CONTACT}
_STATIONARY_TOUCH = 5  # "neither_,_touched"


def _offset(hand_px, obj_px, w: float, h: float) -> FloatVector:
    hc = np.array([(hand_px[0] + hand_px[2]) / 2, (hand_px[1] + hand_px[3]) / 2])
    oc = np.array([(obj_px[0] + obj_px[2]) / 2, (obj_px[1] + obj_px[3]) / 2])
    d = np.clip((oc - hc) / np.array([w, h]), -1.0, 1.0)
    return FloatVector(x=float(d[0]), y=float(d[1]))


def hands23_to_detections(instances, width: int, height: int, frame_number: int = 0, video_id: str = "",
                          hand_threshold: float = 0.7, object_threshold: float = 0.5) -> Detections:
    """One image's Hands23 ``Instances`` → EPIC :class:`Detections` (normalised to ``width`` x ``height``).

    Hands below ``hand_threshold`` and objects below ``object_threshold`` are dropped (Hands23's demo
    defaults 0.7 / 0.5). A hand whose linked object is dropped keeps its contact state but gets a zero
    offset. Second objects (tool-object contacts) are listed as ordinary objects."""
    boxes, scores, classes = instances_to_numpy(instances)
    inst = instances.to("cpu") if hasattr(instances, "to") else instances
    dz = inst.pred_dz.detach().numpy().astype(np.float64)
    if dz.ndim != 2 or dz.shape[0] != len(boxes) or dz.shape[1] < 9:
        raise ValueError(f"hands23: pred_dz has shape {dz.shape}, expected ({len(boxes)}, >=9) (columns 4-8: link, side, grasp, touch, contact)")
    det = Detections(video_id=video_id, frame_number=int(frame_number))
    for i in range(len(boxes)):
        if classes[i] != 0 and scores[i] >= object_threshold:
            det.objects.add(bbox=normalise_box(*boxes[i], width, height), score=float(scores[i]))
    for i in range(len(boxes)):
        if classes[i] != 0 or scores[i] < hand_threshold:
            continue
        link, contact = int(dz[i, 4]), int(round(dz[i, 8]))
        linked = 0 <= link < len(boxes) and classes[link] != 0
        if contact == 3:
            touch = int(round(dz[link, 7])) if linked else -1
            state = HandState.STATIONARY_OBJECT if touch == _STATIONARY_TOUCH else HandState.PORTABLE_OBJECT
        else:
            state = _HANDS23_CONTACT.get(contact, HandState.NO_CONTACT)
        offset = _offset(boxes[i], boxes[link], width, height) if linked and scores[link] >= object_threshold else FloatVector(x=0.0, y=0.0)
        side = HandSide.RIGHT if dz[i, 5] >= 0.5 else HandSide.LEFT
        det.hands.add(bbox=normalise_box(*boxes[i], width, height), score=float(scores[i]), state=state,
                      object_offset=offset, side=side)
    return det


class Hands23Detector:
    """Hands23 on RGB frames. ``hands23_root``: a clone of the Hands23 detector repository (for its
    ``hodetector`` ROI heads and config); ``weights``: ``model_hands23.pth``. ``predictor``: any callable
    ``bgr -> {"instances": Instances}`` with Hands23's fields (tests pass a fake; default builds
    detectron2's ``DefaultPredictor`` the way Hands23's ``demo.py`` does)."""

    name = "hands23"

    def __init__(self, weights: str | Path | None = None, hands23_root: str | Path | None = None, config_file: str | None = None,
                 device: str = "auto", hand_threshold: float = 0.7, object_threshold: float = 0.5,
                 second_object_threshold: float = 0.3, hand_relation: float = 0.3, object_relation: float = 0.7, predictor=None):
        self.hand_threshold, self.object_threshold = hand_threshold, object_threshold
        if predictor is None:
            predictor = self._build(weights, hands23_root, config_file, device, second_object_threshold, hand_relation, object_relation)
        self.predictor = predictor

    def _build(self, weights, root, config_file, device, second_obj, hand_rela, obj_rela):
        if not weights or not root:
            raise ValueError("hands23 needs weights=<model_hands23.pth> and hands23_root=<hands23_detector checkout>")
        root, w = Path(root), Path(weights)
        if not (root / "hodetector").is_dir():
            raise FileNotFoundError(f"hands23: Hands23 detector checkout not found at {root} (no hodetector/ folder)")
        if not w.is_file():
            raise FileNotFoundError(f"hands23: weight file not found: {w}")
        cfg_path = Path(config_file) if config_file else root / "faster_rcnn_X_101_32x8d_FPN_3x_Hands23.yaml"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"hands23: config file not found: {cfg_path}")
        import sys

        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        config = require("detectron2.config", DETECTRON2_INSTALL)
        engine = require("detectron2.engine", DETECTRON2_INSTALL)
        require("hodetector.modeling.roi_heads", f"the Hands23 checkout at {root} (its hodetector package registers the ROI heads)")
        cfg = config.get_cfg()
        cfg.merge_from_file(str(cfg_path))
        cfg.MODEL.WEIGHTS = str(w)
        cfg.HAND, cfg.FIRSTOBJ, cfg.SECONDOBJ = self.hand_threshold, self.object_threshold, second_obj
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = min(self.hand_threshold, self.object_threshold, second_obj)
        cfg.HAND_RELA, cfg.OBJ_RELA = hand_rela, obj_rela
        cfg.MODEL.DEVICE = pick_device(device)
        cfg.freeze()
        return engine.DefaultPredictor(cfg)

    def detect(self, images: Sequence[np.ndarray]) -> list:
        out = []
        for i, im in enumerate(images):
            img = as_rgb(im, f"image {i}")
            inst = self.predictor(np.ascontiguousarray(img[:, :, ::-1]))["instances"]  # detectron2 wants BGR
            out.append(hands23_to_detections(inst, img.shape[1], img.shape[0], i + 1, "", self.hand_threshold, self.object_threshold))
        return out


def detic_to_detections(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, vocabulary: Sequence[str],
                        width: int, height: int, frame_number: int = 0, min_overlap: float = 0.2) -> Detections:
    """Detic detections over ``vocabulary`` (entries ``"right hand"`` / ``"left hand"`` are hands, the rest
    objects) → EPIC :class:`Detections`. Contact: PORTABLE_OBJECT when some object box covers at least
    ``min_overlap`` of the hand box's area (offset towards the most-covering object), else NO_CONTACT."""
    det = Detections(frame_number=int(frame_number))
    names = [vocabulary[c] if 0 <= c < len(vocabulary) else "" for c in classes]
    objs = [(b, s) for b, s, n in zip(boxes, scores, names) if n and "hand" not in n]
    for b, s in objs:
        det.objects.add(bbox=normalise_box(*b, width, height), score=float(s))
    for b, s, n in zip(boxes, scores, names):
        if n not in ("right hand", "left hand"):
            continue
        area = max((b[2] - b[0]) * (b[3] - b[1]), 1e-9)
        cover = [max(0.0, min(b[2], o[2]) - max(b[0], o[0])) * max(0.0, min(b[3], o[3]) - max(b[1], o[1])) / area for o, _ in objs]
        k = int(np.argmax(cover)) if cover else -1
        touching = k >= 0 and cover[k] >= min_overlap
        det.hands.add(bbox=normalise_box(*b, width, height), score=float(s),
                      state=HandState.PORTABLE_OBJECT if touching else HandState.NO_CONTACT,
                      object_offset=_offset(b, objs[k][0], width, height) if touching else FloatVector(x=0.0, y=0.0),
                      side=HandSide.RIGHT if n == "right hand" else HandSide.LEFT)
    return det


#: default object vocabulary for the ``detic`` hand-object backend (portable kitchen/household objects)
DETIC_OBJECTS = ("cup", "mug", "bowl", "plate", "bottle", "knife", "spoon", "fork", "pan", "pot", "lid", "jar",
                 "box", "bag", "phone", "tool", "container", "food")


class DeticHandObjectDetector:
    """Detic as a hand-object detector (heuristic contact, see module doc). ``objects``: the object
    vocabulary; ``predictor`` as for :class:`~pipelines.models.open_vocab.DeticBoxes`."""

    name = "detic"

    def __init__(self, weights: str | Path | None = None, detic_root: str | Path | None = None, config_file: str | None = None,
                 device: str = "auto", threshold: float = 0.3, objects: Sequence[str] = DETIC_OBJECTS,
                 min_overlap: float = 0.2, predictor=None):
        if predictor is None:
            if not weights or not detic_root:
                raise ValueError("detic needs weights=<.pth file> and detic_root=<Detic checkout>")
            predictor = DeticPredictor(detic_root, weights, config_file, device, threshold)
        self.vocabulary = ["right hand", "left hand", *objects]
        self.predictor, self.threshold, self.min_overlap = predictor, threshold, min_overlap

    def detect(self, images: Sequence[np.ndarray]) -> list:
        self.predictor.set_vocabulary(self.vocabulary)
        out = []
        for i, im in enumerate(images):
            img = as_rgb(im, f"image {i}")
            boxes, scores, classes = instances_to_numpy(self.predictor(np.ascontiguousarray(img[:, :, ::-1]))["instances"])
            keep = scores >= self.threshold
            out.append(detic_to_detections(boxes[keep], scores[keep], classes[keep], self.vocabulary,
                                           img.shape[1], img.shape[0], i + 1, self.min_overlap))
        return out


__all__ = ["Hands23Detector", "DeticHandObjectDetector", "hands23_to_detections", "detic_to_detections",
           "HANDS23_GRASPS", "HANDS23_TOUCH"]
