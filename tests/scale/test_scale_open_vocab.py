"""Open-vocabulary box backends: our loaders + inference on tiny real-format OWLv2 / Grounding DINO."""

from pathlib import Path

import numpy as np
import pytest

from pipelines.models.base import OBJECT_BOX_BACKENDS, BoxDetection, WeightsNotFound, make_object_boxer
from pipelines.models.open_vocab import GroundingDinoBoxes, box_iou, pick_object_box


def _images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48, 80, 3), dtype=np.uint8), rng.integers(0, 255, (70, 40, 3), dtype=np.uint8)]


def _check(result, images, queries, max_n):
    assert len(result) == len(images)
    for dets, im, qs in zip(result, images, queries):
        h, w = im.shape[:2]
        assert 0 < len(dets) <= max_n
        scores = [d.score for d in dets]
        assert scores == sorted(scores, reverse=True)
        for d in dets:
            assert d.label in qs
            x1, y1, x2, y2 = d.box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h


def test_owlv2_tiny_model_loads_and_detects(owlv2_dir):
    boxer = make_object_boxer("owlv2", weights=str(owlv2_dir), device="cpu", threshold=0.0, max_detections=7)
    images, queries = _images(), [["cup"], ["knife", "pan"]]
    res = boxer.detect(images, queries)
    _check(res, images, queries, 7)
    # the first image had one query, padded by the processor to two: no detection may carry the padding label
    assert {d.label for d in res[0]} == {"cup"}
    again = boxer.detect(images, queries)
    assert all(np.allclose(a.box, b.box) and a.score == b.score for r1, r2 in zip(res, again) for a, b in zip(r1, r2))


def test_owlv2_boxes_are_scaled_to_the_padded_square(owlv2_dir):
    """The tiny model's boxes are OWL's patch grid (4 x 4, corners (i + 1) / 4, size 1/4) of the square the
    processor pads to (side max(h, w) = 80 for a 48 x 80 image); clipped to the image, empty ones dropped."""
    boxer = make_object_boxer("owlv2", weights=str(owlv2_dir), device="cpu", threshold=0.0, max_detections=100)
    got = sorted(tuple(np.round(d.box, 1)) for d in boxer.detect(_images()[:1], [["cup"]])[0])
    s, expected = 80.0, []
    for cy in (0.25, 0.5, 0.75, 1.0):
        for cx in (0.25, 0.5, 0.75, 1.0):
            b = np.clip([(cx - 0.125) * s, (cy - 0.125) * s, (cx + 0.125) * s, (cy + 0.125) * s], 0, [80, 48, 80, 48])
            if b[2] > b[0] and b[3] > b[1]:
                expected.append(tuple(np.round(b, 1)))
    assert len(got) == len(expected) == 8
    assert np.allclose(got, sorted(expected), atol=0.1)


def test_owlv2_threshold_filters(owlv2_dir):
    boxer = make_object_boxer("owlv2", weights=str(owlv2_dir), device="cpu", threshold=0.0)
    all_scores = [d.score for d in boxer.detect(_images()[:1], [["cup"]])[0]]
    cut = float(np.median(all_scores))
    strict = make_object_boxer("owlv2", weights=str(owlv2_dir), device="cpu", threshold=cut)
    kept = strict.detect(_images()[:1], [["cup"]])[0]
    assert all(d.score > cut for d in kept) and len(kept) < len(all_scores)


def test_grounding_dino_tiny_model_loads_and_detects(grounding_dino_dir):
    boxer = make_object_boxer("grounding-dino", weights=str(grounding_dino_dir), device="cpu", box_threshold=0.0,
                              text_threshold=0.0, max_detections=5)
    # the installed transformers takes `threshold`; older ones `box_threshold`: chosen from the signature
    assert boxer._threshold_kw in ("threshold", "box_threshold")
    images, queries = _images(), [["cup"], ["red mug", "knife"]]
    _check(boxer.detect(images, queries), images, queries, 5)


def test_grounding_dino_prompt_and_label_mapping():
    assert GroundingDinoBoxes.prompt(["Cup", "red mug."]) == "cup. red mug."
    assert GroundingDinoBoxes._label_to_query("red mug", ["mug", "red mug"]) == "red mug"
    assert GroundingDinoBoxes._label_to_query("a cup. [SEP]", ["cup"]) == "cup"


def test_bad_queries_are_refused(owlv2_dir):
    boxer = make_object_boxer("owlv2", weights=str(owlv2_dir), device="cpu")
    with pytest.raises(ValueError, match="queries\\[0\\]"):
        boxer.detect(_images()[:1], ["cup"])  # a string, not a list of phrases
    with pytest.raises(ValueError, match="2 images but 1"):
        boxer.detect(_images(), [["cup"]])
    with pytest.raises(ValueError, match="RGB uint8"):
        boxer.detect([np.zeros((4, 4), np.uint8)], [["cup"]])


