"""`deft data synth` / `deft data show`: argument errors, overwrite protection, the contact sheet; video I/O."""

import argparse
from fractions import Fraction

import numpy as np
import pytest

from deft_core.cli_util import CommandError
from pipelines.cli import main
from pipelines.synth import cli_synth
from pipelines.synth.generate import OutputExistsError, generate_dataset, plan_clips
from deft_core.video import fps_to_rational, write_video
from tests.synth import readers as R
from tests.synth.fakes import fake_render_clip, fake_render_demo


def _args(**kw):
    base = dict(dataset="ego4d", out="x", clips=2, seed=0, corrupt=0, width=64, height=48, no_demos=True, overwrite=False)
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize("kw, msg", [({"clips": 0}, "--clips"), ({"corrupt": 3}, "--corrupt"), ({"corrupt": -1}, "--corrupt"),
                                     ({"width": 63}, "--width"), ({"height": 8}, "--height"), ({"seed": -2}, "--seed"),
                                     ({"width": 100000}, "--width must be an even number of pixels from 16 to 4096")])
def test_bad_arguments_are_named(kw, msg, tmp_path):
    with pytest.raises(CommandError, match=msg):
        cli_synth.run(_args(out=str(tmp_path / "o"), **kw), render_fn=fake_render_clip)


def test_unknown_dataset_exits_with_usage(capsys):
    with pytest.raises(SystemExit):
        main(["data", "synth", "kinetics", "--out", "x"])
    assert "invalid choice" in capsys.readouterr().err


