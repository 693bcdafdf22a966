"""deft-robot finetune through its command line, on the simulator-free toy environment: resume after a
SIGKILL (each episode exactly once), the operator prompt fed bad answers on stdin, argument errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robot.cli import main

REPO = Path(__file__).resolve().parents[2]
TOY = ["--task", "pick_cup", "--robot", "toy", "--size", "32x24", "--no-live"]


def _lines(run_dir: Path) -> list[dict]:
    path = run_dir / "finetune" / "episodes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "robot.cli", "finetune", *TOY, "--reward", "operator", "--episodes", "5",
            "--warmup", "2", "--elites", "2", "--out", str(out), *extra]


def _env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def test_killed_run_resumes_with_every_episode_exactly_once(tmp_path):
    run_dir = tmp_path / "pick_cup" / "toy"
    proc = subprocess.Popen(_cmd(tmp_path), cwd=REPO, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        proc.stdin.write("0.2\n0.6\n")      # episodes 1 and 2; then the prompt of episode 3 waits for us
        proc.stdin.flush()
        seen = ""
        deadline = time.time() + 60
        while "episode 3 " not in seen and time.time() < deadline and proc.poll() is None:
            seen += proc.stdout.read(1)      # the prompt has no newline: read characters
        assert "episode 3 " in seen, seen
        proc.send_signal(signal.SIGKILL)     # killed while the operator is being asked about episode 3
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _lines(run_dir)
    assert [(r["episode"], r["reward"]) for r in before] == [(1, 0.2), (2, 0.6)]
    done = subprocess.run(_cmd(tmp_path), cwd=REPO, env=_env(), input="0.9\n0.1\n0.5\n", capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(2 resumed)" in done.stdout
    after = _lines(run_dir)
    assert [r["episode"] for r in after] == [1, 2, 3, 4, 5]
    assert [r["reward"] for r in after] == [0.2, 0.6, 0.9, 0.1, 0.5]
    assert after[:2] == before                                  # the first two lines were not rewritten
    assert (run_dir / "finetune.png").stat().st_size > 0
    # a third run of the finished log does nothing and asks nothing
    again = subprocess.run(_cmd(tmp_path), cwd=REPO, env=_env(), input="", capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "(5 resumed)" in again.stdout and len(_lines(run_dir)) == 5


def test_operator_prompt_reasks_bad_answers_and_void_redoes_the_episode(tmp_path, monkeypatch, capsys):
    answers = "abc\n1.5\n-0.1\nv\n0.4\n0.7\n"
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO(answers))
    rc = main(["finetune", *TOY, "--reward", "operator", "--episodes", "2", "--warmup", "1", "--elites", "1",
               "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "'abc' is not a number" in out and "'1.5' is outside [0, 1]" in out and "'-0.1' is outside [0, 1]" in out
    recs = _lines(tmp_path / "pick_cup" / "toy")
    assert [(r["episode"], r["attempt"], r["status"], r["reward"]) for r in recs] == [
        (1, 0, "void", None), (1, 1, "ok", 0.4), (2, 0, "ok", 0.7)]
    assert recs[0]["env_seed"] != recs[1]["env_seed"]            # the redo is a fresh reset


def test_five_voids_in_a_row_stop_cleanly_and_the_same_command_resumes(tmp_path, monkeypatch, capsys):
    args = ["finetune", *TOY, "--reward", "operator", "--episodes", "2", "--warmup", "1", "--elites", "1",
            "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("v\n" * 5))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "episode 1 was void 5 times in a row" in err and "run the same command again" in err
    assert "Traceback" not in err
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("v\n0.4\n0.7\n"))  # another day: it resumes
    assert main(args) == 0, capsys.readouterr().err
    recs = _lines(tmp_path / "pick_cup" / "toy")
    assert [(r["episode"], r["attempt"], r["status"]) for r in recs] == \
        [(1, a, "void") for a in range(6)] + [(1, 6, "ok"), (2, 0, "ok")]


def test_closed_stdin_is_a_clear_error_and_keeps_the_log(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("0.3\n"))
    rc = main(["finetune", *TOY, "--reward", "operator", "--episodes", "3", "--warmup", "1", "--elites", "1",
               "--out", str(tmp_path)])
    assert rc == 2
    assert "standard input closed" in capsys.readouterr().err
    assert [r["episode"] for r in _lines(tmp_path / "pick_cup" / "toy")] == [1]


def test_sim_reward_run_and_resume_refusal_names_the_field(tmp_path, capsys):
    args = ["finetune", *TOY, "--episodes", "3", "--warmup", "1", "--elites", "2", "--out", str(tmp_path)]
    assert main(args) == 0
    meta = json.loads((tmp_path / "pick_cup" / "toy" / "run_meta.json").read_text())
    assert meta["reward"] == "sim" and meta["episodes"] == 3 and meta["image_size"] == [32, 24]
    capsys.readouterr()
    assert main(args[:-4] + ["--elites", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "elites: run has 2, command has 1" in err


@pytest.mark.parametrize("argv, message", [
    (["--task", "pick_mug"], "unknown task 'pick_mug'"),
    (["--task", "pick_cup"], "choose a prior"),
    (["--task", "pick_cup", "--checkpoint", "/nonexistent/ckpt"], "not an exported affordance model"),
    (["--task", "pick_cup", "--prior", "affordance"], "--prior affordance needs --checkpoint"),
    (["--task", "pick_cup", "--prior", "oracle", "--episodes", "0"], "--episodes must be >= 1"),
    (["--task", "pick_cup", "--prior", "oracle", "--size", "big"], "--size must look like"),
    (["--task", "pick_cup", "--prior", "oracle", "--robot", "/nonexistent.yaml"], "'sim', 'toy' or an existing robot YAML"),
    (["--task", "pick_cup", "--robot", "toy", "--reward", "r3m", "--goal-image", "/nonexistent.png"], "--goal-image"),
    (["--task", "pick_cup", "--robot", "toy", "--reward", "resnet"], "needs a goal image"),
    (["--task", "pick_cup", "--robot", "toy", "--threads", "0"], "--threads must be >= 1"),
])
def test_argument_errors(tmp_path, capsys, argv, message):
    assert main(["finetune", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_embedding_reward_needs_local_weights(tmp_path, capsys):
    import cv2
    import numpy as np

    goal = tmp_path / "goal.png"
    cv2.imwrite(str(goal), np.zeros((24, 32, 3), np.uint8))
    assert main(["finetune", *TOY, "--reward", "r3m", "--goal-image", str(goal), "--out", str(tmp_path)]) == 2
    assert "needs --reward-weights FILE" in capsys.readouterr().err
    assert main(["finetune", *TOY, "--reward", "r3m", "--goal-image", str(goal), "--reward-weights",
                 str(tmp_path / "model.pt"), "--out", str(tmp_path)]) == 2
    assert "R3M weights not found" in capsys.readouterr().err


def test_demo_video_last_frame_is_the_goal(tmp_path):
    import av
    import numpy as np

    from robot.cli_finetune import load_goal_image

    demos = tmp_path / "_demos"
    demos.mkdir()
    with av.open(str(demos / "pick_cup.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for v in (0, 60, 200):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), v, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    args = type("A", (), {"goal_image": None, "demo_root": str(tmp_path), "task": "pick_cup", "reward": "r3m"})()
    img = load_goal_image(args)
    assert img.shape == (32, 32, 3) and abs(float(img.mean()) - 200) < 8


@pytest.mark.parametrize("argv", [
    ["finetune", *TOY, "--seed", "-1"], ["distill", "--task", "pick_cup", "--seed", "-2"],
    ["eval", "--task", "pick_cup", "--policy", "deft", "--eval-seed", "-1"],
    ["run-episode", "--task", "pick_cup", "--seed", "-1"], ["world", "--scene", "pick_cup", "--seed", "x"]])
def test_negative_or_non_integer_seeds_are_refused_before_anything_is_written(argv, tmp_path, capsys):
    """numpy refuses negative seeds; before, finetune wrote run_meta.json with seed -1 first, and that
    half-made run then refused the corrected command (seed: run has -1, command has 0)."""
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(tmp_path)] if argv[0] in ("finetune", "distill", "eval") else argv)
    assert exc.value.code == 2
    assert "must be a non-negative integer" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_warnings_are_one_line_not_python_source(tmp_path):
    """A resumed log with a torn last line: the CLI's warning is one 'warning: ...' line, not Python's
    'file:line: RuntimeWarning' followed by the warnings.warn source line."""
    cmd = [sys.executable, "-m", "robot.cli", "finetune", *TOY, "--episodes", "3", "--warmup", "1", "--elites", "1",
           "--out", str(tmp_path)]
    assert subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60).returncode == 0
    log = tmp_path / "pick_cup" / "toy" / "finetune" / "episodes.jsonl"
    log.write_bytes(log.read_bytes()[:-20])   # the last record cut mid-line
    res = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if "half-written" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "warnings.warn" not in res.stderr


def test_run_into_a_folder_that_is_not_a_run_is_refused_and_unused_reward_flags_are_named(tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    args = ["finetune", *TOY, "--episodes", "2", "--warmup", "1", "--elites", "1"]
    assert main([*args, "--run", str(model)]) == 2
    assert "is not a fine-tuning run (no run_meta.json)" in capsys.readouterr().err
    assert sorted(p.name for p in model.iterdir()) == ["config.json"]
    assert main([*args, "--out", str(tmp_path / "runs"), "--goal-image", str(tmp_path / "goal.png")]) == 0
    assert "--goal-image is used only by --reward r3m/resnet; ignored with --reward sim" in capsys.readouterr().err


def test_a_missing_run_names_the_finetune_command_that_makes_it(tmp_path, capsys):
    assert main(["eval", "--task", "pick_cup", "--policy", "real-world-only", "--out", str(tmp_path)]) == 2
    assert "run 'deft-robot finetune --task pick_cup --prior real-world-only' first" in capsys.readouterr().err


def test_lab_robot_options_in_simulation_are_named_as_ignored(tmp_path, capsys):
    args = ["finetune", *TOY, "--episodes", "2", "--warmup", "1", "--elites", "1", "--out", str(tmp_path)]
    assert main([*args, "--segmenter", "operator", "--object-prompt", "mug"]) == 0
    assert "--segmenter, --object-prompt only matter on a lab robot" in capsys.readouterr().err
    assert main(args) == 0
    assert "only matter on a lab robot" not in capsys.readouterr().err
