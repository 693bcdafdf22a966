"""process_clip + writer end to end on a tiny EPIC-format dataset written here (video, CSV, detections)."""

from __future__ import annotations

import cv2
import numpy as np
import pyarrow.parquet as pq
import pandas as pd
import pytest

from deft_core.schema import check_table_schema
from deft_core.version import SCHEMA_VERSION
from pipelines.formats.epic_hoa import BBox, Detections, FloatVector, HandDetection, HandSide, HandState, ObjectDetection, normalise_box, write_hand_object_pickle
from pipelines.sources.epic_kitchens import EpicKitchensSource
from pipelines.stages.hand_pose import HandPose
from pipelines.stages.loop import run_local
from pipelines.stages.process import ClipProcessor, ExtractBatch, ExtractConfig
from pipelines.stages.writer import done_ids, pending
from tests.pipeline.frames import OBJECT_RGB, SKIN_RGB, background

W, H, N, CONTACT = 456, 256, 24, 12  # frames are 1-based: contact at frame 12
OBJ = np.array([220, 90, 300, 170], float)


class FixedPose:
    """Test double for a hand-pose backend (the EPIC path needs one; real ones need weights)."""

    name = "test"

    def estimate(self, record, frame_rgb, contact):
        assert frame_rgb is not None and frame_rgb.shape == (H, W, 3)
        return HandPose(np.array([0.1, 0.2, 0.3]), np.zeros(45), "test")


def _hand_x(i: int) -> int:
    """Hand centre x in canvas pixels at frame i (0-based): its right edge (x + 30) passes the object's
    left edge (canvas x 240) at frame CONTACT - 1 and stays there."""
    return 148 + 6 * min(i, CONTACT - 1)


def _frame(i: int):
    """Frame i (0-based): a static canvas seen through a window panning 1 px/frame (content moves left)."""
    img = background(W + 40, H, seed=1)
    x1, y1, x2, y2 = OBJ.astype(int)
    img[y1:y2, x1 + 20:x2 + 20] = OBJECT_RGB
    cv2.ellipse(img, (_hand_x(i), 130), (30, 18), 0, 0, 360, SKIN_RGB, -1)
    return img[:, 10 + i:10 + i + W].copy()


def _dataset(root, rows=("P01_01_0", "P01_01_1", "P01_01_2"), with_video=True):
    vid = root / "P01" / "videos" / "P01_01.MP4"
    vid.parent.mkdir(parents=True)
    frames = [_frame(i) for i in range(N)]
    if with_video:
        vw = cv2.VideoWriter(str(vid), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (W, H))
        for f in frames:
            vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        vw.release()
    dets = []
    for i in range(N):
        d = Detections(video_id="P01_01", frame_number=i + 1)
        hx = _hand_x(i) - (10 + i)  # in view pixels
        hb = normalise_box(hx - 32, 110, hx + 32, 150, W, H)
        state = HandState.PORTABLE_OBJECT if i + 1 >= CONTACT else HandState.NO_CONTACT
        d.hands.append(HandDetection(bbox=hb, score=0.95, state=state, side=HandSide.RIGHT, object_offset=FloatVector(x=0.1, y=0.0)))
        ob = OBJ - [i - 10, 0, i - 10, 0]
        d.objects.append(ObjectDetection(bbox=normalise_box(*ob, W, H), score=0.9))
        dets.append(d)
    write_hand_object_pickle(root / "P01" / "hand-objects" / "P01_01.pkl", dets)
    (root / "EPIC_100_video_info.csv").write_text("video_id,duration,fps,resolution\nP01_01,0.8,30.0,456x256\nP01_02,0.8,30.0,456x256\n")
    lines = ["narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes"]
    for k, r in enumerate(rows):
        lines.append(f"{r},P01,P01_01,00:00:00.100,00:00:00.03,00:00:00.77,{1 + k},{N},take cup,take,0,cup,1,['cup'],[1]")
    lines.append("P01_02_0,P01,P01_02,00:00:00.100,00:00:00.03,00:00:00.77,1,24,take cup,take,0,cup,1,['cup'],[1]")  # no video, no pickle
    lines.append("P01_01_9,P01,P01_01,00:00:00.100,garbage,00:00:00.77,1,24,take cup,take,0,cup,1,['cup'],[1]")   # malformed
    (root / "EPIC_100_validation.csv").write_text("\n".join(lines) + "\n")
    return frames


@pytest.fixture
def epic(tmp_path):
    frames = _dataset(tmp_path / "epic")
    return tmp_path / "epic", frames


def _config():
    return ExtractConfig(dataset="epic_kitchens", hand_pose_backend="test")


