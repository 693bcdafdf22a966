"""`deft-robot show` (the contact sheet of a fine-tuning run's episodes) and the sheet `deft-robot finetune`
writes at the end of a run, on the simulator-free toy environment."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from robot.cli import main


def test_finetune_writes_the_sheet_and_show_redraws_it(tmp_path, capsys):
    rc = main(["finetune", "--task", "pick_cup", "--robot", "toy", "--size", "32x24", "--no-live", "--episodes", "4",
               "--warmup", "2", "--elites", "2", "--out", str(tmp_path)])
    assert rc == 0
    run_dir = tmp_path / "pick_cup" / "toy"
    assert "episodes.png" in capsys.readouterr().out
    first = Image.open(run_dir / "episodes.png")
    assert first.format == "PNG" and first.width > 4 * 32  # four tiles of two images side by side
    other = tmp_path / "sheets" / "pick_cup.png"
    rc = main(["show", "--task", "pick_cup", "--out", str(tmp_path), "--png", str(other), "--sort", "reward",
               "--columns", "2", "--thumb", "64"])
    out = capsys.readouterr().out
    assert rc == 0 and "4 of 4 episodes" in out and str(other) in out and "warning" not in out
    assert Image.open(other).width != first.width  # the layout asked for, not a copy of the finetune sheet
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
