"""Sources on real annotation files (fixtures + the full shared copies when present) and hand-made trees."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.sources.base import ClipRecord, SourceError, open_source
from pipelines.sources.ego4d import Ego4DSource
from pipelines.sources.epic_kitchens import EpicKitchensSource, parse_timestamp, read_video_info
from pipelines.sources.filters import FilterConfig, FilterStats, apply_filters
from pipelines.sources.hoi4d import HOI4DSource, load_task_definitions, parse_sequence_path, task_text

FIX = Path(__file__).parent / "fixtures"
REAL = Path(__file__).resolve().parents[3] / "shared" / "reference" / "real-annotations"


def _epic_csvs():
    out = [FIX / "epic" / "EPIC_100_validation_excerpt.csv"]
    if (REAL / "epic-kitchens-100" / "EPIC_100_validation.csv").exists():
        out.append(REAL / "epic-kitchens-100" / "EPIC_100_validation.csv")
    return out


@pytest.mark.parametrize("csv_path", _epic_csvs(), ids=lambda p: p.name)
def test_every_real_epic_row_parses_with_its_videos_fps(csv_path):
    info_path = FIX / "epic" / "EPIC_100_video_info.csv"
    src = EpicKitchensSource("/data/epic", csv=csv_path, video_info=info_path)
    recs = list(src.records())
    with open(csv_path) as f:
        raw = list(csv.DictReader(f))
    fps = {r["video_id"]: float(r["fps"]) for r in csv.DictReader(open(info_path))}
    assert src.bad_rows == [] and len(recs) == len(raw)
    for rec, row in zip(recs, raw):
        assert rec.fps == pytest.approx(fps[row["video_id"]])
        assert (rec.first_frame, rec.last_frame) == (int(row["start_frame"]), int(row["stop_frame"]))
        # the CSV's frames agree with its timestamps at the inferred numbering rate (60 for EK-55 videos)
        t0 = parse_timestamp(row["start_timestamp"])
        assert abs(t0 * rec.numbering_rate - rec.first_frame) <= 3
        # ... and so does the stop, also for actions starting in the first half second (P17_02_0: 47.95 fps
        # video, EK-55 numbering at 60; judged on t0 ≈ 0 it got 47.95 and decoded its end 25 % late)
        t1 = parse_timestamp(row["stop_timestamp"])
        assert abs(t1 * rec.numbering_rate - rec.last_frame) <= 3, (row["narration_id"], rec.numbering_rate)
        assert abs(rec.decode_index(rec.first_frame) - t0 * rec.fps) <= 0.05 * rec.fps  # decoding goes through time
        assert rec.frame_base == 1 and rec.text == row["narration"]
        assert rec.contact["detections_path"].endswith(f"{row['video_id'].split('_')[0]}/hand-objects/{row['video_id']}.pkl")
    assert {round(r.fps, 2) for r in recs} >= {59.94, 29.97, 90.0}


def test_timestamps_both_formats_and_bad_values():
    assert parse_timestamp("00:00:01.089") == pytest.approx(1.089)
    assert parse_timestamp("00:01:02.37") == pytest.approx(62.37)
    assert parse_timestamp("01:00:00.00") == 3600
    with pytest.raises(ValueError, match="12:3"):
        parse_timestamp("12:3")


def test_epic_malformed_rows_become_source_errors(tmp_path):
    (tmp_path / "info.csv").write_text("video_id,duration,fps,resolution\nP01_101,10.0,50.0,1920x1080\n")
    (tmp_path / "ann.csv").write_text(
        "narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,narration,verb,noun\n"
        "P01_101_0,P01,P01_101,00:00:01.000,00:00:01.00,00:00:02.50,take cup,take,cup\n"
        "P01_101_1,P01,P01_101,00:00:01.000,bad,00:00:02.50,take cup,take,cup\n"
        "P99_01_0,P99,P99_01,00:00:01.000,00:00:01.00,00:00:02.50,take cup,take,cup\n")
    src = EpicKitchensSource(tmp_path, csv=tmp_path / "ann.csv", video_info=tmp_path / "info.csv")
    recs = list(src.records())
    assert [r.action_id for r in recs] == ["P01_101_0"]
    assert (recs[0].first_frame, recs[0].last_frame, recs[0].fps) == (51, 126, 50.0)  # frames from timestamps at 50 fps
    assert [e["stage"] for e in src.bad_rows] == ["source", "source"]
    assert "bad" in src.bad_rows[0]["error"] and "P99_01" in src.bad_rows[1]["error"]
    assert read_video_info(tmp_path / "info.csv")["P01_101"]["width"] == 1920


def test_epic_line_with_extra_fields_is_one_bad_row_not_the_end_of_the_listing(tmp_path):
    """A damaged line (a stray comma: more fields than the header) in the middle of the CSV: that row goes
    to bad_rows and every other row is still listed, in both passes (numbering rates, then the listing)."""
    (tmp_path / "info.csv").write_text("video_id,duration,fps,resolution\nP01_101,100.0,50.0,1920x1080\n")
    head = ("narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,start_frame,"
            "stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes\n")
    row = "P01_101_{i},P01,P01_101,00:00:{s:02d}.000,00:00:{s:02d}.00,00:00:{e:02d}.00,{f0},{f1},take cup,take,0,cup,1,['cup'],[1]\n"
    lines = [row.format(i=i, s=2 * i + 1, e=2 * i + 2, f0=(2 * i + 1) * 50 + 1, f1=(2 * i + 2) * 50 + 1) for i in range(6)]
    lines[3] = lines[3].replace("take cup", "take, cup")  # unquoted comma: 16 fields
    (tmp_path / "ann.csv").write_text(head + "".join(lines))
    src = EpicKitchensSource(tmp_path, csv=tmp_path / "ann.csv", video_info=tmp_path / "info.csv")
    recs = list(src.records())
    assert [r.action_id for r in recs] == [f"P01_101_{i}" for i in (0, 1, 2, 4, 5)]
    assert len(src.bad_rows) == 1 and "P01_101_3" in src.bad_rows[0]["error"] and "16 fields" in src.bad_rows[0]["error"]
    assert src.bad_rows[0]["video_id"] == "P01_101"


@pytest.mark.parametrize("text", ["", "a,b\n1,2,3,4\n\"unterminated\n", "\xff\xfe\x00garbage"])
def test_epic_unreadable_csvs_name_the_file(tmp_path, text):
    """An empty, malformed or binary annotation or video-info CSV: a SourceError naming the file, not pandas'
    bare 'No columns to parse' / tokenizer error."""
    from pipelines.sources.base import SourceError

    good_info = "video_id,duration,fps,resolution\nP01_101,10.0,50.0,1920x1080\n"
    (tmp_path / "bad.csv").write_bytes(text.encode("latin-1"))
    (tmp_path / "info.csv").write_text(good_info)
    src = EpicKitchensSource(tmp_path, csv=tmp_path / "bad.csv", video_info=tmp_path / "info.csv")
    with pytest.raises(SourceError, match=r"bad\.csv: (not a readable CSV|missing columns)"):
        list(src.records())
    with pytest.raises(SourceError, match=r"bad\.csv: (not a readable CSV|missing columns)"):
        read_video_info(tmp_path / "bad.csv")


def _release_lines():
    paths = [FIX / "hoi4d" / "release_excerpt.txt"]
    if (REAL / "hoi4d" / "release.txt").exists():
        paths.append(REAL / "hoi4d" / "release.txt")
    return paths


@pytest.mark.parametrize("release", _release_lines(), ids=lambda p: p.name)
def test_every_hoi4d_release_path_parses_and_resolves_to_text(release):
    lines = [l.strip() for l in release.read_text().splitlines() if l.strip()]
    src = HOI4DSource("/data/hoi4d", release=release)
    unresolved = []
    for line in lines:
        seq = parse_sequence_path(line)
        assert seq.path == line and seq.camera.startswith("ZY")
        try:
            text, verb, noun = src.text_for(seq)
            assert text == text.lower() and verb == text.split()[0] and noun
        except ValueError as exc:
            unresolved.append(str(exc))
    assert unresolved == []
    if release.name == "release.txt":
        assert len(lines) == 2971


def test_hoi4d_task_text_rules():
    defs = load_task_definitions()
    assert defs[2][0] == "Mug" and defs[2][1][1] == "Pick and place"
    assert task_text("Mug", "Pick and place") == "pick and place the mug"
    assert task_text("Mug", "Put it in the drawer") == "put the mug in the drawer"
    assert task_text("Storage Furniture", "Open and close the drawer") == "open and close the drawer"
    with pytest.raises(ValueError, match="not a HOI4D sequence path"):
        parse_sequence_path("ZY1/H1/C1")


def _hoi4d_tree(root: Path, old_format: bool = False) -> str:
    rel = "ZY20210800001/H1/C2/N01/S10/s01/T1"
    act = root / "HOI4D_annotations" / rel / "action"
    act.mkdir(parents=True)
    events = [{"event": "reach", "startTime": 0.5, "endTime": 2.0}, {"event": "grasp", "startTime": 2.0, "endTime": 4.0}]
    data = {"info": {"Duration" if old_format else "duration": 10.0}}  # markResult-era files capitalise it
    if old_format:
        data["markResult"] = {"marks": [{"event": e["event"], "hdTimeStart": e["startTime"], "hdTimeEnd": e["endTime"]} for e in events]}
    else:
        data["events"] = events
    (act / "color.json").write_text(json.dumps(data))
    (root / "handpose" / "refinehandpose_right" / rel).mkdir(parents=True)
    return rel


@pytest.mark.parametrize("old_format", [False, True])
def test_hoi4d_source_reads_a_tree_without_release_txt(tmp_path, old_format):
    rel = _hoi4d_tree(tmp_path, old_format)
    (recs,) = list(HOI4DSource(tmp_path).records())
    assert recs.video_id == rel and recs.fps == pytest.approx(30.0)  # 300 frames / 10 s
    assert (recs.first_frame, recs.last_frame) == (15, 120)
    assert recs.contact["grasp_frame"] == 60 and recs.text == "pick and place the mug" and recs.hand_hint == "right"


def test_hoi4d_frame_count_survives_missing_pickles_and_prefers_the_video(tmp_path):
    """Frames 0-14 of a 47-frame sequence have no hand-pose pickle (a partial download): the frame count
    is the highest pickle's frame + 1, not the number of pickles (which gave 32 frames: a wrong fps, so a
    wrong contact frame and clip end, silently); with the video present its header's count decides; without
    info.duration the video's own rate is used."""
    from deft_core.video import VideoWriter

    rel = _hoi4d_tree(tmp_path)
    hand = tmp_path / "handpose" / "refinehandpose_right" / rel
    for f in range(15, 47):
        (hand / f"{f}.pickle").write_bytes(b"")
    (rec,) = list(HOI4DSource(tmp_path).records())
    assert rec.fps == pytest.approx(4.7) and rec.contact["grasp_frame"] == round(2.0 * 4.7)   # 47 frames / 10 s
    video = tmp_path / "HOI4D_release" / rel / "align_rgb" / "image.mp4"
    video.parent.mkdir(parents=True)
    with VideoWriter(video, 15) as w:
        w.append(np.zeros((60, 32, 48, 3), np.uint8))
    (rec,) = list(HOI4DSource(tmp_path).records())
    assert rec.fps == pytest.approx(6.0) and rec.last_frame == 24                             # 60 frames / 10 s
    color = tmp_path / "HOI4D_annotations" / rel / "action" / "color.json"
    doc = json.loads(color.read_text())
    del doc["info"]
    color.write_text(json.dumps(doc))
    (rec,) = list(HOI4DSource(tmp_path).records())
    assert rec.fps == pytest.approx(15.0) and rec.contact["grasp_frame"] == 30


