"""Ego4D fho_main.json and full-scale videos read back independently and checked against the truth."""

import json

import pytest

from pipelines.synth.writers.groundtruth import load_clip_arrays, read_clip_records, read_manifest
from tests.synth import readers as R

VIDEO_KEYS = {"video_uid", "video_metadata", "annotated_intervals"}
META_KEYS = {"video_start_pts", "video_base_numerator", "video_base_denominator", "duration_sec", "num_frames",
             "fps", "width", "height", "rotation"}
INTERVAL_KEYS = {"clip_id", "clip_uid", "start_sec", "end_sec", "start_frame", "end_frame", "clip_parent_start_sec",
                 "clip_parent_end_sec", "clip_parent_start_frame", "clip_parent_end_frame", "redacted", "narrated_actions"}
ACTION_KEYS = {"uid", "warnings", "start_sec", "end_sec", "start_frame", "end_frame", "is_valid_action", "is_partial",
               "clip_start_sec", "clip_end_sec", "clip_start_frame", "clip_end_frame", "narration_timestamp_sec",
               "clip_narration_timestamp_sec", "narration_text", "narration_annotation_uid", "structured_verb",
               "freeform_verb", "state_transition", "critical_frames", "clip_critical_frames", "frames",
               "is_rejected", "is_invalid_annotation", "reject_reason", "stage"}
FRAME_TYPES = ["pre_45", "pre_30", "pre_15", "pre_frame", "contact_frame", "pnr_frame", "post_frame"]


def _doc(root):
    return json.loads((root / "v2/annotations/fho_main.json").read_text())


def _actions(doc):
    for v in doc["videos"]:
        for iv in v["annotated_intervals"]:
            for a in iv["narrated_actions"]:
                yield v, iv, a


def test_schema_keys_and_types(ego4d_root):
    doc = _doc(ego4d_root)
    assert {"version", "date", "description", "metadata", "videos"} <= set(doc)
    bad = {c["annotation_id"] for c in read_manifest(ego4d_root)["corruptions"] if c["kind"] == "malformed_json_entry"}
    for v, iv, a in _actions(doc):
        assert set(v) == VIDEO_KEYS and set(v["video_metadata"]) == META_KEYS and set(iv) == INTERVAL_KEYS
        assert v["video_metadata"]["fps"] == 30
        if a["uid"] in bad:
            assert isinstance(a["critical_frames"], str) and "end_frame" not in a
            continue
        assert set(a) == ACTION_KEYS
        assert a["narration_text"].startswith("#C C ")
        assert isinstance(a["start_frame"], int) and isinstance(a["is_rejected"], bool)
        assert a["clip_start_frame"] == a["start_frame"] - iv["start_frame"]
        cf = a["critical_frames"]
        if cf is None:
            assert a["is_valid_action"] is False and a["frames"] == []
            continue
        assert set(cf) <= set(FRAME_TYPES) and "pnr_frame" in cf
        assert a["clip_critical_frames"] == {k: f - iv["start_frame"] for k, f in cf.items()}
        W, H = v["video_metadata"]["width"], v["video_metadata"]["height"]
        for fr in a["frames"]:
            assert fr["frame_type"] in FRAME_TYPES and fr["frame_number"] == cf[fr["frame_type"]]
            for b in fr["boxes"]:
                assert b["object_type"] in ("left_hand", "right_hand", "object_of_change", "tool")
                bb = b["bbox"]
                assert set(bb) == {"x", "y", "width", "height"}
                assert 0 <= bb["x"] and 0 <= bb["y"] and bb["width"] > 0 and bb["height"] > 0
                assert bb["x"] + bb["width"] <= W + 1e-6 and bb["y"] + bb["height"] <= H + 1e-6


def test_videos_are_30fps_with_the_declared_frame_count(ego4d_root):
    broken = {c["video_id"] for c in read_manifest(ego4d_root)["corruptions"]
              if c["kind"] in ("truncated_video", "missing_video")}
    for v in _doc(ego4d_root)["videos"]:
        path = ego4d_root / "v2/full_scale" / f"{v['video_uid']}.mp4"
        if v["video_uid"] in broken:
            assert not path.exists() or not R.ffprobe_ok(path)
            continue
        p = R.ffprobe(path)
        assert p["fps"] == 30 and p["frames"] == v["video_metadata"]["num_frames"]


def test_annotations_agree_with_truth(ego4d_root):
    doc = _doc(ego4d_root)
    by_uid = {a["uid"]: a for _, _, a in _actions(doc)}
    man = read_manifest(ego4d_root)
    bad = {c["annotation_id"] for c in man["corruptions"] if c["kind"] == "malformed_json_entry"}
    recs = read_clip_records(ego4d_root)
    missing_contact = 0
    for rec in recs:
        a = by_uid[rec["annotation_id"]]
        if rec["annotation_id"] in bad:
            continue
        if not rec["has_contact"]:
            assert a["critical_frames"] is None
            continue
        cf = a["critical_frames"]
        contact = cf.get("contact_frame", cf["pnr_frame"])
        missing_contact += "contact_frame" not in cf
        assert a["start_frame"] <= contact <= a["end_frame"]
        assert abs(contact - rec["contact_frame"]) <= (0 if "contact_frame" in cf else 3)
        gt = load_clip_arrays(ego4d_root, rec["clip_id"])
        for fr in a["frames"]:
            t = fr["frame_number"] - rec["frame_offset"]
            hand = [b for b in fr["boxes"] if b["object_type"] == f"{rec['hand_side']}_hand"]
            bb = hand[0]["bbox"]
            assert [bb["x"], bb["y"]] == pytest.approx(list(gt["hand_boxes"][t][:2].clip(0)), abs=0.01)
    # decoys exist and are marked so that the documented filters drop them
    for f in man["filtered_annotations"]:
        d = by_uid[f["annotation_id"]]
        assert d["is_rejected"] or d["is_invalid_annotation"] or d["stage"] is None


def test_demos_have_wrist_trajectories(ego4d_root):
    import numpy as np

    demos = read_manifest(ego4d_root)["demos"]
    assert len(demos) == 9
    for task, d in demos.items():
        z = np.load(ego4d_root / d["wrist"])
        assert z["T_world_wrist"].shape == (d["num_frames"], 4, 4) and float(z["fps"]) == 30.0
        assert 0 <= int(z["grasp_frame"]) < d["num_frames"]
        assert R.ffprobe(ego4d_root / d["video"])["frames"] == d["num_frames"]