def test_process_clip_produces_a_valid_row_with_points_on_the_touching_edge(epic):
    root, frames = epic
    rec = next(EpicKitchensSource(root).records())
    out = ClipProcessor(_config(), hand_pose=FixedPose()).process(rec)
    assert out.error is None, out.error
    row = out.row
    assert row["contact_frame"] == CONTACT and row["first_frame"] == 1 and row["text"] == "take cup"
    assert row["homography_inliers"] >= 20 and row["hand_pose_source"] == "test"
    assert row["contact_mapping"] in ("object", "background")  # the contact frame is not v1 here
    # ground truth in v1 (frame 1, 0-based 0): the object box there, the hand touches its left edge
    box = np.array(row["crop_box"])
    assert box[2] - box[0] == box[3] - box[1]
    pts_px = np.array(row["contact_points"]) * (box[2:] - box[:2]) + box[:2]
    obj_v1 = OBJ + [10, 0, 10, 0]  # at frame index 0 the content sits 10 px further right
    assert np.all(np.abs(pts_px[:, 0] - obj_v1[0]) < 6), pts_px
    assert np.all((pts_px[:, 1] > 110) & (pts_px[:, 1] < 150))
    assert len(row["gmm_means"]) == len(row["gmm_vars"]) >= 1


def test_broken_inputs_become_error_rows_and_nothing_else_is_lost(epic, tmp_path):
    root, _ = epic
    out = tmp_path / "out"
    manifest = run_local(EpicKitchensSource(root), out, _config(), processor=ClipProcessor(_config(), hand_pose=FixedPose()))
    errs = pq.read_table(out / "errors").to_pylist()
    by_video = {(e["video_id"], e["stage"]) for e in errs}
    assert ("P01_02", "video") in by_video                       # missing video file
    assert ("P01_01", "source") in by_video                      # malformed row
    assert manifest["counts"]["samples"] == 3 and manifest["counts"]["errors"] == 2
    assert all(e["error"] for e in errs)
    check_table_schema(pq.read_schema(next((out / "data").glob("*.parquet"))))
    # a truncated video and a missing pickle, clip by clip
    proc = ClipProcessor(_config(), hand_pose=FixedPose())
    rec = next(EpicKitchensSource(root).records())
    (root / "P01" / "hand-objects" / "P01_01.pkl").rename(root / "gone.pkl")
    o = proc.process(rec)
    assert o.error["stage"] == "contact_frame" and "P01_01.pkl" in o.error["error"]
    (root / "gone.pkl").rename(root / "P01" / "hand-objects" / "P01_01.pkl")
    vid = root / "P01" / "videos" / "P01_01.MP4"
    vid.write_bytes(vid.read_bytes()[: vid.stat().st_size // 3])
    o = proc.process(rec)
    assert o.error is not None and o.error["stage"] == "video", o


class Crash(Exception):
    pass


class CrashingProcessor(ClipProcessor):
    def __init__(self, *a, crash_after: int, **k):
        super().__init__(*a, **k)
        self.left = crash_after

    def process_many(self, records):
        if self.left <= 0:
            raise Crash("killed")
        self.left -= 1
        return super().process_many(records)


def _ids(out):
    t = pq.read_table(out / "data", columns=["sample_id"]).column("sample_id").to_pylist()
    return t


def test_interrupted_run_resumes_to_exactly_the_uninterrupted_ids(tmp_path):
    rows = tuple(f"P01_01_{k}" for k in range(6))
    root = tmp_path / "epic"
    _dataset(root, rows=rows)
    cfg = _config()
    clean = tmp_path / "clean"
    run_local(EpicKitchensSource(root), clean, cfg, batch_size=2, processor=ClipProcessor(cfg, hand_pose=FixedPose()))
    out = tmp_path / "resumed"
    with pytest.raises(Crash):
        run_local(EpicKitchensSource(root), out, cfg, batch_size=2,
                  processor=CrashingProcessor(cfg, hand_pose=FixedPose(), crash_after=2))
    half = done_ids(out)
    assert 0 < len(half) < len(done_ids(clean))
    calls = []

    class Counting(ClipProcessor):
        def process(self, record):
            calls.append(record.sample_id)
            return super().process(record)

    manifest = run_local(EpicKitchensSource(root), out, cfg, batch_size=2, processor=Counting(cfg, hand_pose=FixedPose()))
    assert not set(calls) & half                                  # finished clips were skipped
    assert sorted(_ids(out)) == sorted(_ids(clean)) and len(_ids(out)) == len(set(_ids(out)))
    assert done_ids(out) == done_ids(clean)
    assert manifest["counts"]["duplicate_sample_rows"] == 0
    assert sum(manifest["counts"]["contact_mapping"].values()) == manifest["counts"]["samples"]
    assert set(manifest["counts"]["contact_mapping"]) <= {"object", "background", "identity"}
    assert {s["schema_version"] for s in manifest["shards"]} == {SCHEMA_VERSION}
    assert manifest["counts"]["contact_points_source"] == {"grasp_centre": manifest["counts"]["samples"]}  # EPIC: skin
    # not only the ids: every column of every sample equals the uninterrupted run's
    rows = {name: sorted(pq.read_table(d / "data").to_pylist(), key=lambda r: r["sample_id"]) for name, d in
            (("clean", clean), ("resumed", out))}
    assert rows["resumed"] == rows["clean"]
    # a third run has nothing left to do
    assert list(pending(EpicKitchensSource(root).records(), out)) == []


def test_manifest_counts_the_mappings_of_a_folder_resumed_across_the_schema_upgrade(epic, tmp_path):
    """An output folder extracted before schema 2 and resumed after it: the manifest gives each shard's
    version and counts the old samples' mapping as not recorded (a null mapping likewise)."""
    from pipelines.stages.writer import write_batch, write_manifest

    root, _ = epic
    recs = list(EpicKitchensSource(root).records())
    row = ClipProcessor(_config(), hand_pose=FixedPose()).process(recs[0]).row
    old = write_batch(tmp_path, [row])[0]
    t = pq.read_table(old).drop_columns(["contact_mapping", "contact_points_source"])
    pq.write_table(t.replace_schema_metadata({**t.schema.metadata, b"deft.schema_version": b"1"}), old)
    write_batch(tmp_path, [{**row, "sample_id": "epic_kitchens-new", "action_id": "new"},
                           {**row, "sample_id": "epic_kitchens-none", "action_id": "none", "contact_mapping": None}])
    m = write_manifest(tmp_path)
    assert sorted(sh["schema_version"] for sh in m["shards"]) == [1, SCHEMA_VERSION]
    assert m["counts"]["contact_mapping"] == {row["contact_mapping"]: 1, "not recorded": 2}
    assert m["counts"]["contact_points_source"] == {row["contact_points_source"]: 2, "not recorded": 1}


def test_extract_batch_is_idempotent_for_a_retried_batch(epic, tmp_path):
    root, _ = epic
    recs = [r.to_row() for r in EpicKitchensSource(root).records()]
    out = tmp_path / "ray_like"
    fn = ExtractBatch(_config(), str(out), processor=ClipProcessor(_config(), hand_pose=FixedPose()))
    s1 = fn(pd.DataFrame(recs))
    s2 = fn(pd.DataFrame(recs))  # a retried task writes the same files again
    assert s1 == s2 and s1["status"].count("ok") == 3
    assert len(_ids(out)) == 3 and len(list((out / "data").glob("*.parquet"))) == 1


def test_a_retried_batch_with_another_outcome_replaces_its_files(epic, tmp_path):
    """A Ray task that wrote its batch, died before returning and was retried: when a clip fails on the
    retry (a transient error), the first attempt's sample of it must not survive beside the error row."""
    from pipelines.stages.writer import error_row, write_batch, write_manifest

    root, _ = epic
    proc = ClipProcessor(_config(), hand_pose=FixedPose())
    rows = [o.row for o in map(proc.process, EpicKitchensSource(root).records()) if o.row is not None]
    assert len(rows) == 3
    write_batch(tmp_path, rows, max_rows_per_shard=2)                      # attempt 1: all three succeed (2 shards)
    last = rows[-1]
    write_batch(tmp_path, rows[:-1], [error_row(last["sample_id"], "epic_kitchens", last["video_id"], "video",
                                                "MemoryError")], max_rows_per_shard=2)  # attempt 2
    m = write_manifest(tmp_path)
    assert m["counts"]["samples"] == 2 and m["counts"]["errors"] == 1 and m["counts"]["duplicate_sample_rows"] == 0
    assert len(list((tmp_path / "data").glob("*.parquet"))) == 1


def test_an_unreadable_shard_is_moved_aside_and_its_clips_redone(epic, tmp_path, caplog):
    from pipelines.stages.writer import done_ids, write_batch, write_manifest

    root, _ = epic
    proc = ClipProcessor(_config(), hand_pose=FixedPose())
    rows = [o.row for o in map(proc.process, EpicKitchensSource(root).records()) if o.row is not None]
    assert len(rows) == 3
    first = write_batch(tmp_path, rows[:1])[0]
    write_batch(tmp_path, rows[1:])
    first.write_bytes(b"")  # what a power loss can leave of a file whose data never reached the disk
    assert done_ids(tmp_path) == {r["sample_id"] for r in rows[1:]}
    assert "not a readable Parquet shard" in caplog.text and first.with_name(first.name + ".unreadable").exists()
    assert write_manifest(tmp_path)["counts"]["samples"] == 2


def test_a_clip_that_fails_again_on_retry_counts_with_its_latest_reason(tmp_path):
    """--retry-errors appends a new error row for a clip that fails again: the manifest and the quality
    report take the newest file's stage and reason, and count the clip once."""
    import os

    from pipelines.quality import load_samples
    from pipelines.stages.writer import error_row, write_batch, write_manifest

    old = write_batch(tmp_path, [], [error_row("s1", "epic_kitchens", "P01_01", "video", "file not found"),
                                     error_row("s2", "epic_kitchens", "P01_01", "video", "file not found")])[0]
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))           # written long before the retry
    write_batch(tmp_path, [], [error_row("s1", "epic_kitchens", "P01_01", "contact_points", "too few features")])
    m = write_manifest(tmp_path)
    assert m["counts"]["errors"] == 2 and m["counts"]["errors_by_stage"] == {"contact_points": 1, "video": 1}
    _, errs = load_samples(tmp_path)
    assert {e["sample_id"]: e["stage"] for e in errs}["s1"] == "contact_points"


