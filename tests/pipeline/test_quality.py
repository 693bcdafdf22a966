"""deft data evaluate on a tiny generated EPIC dataset extracted with the plain loop."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from pipelines.quality import evaluate
from pipelines.sources.base import open_source
from pipelines.stages.loop import run_local
from pipelines.stages.process import ClipProcessor, ExtractConfig
from pipelines.stages.writer import write_batch
from pipelines.synth.generate import generate_dataset
from tests.jobs.backends import FixedHandPose
from tests.jobs.conftest import textured_render_clip


def test_report_counts_and_errors(extracted):
    root, out = extracted
    rep, samples, rows = evaluate(out, root)
    assert rep["valid_clips"] == 4  # 6 clips − 1 contact-free − 1 corrupted
    assert rep["valid_extracted"] == len(rows) - rep["invalid_clips_extracted"] >= 3
    g = rep["groups"]["epic_kitchens/fixed"]
    assert g["contact_frame_error_frames"]["max"] <= 2
    assert g["contact_point_error_pct"]["median"] < 25  # the fake's true points are on the object's edge
    assert g["wrist_rotation_error_deg"]["median"] > 1  # a fixed pose is not the truth
    assert g["true_contact_points"]["n"] == g["contact_point_error_pct"]["n"] and g["true_contact_points"]["median"] >= 1
    assert all(s["true_contact_spread_pct"] >= 0 for s in samples if s["true_contact_points"])


def test_contact_point_error_is_split_by_how_the_points_reached_v1(extracted, tmp_path):
    root, out = extracted
    rep, samples, rows = evaluate(out, root)
    by = rep["contact_point_error_by_mapping"]
    assert by and all(k.split("/")[1] in ("object", "background", "identity") for k in by)
    assert {r["contact_mapping"] for r in rows} == {k.split("/")[1] for k in by}
    assert sum(v["n"] for v in by.values()) == rep["groups"]["epic_kitchens/fixed"]["contact_point_error_pct"]["n"]
    # shards written before schema version 2 carry no mapping: their samples are "not recorded"
    import pyarrow as pa

    t = pa.concat_tables([pq.read_table(p) for p in sorted((out / "data").glob("*.parquet"))]).drop_columns(["contact_mapping"])
    (tmp_path / "v1" / "data").mkdir(parents=True)
    pq.write_table(t.replace_schema_metadata({**t.schema.metadata, b"deft.schema_version": b"1"}),
                   tmp_path / "v1" / "data" / "part-old.parquet")
    old = evaluate(tmp_path / "v1", root)[0]["contact_point_error_by_mapping"]
    assert list(old) == ["epic_kitchens/not recorded"] and old["epic_kitchens/not recorded"]["n"] == sum(v["n"] for v in by.values())


def test_moved_points_raise_the_error(extracted, tmp_path):
    root, out = extracted
    rows = [r for p in (out / "data").glob("*.parquet") for r in pq.read_table(p).to_pylist()]
    base = evaluate(out, root)[0]["groups"]["epic_kitchens/fixed"]["contact_point_error_pct"]["median"]
    for r in rows:
        r["contact_points"] = (np.clip(np.asarray(r["contact_points"]) + [0.4, 0.4], 0, 1)).tolist()
    write_batch(tmp_path / "moved", rows)
    moved = evaluate(tmp_path / "moved", root)[0]["groups"]["epic_kitchens/fixed"]["contact_point_error_pct"]["median"]
    assert moved > base + 10


def test_cli_writes_json_and_png(extracted, tmp_path, capsys, monkeypatch):
    root, out = extracted
    monkeypatch.setenv("COLUMNS", "80")   # what rich assumes when stderr is a log file or a pipe
    assert main(["data", "evaluate", "--shards", str(out), "--truth", str(root), "--out", str(tmp_path / "rep")]) == 0
    table = capsys.readouterr().err
    assert "epic_kitchens/fixed" in table and "…" not in table, table   # names and headers whole at 80 columns
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "median error by how they reached v1: epic_kitchens/" in table
    rep = json.loads((tmp_path / "rep" / "extraction_quality.json").read_text())
    assert rep["reports"][0]["valid_clips"] == 4
    assert (tmp_path / "rep" / "extraction_examples.png").stat().st_size > 1000
    assert main(["data", "evaluate", "--shards", str(out), "--truth", str(tmp_path), "--out", str(tmp_path / "r2")]) == 2
    assert "clips.jsonl" in capsys.readouterr().err


def test_centroid_and_nearest_point_errors_differ_as_defined():
    """Centroid error: |mean(pred) − mean(true)|; NN error: mean over predicted of the nearest true point."""
    from pipelines.quality import _centroid_error, _point_error

    true = np.array([[0.0, 0.0], [10.0, 0.0]])
    pred = np.array([[0.0, 0.0], [0.0, 0.0]])  # both on one true point: NN 0, but the mean is 5 px off
    assert _point_error(pred, true, 100.0) == 0.0
    assert _centroid_error(pred, true, 100.0) == pytest.approx(5.0)
    assert _centroid_error(np.array([[5.0, 0.0]]), true, 50.0) == 0.0


def test_truth_spread_is_zero_for_one_point_and_half_the_gap_for_two():
    """true_contact_spread_pct: mean distance of the true points from their centroid, % of the crop side."""
    from pipelines.quality import _spread

    assert _spread(np.array([[3.0, 4.0]]), 100.0) == 0.0
    assert _spread(np.array([[0.0, 0.0], [10.0, 0.0]]), 100.0) == pytest.approx(5.0)
    assert _spread(np.array([[0.0, 0.0], [0.0, 20.0], [0.0, 40.0]]), 200.0) == pytest.approx(100 * (40 / 3) / 200)


def test_sample_from_a_contact_free_clip_counts_as_false_positive(extracted, tmp_path):
    """A row extracted from a clip whose truth has no contact must not crash the report (its truth has no
    contact frame) and is counted in invalid_clips_extracted, not in the accuracy metrics."""
    from pipelines.quality import is_valid, load_truth

    root, out = extracted
    rows = [r for p in (out / "data").glob("*.parquet") for r in pq.read_table(p).to_pylist()]
    truth = load_truth(root)
    free = next(sid for sid, rec in truth.items() if not rec["has_contact"])
    assert not is_valid(truth[free]) and truth[free]["contact_frame"] is None
    fake = dict(rows[0], sample_id=free)
    write_batch(tmp_path / "fp", rows + [fake])
    base, _, _ = evaluate(out, root)
    rep, samples, _ = evaluate(tmp_path / "fp", root)
    assert rep["invalid_clips_extracted"] == base["invalid_clips_extracted"] + 1
    assert free not in {s["sample_id"] for s in samples}
    assert rep["groups"]["epic_kitchens/fixed"]["contact_frame_error_frames"]["n"] == base["groups"]["epic_kitchens/fixed"]["contact_frame_error_frames"]["n"]


def test_cli_unreadable_inputs_are_clean_errors_naming_the_file(tmp_path, capsys):
    shards, truth = tmp_path / "shards", tmp_path / "truth"
    (shards / "data").mkdir(parents=True)
    (truth / "_groundtruth").mkdir(parents=True)
    (shards / "data" / "part-0.parquet").write_bytes(bytes(range(256)) * 4)  # garbage, no Parquet magic bytes
    clip = '{"clip_id": "c0", "dataset": "epic_kitchens", "video_id": "P01_01", "annotation_id": "P01_01_0"}\n'
    (truth / "_groundtruth" / "clips.jsonl").write_text(clip + "\n")  # a trailing blank line is not an error
    argv = ["data", "evaluate", "--shards", str(shards), "--truth", str(truth), "--out", str(tmp_path / "rep")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{shards / 'data' / 'part-0.parquet'}: not a readable Parquet shard" in err and "Traceback" not in err
    for text, message in (("", "lists no clips"), ('{"clip_id": "c0"}\n', "line 1 lacks dataset, video_id, annotation_id")):
        (truth / "_groundtruth" / "clips.jsonl").write_text(text)  # a synthesis that did not finish; not a record
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    (truth / "_groundtruth" / "clips.jsonl").write_text('{"clip_id": "c0", "data')  # truncated sidecar
    assert main(argv) == 2
    assert "clips.jsonl: line 1 is not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "rep").exists()


def test_a_truth_from_another_synthesis_is_refused_and_so_is_resuming_with_other_settings(extracted, tmp_path):
    """Every seed's synthesis has the same clip ids: the extraction records which synthesis it read and
    evaluate refuses another's truth; adding to an extraction output with other settings or from another
    synthesis is refused before anything is skipped or written."""
    from pipelines.quality import QualityInputError

    root, out = extracted
    assert json.loads((out / "manifest.json").read_text())["source"]["synthetic"] == {
        "dataset": "epic_kitchens", "seed": 5, "num_clips": 6}
    other = tmp_path / "epic_seed6"
    generate_dataset("epic_kitchens", other, clips=6, seed=6, corrupt=1, width=192, height=112,
                     render_fn=textured_render_clip, demos=False)
    with pytest.raises(QualityInputError, match="another synthesis.*seed 5 vs 6"):
        evaluate(out, other)
    assert evaluate(out, root)[0]["warnings"] == []
    cfg = ExtractConfig(dataset="epic_kitchens", hand_pose_backend="fixed")
    before = json.loads((out / "manifest.json").read_text())
    with pytest.raises(ValueError, match="holds an extraction made with other settings or data.*'seed': 5.*'seed': 6"):
        run_local(open_source("epic_kitchens", str(other)), out, cfg, processor=ClipProcessor(cfg, hand_pose=FixedHandPose()))
    changed = ExtractConfig(dataset="epic_kitchens", hand_pose_backend="fixed", num_points=7)
    with pytest.raises(ValueError, match="num_points: 5 there, 7 now"):
        run_local(open_source("epic_kitchens", str(root)), out, changed, processor=ClipProcessor(changed, hand_pose=FixedHandPose()))
    assert json.loads((out / "manifest.json").read_text()) == before


def test_gmm_ellipses_are_the_one_sigma_extent_in_crop_pixels():
    from pipelines.quality import gmm_ellipses

    (c0, w0, h0), (c1, w1, h1) = gmm_ellipses([[0.5, 0.25], [0.1, 0.9]], [[0.01, 0.04], [0.0, 0.0025]], 200, 100)
    assert c0 == pytest.approx((100.0, 25.0)) and (w0, h0) == pytest.approx((2 * 0.1 * 200, 2 * 0.2 * 100))
    assert c1 == pytest.approx((20.0, 90.0)) and (w1, h1) == pytest.approx((0.0, 2 * 0.05 * 100))
    (_, w2, _), = gmm_ellipses([[0.5, 0.5]], [[0.01, 0.01]], 100, 100, n_sigma=2)
    assert w2 == pytest.approx(40.0)


def test_crop_frame_inverts_extractions_normalisation_on_a_clipped_crop():
    """A crop clipped by the frame (an object as tall as the 256-px frame) is not square: points are
    normalised per axis by extraction, so the evaluator must map them back per axis."""
    from pipelines.quality import crop_frame
    from pipelines.stages.crop import to_crop_normalised

    box = np.array([100.0, 0.0, 380.0, 256.0])   # 280 × 256
    px = np.array([[150.0, 40.0], [300.0, 220.0]])
    to_px, side = crop_frame(box)
    np.testing.assert_allclose(to_px(to_crop_normalised(px, box)), px)
    assert side == 280.0
    to_px, side = crop_frame([10.0, 20.0, 74.0, 84.0])  # square: unchanged
    assert side == 64.0 and np.allclose(to_px([[0.5, 0.5]]), [[42.0, 52.0]])
