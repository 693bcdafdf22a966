"""`deft-robot show` (the contact sheet of a fine-tuning run's episodes) and the sheet `deft-robot finetune`
writes at the end of a run, on the simulator-free toy environment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robot.cli import main


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_finetune_writes_the_sheet_and_show_redraws_it(tmp_path, capsys):
    from deft_core.finetune.episode_log import open_run
    from deft_core.finetune.sheet import SheetLayout, render_sheet

    rc = main(["finetune", "--task", "pick_cup", "--robot", "toy", "--size", "32x24", "--no-live", "--episodes", "4",
               "--warmup", "2", "--elites", "2", "--out", str(tmp_path)])
    assert rc == 0
    run_dir = tmp_path / "pick_cup" / "toy"
    assert "episodes.png" in capsys.readouterr().out
    _, records = open_run(run_dir / "finetune")
    standard = render_sheet(run_dir / "finetune", records, 2, title="pick_cup: toy (seed 0)")
    assert len(standard.tiles) == 4 and np.array_equal(_pixels(run_dir / "episodes.png"), np.asarray(standard.image))
    other = tmp_path / "sheets" / "pick_cup.png"
    rc = main(["show", "--task", "pick_cup", "--out", str(tmp_path), "--png", str(other), "--sort", "reward",
               "--columns", "2", "--thumb", "64"])
    out = capsys.readouterr().out
    assert rc == 0 and "4 of 4 episodes" in out and str(other) in out and "warning" not in out
    asked = render_sheet(run_dir / "finetune", records, 2, title="pick_cup: toy (seed 0)", sort="reward",
                         layout=SheetLayout(thumb=64, columns=2))
    assert np.array_equal(_pixels(other), np.asarray(asked.image))  # the view asked for
    # another view without --png gets its own name: the standard sheet (the one the report lists) stays
    before = (run_dir / "episodes.png").read_bytes()
    assert main(["show", "--task", "pick_cup", "--out", str(tmp_path), "--sort", "reward", "--max", "2"]) == 0
    assert (run_dir / "episodes-reward-max2.png").is_file() and (run_dir / "episodes.png").read_bytes() == before
    assert "episodes-reward-max2.png" in capsys.readouterr().out
    # images lost from a copied run: drawn grey, named, exit 0
    (run_dir / "finetune" / "images" / "k0001_a0_initial.png").unlink()
    assert main(["show", "--task", "pick_cup", "--out", str(tmp_path)]) == 0
    assert "warning: 1 image(s) drawn grey — k 1 initial: no such file" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--task", "pick_cup"], "no fine-tuning run of 'pick_cup'"),
    (["--task", "pick_cupp"], "pick_cupp"),
    (["--task", "pick_cup", "--run", "RUN", "--png", "sheet.jpg"], "give a file name ending in .png"),
    (["--task", "pick_cup", "--run", "RUN"], "has no episodes yet"),
])
def test_show_errors_are_one_line(tmp_path, capsys, argv, message):
    run_dir = tmp_path / "runs" / "pick_cup" / "toy"
    (run_dir / "finetune").mkdir(parents=True)
    meta = {"format": "deft-robot-run", "task": "pick_cup", "prior": "toy", "reward": "sim", "robot": "toy",
            "split": "train", "seed": 0, "image_size": [32, 24], "checkpoint": None, "episodes": 4, "warmup": 2,
            "elites": 2, "trajectory": None, "extra": {}}
    (run_dir / "run_meta.json").write_text(json.dumps(meta))
    (run_dir / "finetune" / "run.json").write_text(json.dumps({"task": "pick_cup"}))
    argv = [a.replace("RUN", str(run_dir)) for a in argv]
    rc = main(["show", *argv, "--out", str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------------------------------ evaluations


def _toy_run_with_eval(tmp_path) -> tuple[str, Path]:
    out = str(tmp_path)
    assert main(["finetune", "--task", "pick_cup", "--robot", "toy", "--size", "32x24", "--no-live", "--episodes", "4",
                 "--warmup", "2", "--elites", "2", "--out", out]) == 0
    assert main(["distill", "--task", "pick_cup", "--kind", "mean", "--out", out]) == 0
    assert main(["eval", "--task", "pick_cup", "--policy", "mean", "--objects", "test", "--trials", "3",
                 "--out", out]) == 0
    return out, tmp_path / "pick_cup" / "toy" / "eval"


def test_eval_keeps_each_trials_images_and_show_draws_them(tmp_path, capsys):
    from deft_core.finetune.toy_env import ToyEnv

    out, eval_dir = _toy_run_with_eval(tmp_path)
    doc = json.loads((eval_dir / "mean_test.json").read_text())
    written_by_eval = (eval_dir / "mean_test.png").read_bytes()  # eval draws the sheet when it finishes
    for t in doc["per_trial"]:
        assert t["images"] == {"initial": f"images/mean_test/t{t['trial']:04d}_initial.png",
                               "final": f"images/mean_test/t{t['trial']:04d}_final.png"}
        assert t["camera"] is None  # the toy environment has no camera
        initial = np.asarray(Image.open(eval_dir / t["images"]["initial"]))
        # that trial's own I₀
        assert np.array_equal(initial, ToyEnv(image_size=(24, 32)).reset(t["trial"], t["seed"]).image)
    capsys.readouterr()
    assert main(["show", "--task", "pick_cup", "--out", out, "--eval", "mean", "--objects", "test"]) == 0
    printed = capsys.readouterr().out
    assert f"{doc['successes']} of 3 trials succeeded" in printed and "warning" not in printed
    from robot.cli_show import trial_sheet

    drawn = trial_sheet(doc, eval_dir / "mean_test.json")
    assert [n for n, _, _ in drawn.tiles] == [1, 2, 3] and drawn.unreadable == []
    assert np.array_equal(_pixels(eval_dir / "mean_test.png"), np.asarray(drawn.image))
    assert (eval_dir / "mean_test.png").read_bytes() == written_by_eval  # show's defaults draw the same sheet


def test_show_eval_names_what_is_missing(tmp_path, capsys):
    out, eval_dir = _toy_run_with_eval(tmp_path)
    capsys.readouterr()
    assert main(["show", "--task", "pick_cup", "--out", out, "--eval", "mean"]) == 2  # train objects: not evaluated
    err = capsys.readouterr().err
    assert "no evaluation" in err and "mean_train.json" in err and "evaluations in" in err and "mean_test" in err
    # an evaluation begun, no trial finished yet
    (eval_dir / "mean_train.partial.jsonl").write_text("")
    assert main(["show", "--task", "pick_cup", "--out", out, "--eval", "mean"]) == 2
    assert "no trial has finished yet" in capsys.readouterr().err
    # an evaluation stopped part-way (or a lab evaluation still running): the trials so far, and how to finish it
    doc = json.loads((eval_dir / "mean_test.json").read_text())
    line = {"format": "deft-eval-partial", "version": 1, "identity": {"trials": 10}, "result": doc["per_trial"][0]}
    (eval_dir / "mean_train.partial.jsonl").write_text(json.dumps(line) + "\n" + '{"format": "deft-ev')  # torn tail
    assert main(["show", "--task", "pick_cup", "--out", out, "--eval", "mean"]) == 0
    said = capsys.readouterr().out
    assert "not finished (1 of 10 trials" in said and "resumes it" in said and "mean_train.png" in said
    from robot.cli_show import trial_sheet

    so_far = trial_sheet({"task": "pick_cup", "policy": "mean", "objects": "train", "trials": 1, "partial_of": 10,
                          "per_trial": [doc["per_trial"][0]]}, eval_dir / "mean_train.json")
    assert len(so_far.tiles) == 1 and so_far.unreadable == []
    assert np.array_equal(_pixels(eval_dir / "mean_train.png"), np.asarray(so_far.image))
    # an evaluation made before trial images were kept
    for t in doc["per_trial"]:
        t.pop("images"), t.pop("camera")
    (eval_dir / "mean_test.json").write_text(json.dumps(doc))
    assert main(["show", "--task", "pick_cup", "--out", out, "--eval", "mean", "--objects", "test"]) == 2
    err = capsys.readouterr().err
    assert "kept no trial images" in err and len(err.strip().splitlines()) == 1


def test_the_report_lists_the_contact_sheets_of_each_task(tmp_path):
    out, eval_dir = _toy_run_with_eval(tmp_path)
    assert main(["distill", "--task", "pick_cup", "--kind", "deft", "--steps", "5", "--out", out]) == 0
    assert main(["eval", "--task", "pick_cup", "--policy", "deft", "--objects", "test", "--trials", "2",
                 "--out", out]) == 0
    assert main(["report", "--runs", out, "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    section = md.split("## Contact sheets (`deft-robot show`)")[1]
    assert f"`{tmp_path / 'pick_cup' / 'toy' / 'episodes.png'}`" in section
    assert f"`{eval_dir / 'deft_test.png'}`" in section
    assert "mean_test.png" not in section  # Table 2's columns only: the prior alone, DEFT, real-world-only


def test_the_sheet_finetune_writes_includes_void_attempts(tmp_path, monkeypatch):
    import io
    import sys

    from deft_core.finetune.episode_log import open_run
    from deft_core.finetune.sheet import render_sheet

    monkeypatch.setattr(sys, "stdin", io.StringIO("v\n0.4\n0.7\n"))  # episode 1 void once, then scored
    assert main(["finetune", "--task", "pick_cup", "--robot", "toy", "--size", "32x24", "--no-live", "--reward",
                 "operator", "--episodes", "2", "--warmup", "1", "--elites", "1", "--out", str(tmp_path)]) == 0
    run = tmp_path / "pick_cup" / "toy"
    _, records = open_run(run / "finetune")
    assert [r.status for r in records] == ["void", "ok", "ok"]
    written = np.asarray(Image.open(run / "episodes.png"))
    title = "pick_cup: toy (seed 0)"
    every = np.asarray(render_sheet(run / "finetune", records, 1, title=title).image)
    ok_only = np.asarray(render_sheet(run / "finetune", [r for r in records if r.status == "ok"], 1, title=title).image)
    assert np.array_equal(written, every) and not np.array_equal(written, ok_only)


def test_eval_draws_no_sheet_for_trials_that_kept_no_images(tmp_path):
    """Every trial resumed from a partial log made before images were kept: no all-grey sheet, a note instead."""
    from robot.cli_eval import _write_trial_sheet

    out, eval_dir = _toy_run_with_eval(tmp_path)
    doc = json.loads((eval_dir / "mean_test.json").read_text())
    (eval_dir / "mean_test.png").unlink()
    old = {**doc, "per_trial": [{k: v for k, v in t.items() if k not in ("images", "camera")} for t in doc["per_trial"]]}
    assert _write_trial_sheet(old, eval_dir / "mean_test.json") == " (no trial images kept: no contact sheet)"
    assert not (eval_dir / "mean_test.png").exists()
    partly = {**doc, "per_trial": [old["per_trial"][0], *doc["per_trial"][1:]]}  # one trial resumed from such a log
    note = _write_trial_sheet(partly, eval_dir / "mean_test.json")
    assert note.startswith(f", {eval_dir / 'mean_test.png'} (2 image(s) drawn grey: trial 1 initial: not recorded")