def test_hoi4d_sequences_listed_but_not_downloaded_are_counted_not_errors(tmp_path):
    """The real release.txt lists 2,971 sequences; with a subset downloaded the others are a skip count,
    while a downloaded sequence missing its action file stays an error."""
    rel = _hoi4d_tree(tmp_path)
    broken = "ZY20210800001/H1/C2/N01/S10/s02/T1"
    (tmp_path / "HOI4D_release" / broken / "align_rgb").mkdir(parents=True)
    (tmp_path / "release.txt").write_text(f"{rel}\r\nZY20210800004/H4/C13/N50/S234/s02/T1\r\n{broken}\r\n"
                                          "ZY20210800004/H4/C8/N14/S71/s03/T2\r\n")
    src = HOI4DSource(tmp_path)
    assert [r.video_id for r in src.records()] == [rel]
    assert src.skipped == {"listed in release.txt, not downloaded": 2}
    assert len(src.bad_rows) == 1 and "no action/color.json" in src.bad_rows[0]["error"] and broken in src.bad_rows[0]["error"]


def _ego4d_json(path: Path) -> None:
    def action(uid, text, **kw):
        a = {"uid": uid, "narration_text": text, "is_valid_action": True, "is_rejected": False,
             "is_invalid_annotation": False, "stage": 3, "start_frame": 100, "end_frame": 200,
             "structured_verb": "pick_up", "critical_frames": {"pre_45": 110, "pnr_frame": 160, "contact_frame": 150},
             "frames": [{"frame_type": "contact_frame", "frame_number": 150, "boxes": [
                 {"object_type": "right_hand", "structured_noun": None, "instance_number": 1, "bbox": {"x": 10, "y": 20, "width": 30, "height": 40}},
                 {"object_type": "object_of_change", "structured_noun": "cup", "instance_number": 1, "bbox": {"x": 35, "y": 30, "width": 50, "height": 50}}]}]}
        a.update(kw)
        return a
    nopnr = action("a6", "#C C opens tap", critical_frames={"pre_45": 110, "contact_frame": None, "pnr_frame": 170})
    acts = [action("a1", "#C C picks up the cup"), action("a2", "#O man picks a cup"), action("a3", "#C C x", is_rejected=True),
            action("a4", "#C C y", stage=None), action("a5", "#C C z", critical_frames=None), nopnr,
            action("a7", "#C C broken", frames=[{"frame_type": "contact_frame", "frame_number": 150, "boxes": [{"object_type": "tool"}]}]),
            action("a8", "#C C malformed", critical_frames="pnr_frame=160")]
    # nulls the annotators leave in frames the clip does not need cost nothing; "#c C" is the camera wearer too
    a9 = action("a9", "#c C picks up the mug")
    a9["frames"] = a9["frames"] + [{"frame_type": "pre_45", "frame_number": None, "boxes": []},
                                   {"frame_type": "post_frame", "frame_number": 190, "boxes": [{"object_type": "tool", "bbox": None}]},
                                   {"frame_type": None, "frame_number": 160, "boxes": [
                                       {"object_type": "right_hand", "bbox": {"x": 12, "y": 22, "width": 30, "height": 40}}]}]
    acts.append(a9)
    path.write_text(json.dumps({"version": "2", "videos": [{"video_uid": "vid0", "video_metadata": {"fps": 30, "width": 1920, "height": 1080},
                                                            "annotated_intervals": [{"narrated_actions": acts}]}]}))