def test_missing_weights_name_the_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    missing = tmp_path / "no-such-owlv2"
    with pytest.raises(WeightsNotFound, match="no-such-owlv2"):
        make_object_boxer("owlv2", weights=str(missing), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsNotFound, match="no config.json"):
        make_object_boxer("grounding-dino", weights=str(tmp_path / "empty"), device="cpu")
    with pytest.raises(WeightsNotFound, match="IDEA-Research/grounding-dino-tiny"):  # default hub id, not cached
        make_object_boxer("grounding-dino", device="cpu")


def test_unknown_backend_lists_known():
    with pytest.raises(ValueError, match="owlv2"):
        make_object_boxer("yolo")
    assert set(OBJECT_BOX_BACKENDS) == {"owlv2", "grounding-dino", "detic"}


def test_pick_object_box_prefers_the_detection_near_the_prior():
    far = BoxDetection([0, 0, 10, 10], 0.9, "cup")
    near = BoxDetection([50, 50, 70, 70], 0.5, "cup")
    prior = [52, 48, 72, 69]
    assert pick_object_box([far, near], prior) is near
    assert pick_object_box([far, near]) is far
    assert pick_object_box([far], prior) is None
    assert pick_object_box([], prior) is None
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)


def test_refine_object_box_uses_stored_detections():
    from pipelines.models.open_vocab import refine_object_box

    prior = [50, 50, 70, 70]
    contact = {"v1_object_boxes": {"query": "cup", "backend": "owlv2",
                                   "boxes": [[0, 0, 10, 10, 0.9], [48, 49, 72, 71, 0.6]]}}
    assert refine_object_box(contact, prior).tolist() == [48, 49, 72, 71]
    assert refine_object_box({}, prior).tolist() == prior
    assert refine_object_box({"v1_object_boxes": {"boxes": [[0, 0, 10, 10, 0.9]]}}, prior).tolist() == prior


def test_detic_is_built_with_its_checkout_relative_files(tmp_path, monkeypatch):
    """Detic's configs name files relative to its checkout (ROI_BOX_HEAD.CAT_FREQ_PATH, read while the box
    head is built; its demo.py runs from there): building the predictor from any other working directory
    must still find them. Fake detectron2 / CenterNet2 / Detic modules with the real call shapes."""
    import sys
    from types import SimpleNamespace

    from pipelines.models.open_vocab import DeticPredictor

    root = tmp_path / "Detic"
    files = {
        "detic/__init__.py": "",
        "detic/config.py": "def add_detic_config(cfg):\n    cfg.MODEL.ROI_BOX_HEAD.CAT_FREQ_PATH = 'datasets/metadata/lvis_v1_train_cat_info.json'\n",
        "detic/modeling/__init__.py": "",
        "detic/modeling/text/__init__.py": "",
        "detic/modeling/text/text_encoder.py": ("class _T:\n    def eval(self):\n        return self\n"
                                                "def build_text_encoder(pretrain=True):\n    return _T()\n"),
        "detic/modeling/utils.py": "def reset_cls_test(model, emb, n):\n    pass\n",
        "third_party/CenterNet2/centernet/__init__.py": "",
        "third_party/CenterNet2/centernet/config.py": "def add_centernet_config(cfg):\n    pass\n",
        "datasets/metadata/lvis_v1_train_cat_info.json": "[]",
        "configs/Detic_LCOCOI21k_CLIP_SwinB_896b32_4x_ft4x_max-size.yaml": "MODEL: {}\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    weights = tmp_path / "detic.pth"
    weights.write_bytes(b"w")

    def node():
        return SimpleNamespace()

    class Cfg(SimpleNamespace):
        def merge_from_file(self, path):
            assert open(path).read()

        def freeze(self):
            pass

    def get_cfg():
        return Cfg(MODEL=SimpleNamespace(RETINANET=node(), ROI_HEADS=node(), ROI_BOX_HEAD=node()))

    class DefaultPredictor:   # Detic's box head reads the category frequencies while it is built
        def __init__(self, cfg):
            open(cfg.MODEL.ROI_BOX_HEAD.CAT_FREQ_PATH).close()
            self.model = object()

    monkeypatch.setitem(sys.modules, "detectron2", SimpleNamespace())
    monkeypatch.setitem(sys.modules, "detectron2.config", SimpleNamespace(get_cfg=get_cfg))
    monkeypatch.setitem(sys.modules, "detectron2.engine", SimpleNamespace(DefaultPredictor=DefaultPredictor))
    for name in [m for m in sys.modules if m == "detic" or m.startswith("detic.") or m.startswith("centernet")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    pred = DeticPredictor(root, weights, device="cpu")
    assert pred.predictor.model is not None and Path.cwd() == tmp_path
