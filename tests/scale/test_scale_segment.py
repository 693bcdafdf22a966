"""SAM through transformers (deft_core.segment): tiny real-format model, box and point prompts."""

import subprocess
import sys

import numpy as np
import pytest

from deft_core.segment import MaskResult, WeightsNotFound, make_segmenter


@pytest.fixture(scope="module")
def sam(sam_dir):
    return make_segmenter("sam", weights=str(sam_dir), device="cpu")


def _image():
    return np.random.default_rng(1).integers(0, 255, (48, 80, 3), dtype=np.uint8)


def test_box_prompts_give_one_mask_per_box(sam):
    res = sam.segment_boxes(_image(), [[10, 10, 40, 30], [50, 5, 78, 45]])
    assert len(res) == 2
    for r in res:
        assert r.mask.shape == (48, 80) and r.mask.dtype == bool
        assert np.isfinite(r.score)
    again = sam.segment_boxes(_image(), [[10, 10, 40, 30]])[0]
    assert np.array_equal(again.mask, res[0].mask)


def test_point_prompts(sam):
    r = sam.segment_points(_image(), [[20, 20], [60, 30]], labels=[1, 0])
    assert r.mask.shape == (48, 80)
    with pytest.raises(ValueError, match="labels"):
        sam.segment_points(_image(), [[20, 20]], labels=[2])
    with pytest.raises(ValueError, match="at least one point"):
        sam.segment_points(_image(), [])


def test_bad_box_and_image_are_refused(sam):
    with pytest.raises(ValueError, match="x2 > x1"):
        sam.segment_boxes(_image(), [[30, 10, 20, 30]])
    with pytest.raises(ValueError, match="RGB uint8"):
        sam.segment_boxes(_image().astype(np.float32), [[1, 1, 5, 5]])
    assert sam.segment_boxes(_image(), []) == []


def test_mask_box():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    assert MaskResult(m, 0.9).box().tolist() == [3, 2, 9, 5]
    assert MaskResult(np.zeros((4, 4), bool), 0.1).box() is None


def test_missing_weights_are_named(tmp_path):
    with pytest.raises(WeightsNotFound, match="sam-weights-here"):
        make_segmenter("sam", weights=str(tmp_path / "sam-weights-here"))


def test_robot_side_import_is_light():
    """The robot process imports deft_core.segment: no ray, no pipelines, no transformers until a model is made."""
    code = ("import sys, deft_core.segment as s; "
            "bad = [m for m in ('ray', 'pipelines', 'transformers') if m in sys.modules]; "
            "assert not bad, bad; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