def test_ego4d_source_filters_and_fallbacks(tmp_path):
    (tmp_path / "v2" / "annotations").mkdir(parents=True)
    _ego4d_json(tmp_path / "v2" / "annotations" / "fho_main.json")
    src = open_source("ego4d", str(tmp_path))
    recs = {r.action_id: r for r in src.records()}
    assert sorted(recs) == ["a1", "a6", "a9"]
    a9 = recs["a9"].contact["boxes"]
    assert a9["contact_frame"]["right_hand"] == [[10.0, 20.0, 40.0, 60.0]] and "pre_45" not in a9
    assert a9["post_frame"] == {"frame_number": 190}                                  # its null box skipped
    assert a9["pnr_frame"]["right_hand"] == [[12.0, 22.0, 42.0, 62.0]]              # typed by its frame number
    assert recs["a1"].contact["contact_frame"] == 150 and recs["a6"].contact["contact_frame"] == 170  # pnr fallback
    assert recs["a1"].contact["boxes"]["contact_frame"]["right_hand"] == [[10.0, 20.0, 40.0, 60.0]]
    assert recs["a1"].hand_hint == "right" and recs["a1"].video_path.endswith("v2/full_scale/vid0.mp4")
    assert src.skipped == {"not a camera-wearer narration": 1, "rejected": 1, "stage is None": 1, "no critical frames": 1}
    assert [e["stage"] for e in src.bad_rows] == ["source", "source"] and "a7" in src.bad_rows[0]["error"]
    assert "a8" in src.bad_rows[1]["error"] and "critical_frames is a str" in src.bad_rows[1]["error"]
    back = ClipRecord.from_row(recs["a1"].to_row())
    assert back == recs["a1"]


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_ego4d_annotations_are_a_source_error_naming_the_file(tmp_path, cut):
    """A half-downloaded fho_main.json: the (streaming) listing stops with a SourceError, not an ijson error."""
    path = tmp_path / "v2" / "annotations" / "fho_main.json"
    path.parent.mkdir(parents=True)
    _ego4d_json(path)
    text = path.read_text()
    path.write_text(text[:int(len(text) * cut)])
    with pytest.raises(SourceError, match=r"fho_main\.json: truncated or malformed JSON") as exc:
        list(open_source("ego4d", str(tmp_path)).records())
    assert "\n" not in str(exc.value)  # one line