def test_resume_checks_compare_what_changes_the_samples(tmp_path):
    """check_resumable: the resolved hand-pose backend, not whether it was named; paths and devices of the
    backends may differ between machines; fields an older manifest lacks count at their defaults; a run
    killed before its last manifest is checked through the first one (begin_manifest)."""
    import json

    from pipelines.stages.writer import begin_manifest, check_resumable

    out = tmp_path / "out"
    hoi = ExtractConfig(dataset="hoi4d")
    begin_manifest(out, hoi.as_dict(), {"root": "/a", "synthetic": {"dataset": "hoi4d", "seed": 2, "num_clips": 4}})
    check_resumable(out, ExtractConfig(dataset="hoi4d", hand_pose_backend="hoi4d").as_dict(),
                    {"root": "/elsewhere", "synthetic": {"dataset": "hoi4d", "seed": 2, "num_clips": 4}})  # moved data: fine
    with pytest.raises(ValueError, match="seed"):
        check_resumable(out, hoi.as_dict(), {"synthetic": {"dataset": "hoi4d", "seed": 3, "num_clips": 4}})
    epic = tmp_path / "epic"
    begin_manifest(epic, ExtractConfig(dataset="epic_kitchens", hand_pose_backend="frankmocap",
                                       hand_pose_options={"checkout": "/node1/frankmocap", "device": "cuda"}).as_dict(), {})
    check_resumable(epic, ExtractConfig(dataset="epic_kitchens", hand_pose_backend="frankmocap",
                                        hand_pose_options={"checkout": "/node2/frankmocap"}).as_dict(), {})
    with pytest.raises(ValueError, match="hand_pose_backend: 'frankmocap' there, 'mediapipe' now"):
        check_resumable(epic, ExtractConfig(dataset="epic_kitchens", hand_pose_backend="mediapipe").as_dict(), {})
    manifest = json.loads((epic / "manifest.json").read_text())
    del manifest["config"]["object_mapping"]   # written before that field existed
    (epic / "manifest.json").write_text(json.dumps(manifest))
    check_resumable(epic, ExtractConfig(dataset="epic_kitchens", hand_pose_backend="frankmocap").as_dict(), {})
    # use_masks: absent from manifests before pipeline 0.2.0, whose HOI4D points came from skin colour; it
    # changes only HOI4D's samples
    del manifest["config"]["use_masks"]
    (epic / "manifest.json").write_text(json.dumps(manifest))
    check_resumable(epic, ExtractConfig(dataset="epic_kitchens", hand_pose_backend="frankmocap").as_dict(), {})
    old_hoi = json.loads((out / "manifest.json").read_text())
    del old_hoi["config"]["use_masks"]
    (out / "manifest.json").write_text(json.dumps(old_hoi))
    same = {"synthetic": {"dataset": "hoi4d", "seed": 2, "num_clips": 4}}
    with pytest.raises(ValueError, match="use_masks: False there, True now"):
        check_resumable(out, hoi.as_dict(), same)
    check_resumable(out, ExtractConfig(dataset="hoi4d", use_masks=False).as_dict(), same)  # the job's --no-masks
