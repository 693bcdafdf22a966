"""EPIC-KITCHENS-100 files read back with independent readers and checked against the ground truth."""

import csv
import pickle

import numpy as np
import pytest

from pipelines.formats import epic_hoa
from pipelines.synth.writers.groundtruth import load_clip_arrays, read_clip_records, read_manifest
from tests.synth import readers as R


def _rows(root):
    with (root / "EPIC_100_train.csv").open() as f:
        return list(csv.reader(f))


def test_regexes_accept_the_real_file():
    rows = list(csv.reader((R.FIXTURES / "EPIC_100_validation_head.csv").open()))
    for row in rows[1:]:
        assert R.NARRATION_TS.match(row[3]) and R.START_STOP_TS.match(row[4]) and R.START_STOP_TS.match(row[5])
        assert R.LIST_STR.match(row[13]) and R.LIST_INT.match(row[14])


def test_csv_matches_real_columns_and_formats(epic_root):
    rows = _rows(epic_root)
    assert rows[0] == R.real_epic_header() and len(rows[0]) == 15
    bad = {c["annotation_id"] for c in read_manifest(epic_root)["corruptions"] if c["kind"] == "malformed_csv_row"}
    info = {r["video_id"]: r for r in csv.DictReader((epic_root / "EPIC_100_video_info.csv").open())}
    for row in rows[1:]:
        if row[0] in bad:
            assert len(row) != 15 or not row[6].isdigit()  # really broken
            continue
        assert len(row) == 15
        assert R.NARRATION_TS.match(row[3]), row[3]
        assert R.START_STOP_TS.match(row[4]) and R.START_STOP_TS.match(row[5])
        assert R.LIST_STR.match(row[13]) and R.LIST_INT.match(row[14])
        assert row[0].startswith(row[2] + "_") and row[2].startswith(row[1] + "_")
        fps = float(info[row[2]]["fps"])
        start, stop = int(row[6]), int(row[7])
        assert 1 <= start < stop
        # timestamps agree with the 1-based frames at the video's own fps (2 decimals ≈ ±1 frame)
        assert abs(R.ts_seconds(row[4]) * fps + 1 - start) <= 1.0
        assert abs(R.ts_seconds(row[5]) * fps + 1 - stop) <= 1.0


def test_classes_match_real_class_lists(epic_root):
    verbs = {int(r["id"]): r for r in csv.DictReader((epic_root / "EPIC_100_verb_classes.csv").open())}
    nouns = {int(r["id"]): r for r in csv.DictReader((epic_root / "EPIC_100_noun_classes.csv").open())}
    assert len(verbs) == 97 and len(nouns) == 300
    for r in csv.DictReader((epic_root / "EPIC_100_train.csv").open()):
        if not (r["start_frame"] or "").isdigit():
            continue
        assert r["verb"] in verbs[int(r["verb_class"])]["instances"]
        assert r["noun"] in nouns[int(r["noun_class"])]["instances"] or r["noun"] == nouns[int(r["noun_class"])]["key"]


def test_fps_mixed_and_videos_agree(epic_root):
    info = list(csv.DictReader((epic_root / "EPIC_100_video_info.csv").open()))
    fps = {round(float(r["fps"]), 2) for r in info}
    assert {59.94, 50.0, 29.97} <= fps
    broken = {c["video_id"] for c in read_manifest(epic_root)["corruptions"] if c["kind"] == "truncated_video"}
    for r in info:
        path = epic_root / r["video_id"].split("_")[0] / "videos" / f"{r['video_id']}.MP4"
        if r["video_id"] in broken:
            assert not R.ffprobe_ok(path)
            continue
        p = R.ffprobe(path)
        assert float(p["fps"]) == pytest.approx(float(r["fps"]), abs=1e-6)
        assert p["frames"] == round(float(r["duration"]) * float(r["fps"]))
        assert f"{p['width']}x{p['height']}" == r["resolution"]
        if r["video_id"].split("_")[1].startswith("1"):
            assert float(r["fps"]) == 50.0


