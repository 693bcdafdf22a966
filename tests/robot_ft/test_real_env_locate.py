"""robot.locate's text-prompted detector wired to a real (tiny, randomly initialised, locally built) OWLv2
model and processor from ``transformers``: prompt → box in the caller's image pixels, including OWLv2's
square padding, the score threshold, and degenerate boxes skipped. Nothing is downloaded."""

from __future__ import annotations

import json
import string

import numpy as np
import pytest

from robot.locate import TextBoxLocator, make_locator

pytestmark = pytest.mark.slow  # importing transformers takes ~10-20 s on the shared 2-core machine


@pytest.fixture(scope="module")
def owl_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("transformers")
    out = tmp_path_factory.mktemp("owlv2")
    vocab = {c: i for i, c in enumerate(string.ascii_lowercase)}
    vocab.update({c + "</w>": len(vocab) + i for i, c in enumerate(string.ascii_lowercase)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n")
    tok = tf.CLIPTokenizer(str(out / "vocab.json"), str(out / "merges.txt"))
    small = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2)
    cfg = tf.Owlv2Config(text_config=dict(vocab_size=len(vocab), max_position_embeddings=16, **small),
                         vision_config=dict(image_size=64, patch_size=16, **small), projection_dim=32)
    torch.manual_seed(0)
    tf.Owlv2ForObjectDetection(cfg).save_pretrained(out)
    tf.Owlv2Processor(image_processor=tf.Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=tok).save_pretrained(out)
    return out


def _scripted(loc, logits, boxes):
    """Replace the network's output (keeping the real processor and post-processing)."""
    import torch

    real = loc.model

    def model(**inputs):
        out = real(**inputs)
        out.logits = torch.tensor(logits, dtype=torch.float32).reshape(1, -1, 1)
        out.pred_boxes = torch.tensor(boxes, dtype=torch.float32).reshape(1, -1, 4)
        return out

    loc.model = model


def test_text_locator_maps_detections_to_image_pixels(owl_dir):
    loc = make_locator("text", weights=str(owl_dir), threshold=0.3, device="cpu")
    assert isinstance(loc, TextBoxLocator) and loc.square_pad
    image = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    n = 16
    logits, boxes = np.full(n, -5.0), np.tile([0.5, 0.5, 0.0, 0.0], (n, 1))  # low scores, zero-size boxes
    logits[3], boxes[3] = 4.0, [0.5, 0.3, 0.25, 0.2]      # best: (cx, cy, w, h) of the 80x80 padded square
    logits[7], boxes[7] = 6.0, [0.5, 0.5, 0.0, 0.0]       # even better score, but degenerate: skipped
    _scripted(loc, logits, boxes)
    det = loc.locate(image, "cup")
    assert det is not None and det.source == "text"
    assert np.allclose(det.box, [30, 16, 50, 32], atol=1e-3)   # pixels of the 80x48 image (padding at the bottom)
    assert det.score == pytest.approx(1 / (1 + np.exp(-4.0)), abs=1e-5)
    _scripted(loc, np.full(n, -5.0), boxes)                 # nothing above the threshold
    assert loc.locate(image, "cup") is None


def test_text_locator_runs_the_real_network_and_missing_weights_name_the_path(owl_dir, tmp_path):
    loc = TextBoxLocator(str(owl_dir), threshold=0.0, device="cpu")
    det = loc.locate(np.zeros((48, 80, 3), np.uint8), "cup")  # random weights: any valid box, or none
    assert det is None or (det.box[2] > det.box[0] and det.box[3] > det.box[1] and det.box[2] <= 80 and det.box[3] <= 48)
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        TextBoxLocator(str(tmp_path / "nothing_here"))