def test_ego4d_file_without_a_videos_list_is_a_source_error_not_an_empty_dataset(tmp_path):
    path = tmp_path / "v2" / "annotations" / "fho_main.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": "2", "clips": [{"clip_uid": "c1", "videos": []}]}))  # 'videos' nested only
    with pytest.raises(SourceError, match=r"fho_main\.json: no top-level 'videos' list"):
        list(open_source("ego4d", str(tmp_path)).records())
    path.write_text(json.dumps({"version": "2", "videos": []}))  # a real, empty listing
    assert list(open_source("ego4d", str(tmp_path)).records()) == []


@pytest.mark.parametrize("layout", ["empty", "ego4d", "camera-folder-only", "empty-release"])
def test_hoi4d_root_without_sequences_is_a_source_error(tmp_path, layout):
    if layout == "ego4d":
        (tmp_path / "v2" / "annotations").mkdir(parents=True)
        _ego4d_json(tmp_path / "v2" / "annotations" / "fho_main.json")
    elif layout == "camera-folder-only":
        (tmp_path / "HOI4D_release" / "ZY20210800001").mkdir(parents=True)
    elif layout == "empty-release":
        (tmp_path / "release.txt").write_text("\n")
    with pytest.raises(SourceError, match="no HOI4D sequence"):
        list(open_source("hoi4d", str(tmp_path)).records())


def test_filters_count_what_they_remove():
    def rec(i, n, text="take cup", hint=None):
        return ClipRecord("epic_kitchens", "P01_01", str(i), "v.mp4", 50.0, 1, n, text=text, hand_hint=hint)
    recs = [rec(0, 100), rec(1, 3), rec(2, 100, hint="left"), rec(3, 100, text=" "), rec(4, 100, hint="right")]
    stats = FilterStats()
    kept = list(apply_filters(recs, FilterConfig(min_duration_s=0.5), stats))
    assert [r.action_id for r in kept] == ["0", "4"]
    assert stats.as_dict() == {"read": 5, "kept": 2, "removed": {"too_short": 1, "not_right_hand": 1, "no_text": 1}}