def test_the_reader_finds_the_writers_numbering_rate(epic_root):
    """Our writer numbers frames at each video's own fps: the source's per-video inference must say so
    for every video (the real release numbers EK-55 at 60, which the real-CSV test checks)."""
    from pipelines.sources.epic_kitchens import EpicKitchensSource

    src = EpicKitchensSource(epic_root)
    rates = src.numbering_rates()
    assert rates and all(r == pytest.approx(src.video_info[v]["fps"]) for v, r in rates.items()), rates


def test_hand_objects_wire_format_and_truth(epic_root):
    man = read_manifest(epic_root)
    missing = {c["video_id"] for c in man["corruptions"] if c["kind"] == "missing_hand_objects"}
    recs = read_clip_records(epic_root)
    by_video = {}
    for rec in recs:
        by_video.setdefault(rec["video_id"], []).append(rec)
    for vid, clips in by_video.items():
        path = epic_root / vid.split("_")[0] / "hand-objects" / f"{vid}.pkl"
        if vid in missing:
            assert not path.exists()
            continue
        dets = R.read_epic_hand_objects(path)
        assert [d["frame_number"] for d in dets] == list(range(1, len(dets) + 1))
        assert len(dets) == sum(c["num_frames"] for c in clips)
        ours = epic_hoa.read_hand_object_pickle(path)  # the project's reader agrees with the hand decoder
        assert ours[5].frame_number == dets[5]["frame_number"] and len(ours[5].hands) == len(dets[5]["hands"])
        for rec in clips:
            gt = load_clip_arrays(epic_root, rec["clip_id"])
            W, H = rec["width"], rec["height"]
            agree = n = 0
            for t in range(rec["num_frames"]):
                d = dets[rec["frame_offset"] - 1 + t]
                for h in d["hands"]:
                    b = h["bbox"]
                    assert 0 <= b["left"] < b["right"] <= 1 and 0 <= b["top"] < b["bottom"] <= 1
                    assert h["state"] in (0, 3) and h["side"] in (0, 1)
                acting = [h for h in d["hands"] if h["side"] == (1 if rec["hand_side"] == "right" else 0)]
                if acting:
                    n += 1
                    agree += (acting[0]["state"] == 3) == bool(gt["in_contact"][t])
                    box = np.array([acting[0]["bbox"][k] for k in ("left", "top", "right", "bottom")]) * [W, H, W, H]
                    assert np.abs(box - np.clip(gt["hand_boxes"][t], 0, [W, H, W, H])).max() < 8
            assert agree / n > 0.9  # contact state follows the truth up to detector noise
            if rec["has_contact"]:
                assert rec["action_start"] <= rec["contact_frame"] <= rec["action_end"]


def test_corrupt_entries_are_really_broken(epic_root):
    man = read_manifest(epic_root)
    assert len(man["corruptions"]) == 3 and len({c["clip_id"] for c in man["corruptions"]}) == 3
    for c in man["corruptions"]:
        path = epic_root / c["path"]
        if c["kind"] == "missing_hand_objects":
            assert not path.exists()
        elif c["kind"] == "truncated_video":
            assert not R.ffprobe_ok(path)
        elif c["kind"] == "malformed_csv_row":
            row = [r for r in _rows(epic_root) if r[0] == c["annotation_id"]][0]
            assert len(row) < 15 and not row[6].isdigit()


def test_reader_names_the_file_on_garbage(tmp_path):
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps([b"\xff\xff\xff"]))
    with pytest.raises(epic_hoa.HandObjectFormatError, match="x.pkl"):
        epic_hoa.read_hand_object_pickle(p)
    det = epic_hoa.Detections(video_id="P01_01", frame_number=2)
    with pytest.raises(ValueError, match="frame_number 2"):
        epic_hoa.write_hand_object_pickle(tmp_path / "y.pkl", [det])
