"""Which texts supervised the wrist and pose heads: recorded at training, kept in the export, and used by
the robot to warn when a task's text is unlike all of them."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from deft_core.affordance import load_affordance, save_export
from deft_core.affordance.model import AffordanceModel
from pipelines.train_affordance import summarise_data
from robot.sim_env import HAND_TEXT_MIN_SIMILARITY, hand_text_note
from tests.affordance.conftest import tiny_config


def _shard(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def test_summary_counts_training_texts_whose_hand_labels_carry_weight(tmp_path):
    rows = []
    for i in range(40):  # many videos, so both splits get some of each kind
        rows.append({"dataset": "hoi4d", "video_id": f"h{i}", "text": "cut apple", "hand_pose_source": "hoi4d"})
        rows.append({"dataset": "ego4d", "video_id": f"e{i}", "text": "stir the pot", "hand_pose_source": "mediapipe"})
    f = _shard(tmp_path / "a.parquet", rows)
    s = summarise_data([f], 0.25, {"mediapipe": 0})
    assert list(s["hand_label_texts"]) == ["cut apple"]  # MediaPipe rows weigh 0: their text is not supervised
    # only training rows count (the split is by video)
    from deft_core.affordance.data import is_validation

    n_train = sum(not is_validation("hoi4d", f"h{i}", 0.25) for i in range(40))
    assert 0 < n_train < 40 and s["hand_label_texts"]["cut apple"] == n_train
    both = summarise_data([f], 0.25)  # absent sources weigh 1
    assert set(both["hand_label_texts"]) == {"cut apple", "stir the pot"}


def test_summary_without_source_column_counts_every_training_text(tmp_path):
    f = _shard(tmp_path / "b.parquet", [{"dataset": "ego4d", "video_id": f"v{i}", "text": "open the drawer"} for i in range(10)])
    s = summarise_data([f], 0.0, {"mediapipe": 0})
    assert s["hand_label_texts"] == {"open the drawer": 10}


def test_summary_records_the_crops_padding_relative_to_the_frames(tmp_path):
    """The export tells the robot how the training crops were framed: the extraction's crop_pad_px (its
    manifest; 20 px where there is none) over the frames' short side, the median over rows."""
    import json

    out = tmp_path / "shards"
    (out / "data").mkdir(parents=True)
    (out / "manifest.json").write_text(json.dumps({"config": {"crop_pad_px": 30.0}}))
    row = {"dataset": "ego4d", "text": "open the drawer", "frame_width": 456, "frame_height": 256}
    a = _shard(out / "data" / "a.parquet", [{**row, "video_id": f"v{i}"} for i in range(5)])
    b = _shard(tmp_path / "b.parquet", [{**row, "video_id": f"w{i}", "frame_width": 1920, "frame_height": 1080}
                                        for i in range(2)])  # no manifest: 20 px
    crop = summarise_data([a, b], 0.0)["crop"]
    assert crop["pad_fraction_of_short_side"] == pytest.approx(30 / 256, abs=1e-6)  # 5 of 7 rows
    assert crop["pad_px"] == [20.0, 30.0] and crop["frame_short_side_px"] == [256, 1080]
    assert summarise_data([b], 0.0)["crop"]["pad_fraction_of_short_side"] == pytest.approx(20 / 1080, abs=1e-6)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    torch.manual_seed(0)
    model = AffordanceModel(tiny_config(64).model).eval()
    d = tmp_path_factory.mktemp("ckpt")
    save_export(d, model, {"rows": 3, "hand_label_texts": {"pick up the cup": 5, "open the drawer": 2}}, {"note": "test"}, {})
    return load_affordance(d)


def test_support_names_the_nearest_supervised_text(predictor):
    assert predictor.hand_label_texts == {"pick up the cup": 5, "open the drawer": 2}
    s = predictor.hand_text_support("open the drawer")
    assert s["nearest"] == "open the drawer" and s["rows"] == 2 and s["similarity"] == pytest.approx(1.0)
    other = predictor.hand_text_support("squeeze the lemon")
    assert other["similarity"] < 0.99 and other["nearest"] in predictor.hand_label_texts


def test_note_only_below_the_threshold(predictor):
    assert hand_text_note(predictor, "pick up the cup") is None

    class Far:
        def hand_text_support(self, text):
            return {"nearest": "cut apple", "similarity": HAND_TEXT_MIN_SIMILARITY - 0.1, "rows": 4}

    note = hand_text_note(Far(), "stir the pot with the spoon")
    assert "stir the pot with the spoon" in note and "cut apple" in note


def test_old_checkpoints_give_no_support_and_no_note(tmp_path):
    torch.manual_seed(0)
    model = AffordanceModel(tiny_config(64).model).eval()
    save_export(tmp_path, model, {"rows": 3}, {"note": "test"}, {})
    pred = load_affordance(tmp_path)
    assert pred.hand_label_texts is None and pred.hand_text_support("anything") is None
    assert hand_text_note(pred, "anything") is None