def test_overwrite_protection(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(CommandError, match="not empty.*--overwrite"):
        cli_synth.run(_args(out=str(out)), render_fn=fake_render_clip)
    with pytest.raises(CommandError, match="does not look like a generated dataset"):
        cli_synth.run(_args(out=str(out), overwrite=True), render_fn=fake_render_clip)
    assert (out / "keep.txt").read_text() == "precious"
    fresh = tmp_path / "gen"
    assert cli_synth.run(_args(out=str(fresh)), render_fn=fake_render_clip) == 0
    with pytest.raises(OutputExistsError):
        generate_dataset("ego4d", fresh, clips=1, render_fn=fake_render_clip, demos=False)
    assert cli_synth.run(_args(out=str(fresh), overwrite=True, clips=1), render_fn=fake_render_clip) == 0
    assert len(list((fresh / "_groundtruth").glob("*.npz"))) == 1


def test_overwrite_never_deletes_a_project_folder_that_holds_a_dataset(tmp_path):
    """A project folder with a generated dataset inside next to other work: --overwrite pointed at the project
    (not the dataset) is refused, naming what it would have deleted; 'synth all' replaces only a folder of
    its own datasets."""
    proj = tmp_path / "proj"
    assert cli_synth.run(_args(out=str(proj / "ego4d"), clips=1), render_fn=fake_render_clip) == 0
    (proj / "shards").mkdir()
    (proj / "NOTES.txt").write_text("precious")
    for dataset in ("ego4d", "all"):
        with pytest.raises(CommandError, match="does not look like a generated dataset.*NOTES.txt, shards"
                           if dataset == "all" else "does not look like a generated dataset"):
            cli_synth.run(_args(dataset=dataset, out=str(proj), overwrite=True, clips=1), render_fn=fake_render_clip)
        assert (proj / "NOTES.txt").read_text() == "precious" and (proj / "ego4d" / "_groundtruth").is_dir()
    every = tmp_path / "all"
    assert cli_synth.run(_args(dataset="all", out=str(every), clips=1), render_fn=fake_render_clip) == 0
    assert cli_synth.run(_args(dataset="all", out=str(every), clips=2, overwrite=True), render_fn=fake_render_clip) == 0
    assert len(list((every / "hoi4d" / "_groundtruth").glob("*.npz"))) == 2


def test_synth_all_writes_three_datasets(tmp_path, capsys):
    out = tmp_path / "all"
    assert cli_synth.run(_args(dataset="all", out=str(out), clips=2, no_demos=False), render_fn=fake_render_clip,
                         demo_fn=fake_render_demo) == 0
    for name in ("ego4d", "epic_kitchens", "hoi4d"):
        assert (out / name / "_groundtruth" / "manifest.json").is_file()
        assert len(list((out / name / "_demos").glob("*.mp4"))) == 9
    assert "clips/min" in capsys.readouterr().out


def test_plan_mix():
    plans = plan_clips("epic_kitchens", 40, seed=1)
    assert sum(p.hand_side == "left" for p in plans) == 4 and sum(not p.has_contact for p in plans) == 4
    assert {p.task for p in plans} == set(__import__("deft_core.tasks", fromlist=["TASK_NAMES"]).TASK_NAMES)
    assert {"train", "test"} == {p.object_split for p in plans}
    assert plans == plan_clips("epic_kitchens", 40, seed=1)  # reproducible
    for p in plans:  # clips of one EPIC video share its fps
        assert all(q.fps == p.fps for q in plans if q.video_id == p.video_id)


@pytest.mark.parametrize("dataset", ["ego4d", "epic_kitchens", "hoi4d"])
def test_show_draws_a_sheet(dataset, request, tmp_path, capsys):
    root = request.getfixturevalue({"ego4d": "ego4d_root", "epic_kitchens": "epic_root", "hoi4d": "hoi4d_root"}[dataset])
    out = tmp_path / "sheet.png"
    assert main(["data", "show", str(root), "--out", str(out), "--clips", "2"]) == 0
    import cv2

    img = cv2.imread(str(out))
    assert img.shape[0] > 96 * 2 and img.shape[1] >= 160 * 3
    text = capsys.readouterr().out
    assert f"{dataset}: 2 clips drawn" in text and "problem" in text  # corrupted inputs are reported


def test_show_rejects_unknown_layout(tmp_path):
    assert main(["data", "show", str(tmp_path), "--out", str(tmp_path / "s.png")]) == 2


def test_show_names_a_truncated_ego4d_annotation_file(tmp_path, capsys):
    path = tmp_path / "v2" / "annotations" / "fho_main.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"videos": [{"video_uid": "v0", "annotated_intervals": [{"narrated_')  # cut mid-download
    assert main(["data", "show", str(tmp_path), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: truncated or malformed JSON" in err and "Traceback" not in err


@pytest.mark.parametrize("fps, exact", [(59.94, Fraction(60000, 1001)), (29.97, Fraction(30000, 1001)), (50, Fraction(50)),
                                        (30.0, Fraction(30))])
def test_video_fps_and_frames_exact(fps, exact, tmp_path):
    import decord

    assert fps_to_rational(fps) == exact
    frames = np.random.default_rng(0).integers(0, 255, (17, 48, 64, 3), dtype=np.uint8)
    path = tmp_path / "v.mp4"
    write_video(path, frames, fps)
    p = R.ffprobe(path)
    assert p["frames"] == 17 and p["fps"] == exact and p["pix_fmt"] == "yuv420p"
    vr = decord.VideoReader(str(path))
    assert len(vr) == 17 and vr.get_avg_fps() == pytest.approx(float(exact), abs=1e-3)


def test_video_rejects_odd_size(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "v.mp4", np.zeros((2, 47, 64, 3), np.uint8), 30)


def test_an_error_inside_a_video_writer_block_is_the_one_raised(tmp_path):
    """`with VideoWriter(...)`: an error before the first frame is reported as itself, not replaced by
    the writer's own 'no frames to write' from closing (which had hidden a NameError in a test)."""
    from deft_core.video import VideoWriter

    with pytest.raises(KeyError, match="the real cause"):
        with VideoWriter(tmp_path / "v.mp4", 15):
            raise KeyError("the real cause")
    with pytest.raises(ValueError, match="no frames to write"):   # a block that wrote nothing, without error
        with VideoWriter(tmp_path / "w.mp4", 15):
            pass


def test_video_encoding_is_reproducible(tmp_path):
    """The same frames give the same bytes (libx264's defaults — threads, CPU-dependent code — did not: a
    rendered dataset, and all that is extracted and trained from it, differed between two runs of the
    same seed; this test failed 1 in 1 on the development machine before ``X264_REPRODUCIBLE``)."""
    import hashlib

    y, x = np.mgrid[0:256, 0:456]
    frames = np.stack([np.stack([(x + 7 * t) % 256, (y * 2 + 3 * t) % 256, (x + y + t * 11) % 256], -1)
                       for t in range(40)]).astype(np.uint8)
    frames[:, 100:160, 200:260] = np.random.default_rng(1).integers(0, 255, (40, 60, 60, 3), dtype=np.uint8)
    digests = set()
    for i in range(6):
        write_video(tmp_path / f"v{i}.mp4", frames, 30)
        digests.add(hashlib.sha1((tmp_path / f"v{i}.mp4").read_bytes()).hexdigest())
    assert len(digests) == 1, f"{len(digests)} different files from 6 encodings of the same frames"


def test_output_paths_that_cannot_be_written_are_one_line_errors(tmp_path, capsys):
    """--out under a file, onto an existing file, or without an image suffix: exit 2 naming the path (they
    were FileExistsError / NotADirectoryError / cv2 tracebacks)."""
    from pipelines.cli import main

    blocker = tmp_path / "afile"
    blocker.write_text("")
    assert main(["data", "synth", "ego4d", "--out", str(blocker / "sub"), "--clips", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{blocker / 'sub'}: Not a directory" in err and "Traceback" not in err
    assert main(["data", "show", str(tmp_path), "--out", str(tmp_path / "sheet")]) == 2
    assert "give an image file name ending in .png or .jpg" in capsys.readouterr().err


def test_show_on_the_parent_of_synth_all_names_its_datasets(tmp_path, capsys):
    from pipelines.cli import main

    out = tmp_path / "all"
    assert cli_synth.run(_args(dataset="all", out=str(out), clips=1), render_fn=fake_render_clip) == 0
    assert main(["data", "show", str(out), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert "it holds datasets: give one of" in err and str(out / "hoi4d") in err
