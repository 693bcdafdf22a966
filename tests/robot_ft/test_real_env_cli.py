"""``deft-robot finetune --robot CONFIG.yaml`` through its command line on the ``fake`` backends, with the
operator's answers (scene reset, typed object box, score) scripted on stdin: a full run, a run whose
stdin closes mid-way and resumes, an unreachable robot (nothing written), a segmenter without weights."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from robot.cli import main

from test_real_env import FAKE_YAML, write_yaml  # noqa: E402  (same directory, rootdir sys.path)


# the fake camera (320x240) shows its red object at x 120..200, y 90..150
BOX = "120 90 200 150"


def _run(monkeypatch, capsys, tmp_path, stdin: str, yaml_text: str = FAKE_YAML, *extra: str):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = main(["finetune", "--task", "pick_cup", "--prior", "real-world-only", "--robot", str(write_yaml(tmp_path, yaml_text)),
               "--segmenter", "operator", "--episodes", "3", "--warmup", "1", "--elites", "1", "--out",
               str(tmp_path / "runs"), *extra])
    return rc, capsys.readouterr()


def _episodes(tmp_path) -> list[dict]:
    path = tmp_path / "runs" / "pick_cup" / "real-world-only" / "finetune" / "episodes.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(autouse=True)
def _fast_clock(monkeypatch):
    """The fake devices answer instantly: skip the executor's settle/close waits (wall-clock sleeps)."""
    monkeypatch.setattr("robot.executor.Clock.sleep", lambda self, s: None)


def test_finetune_on_fake_robot_from_the_cli_and_resume_after_stdin_closes(monkeypatch, capsys, tmp_path):
    # each attempt: Enter (release warning), Enter (scene reset), the box, a score
    # episode 1: a bad box then the box, a score; episode 2: the box, then stdin closes
    rc, out = _run(monkeypatch, capsys, tmp_path, f"\n\n10 10 10 10\n{BOX}\n0.4\n\n\n{BOX}\n")
    assert rc == 2 and "standard input closed" in out.err, out.err
    assert "empty or under" in out.out                       # the bad box was explained and re-asked
    assert [(r["episode"], r["reward"]) for r in _episodes(tmp_path)] == [(1, 0.4)]
    run_dir = tmp_path / "runs" / "pick_cup" / "real-world-only"
    meta = json.loads((run_dir / "run_meta.json").read_text())
    assert meta["robot"].endswith("robot.yaml") and meta["reward"] == "operator"
    assert (run_dir / "box_request.png").is_file()           # what the operator looked at
    rc, out = _run(monkeypatch, capsys, tmp_path, f"\n\n{BOX}\n0.7\n\n\n{BOX}\nv\n\n\n{BOX}\n0.2\n")
    assert rc == 0, out.err
    assert "(1 resumed)" in out.out
    recs = _episodes(tmp_path)
    assert [(r["episode"], r["status"]) for r in recs] == [(1, "ok"), (2, "ok"), (3, "void"), (3, "ok")]
    assert [r["reward"] for r in recs if r["status"] == "ok"] == [0.4, 0.7, 0.2]
    assert all(r["info"]["box_source"] == "operator" for r in recs)
    assert np.allclose(recs[0]["xi"][:3], [0.4, 0.0, 0.1], atol=0.01)  # the typed box's centre, lifted with depth


@pytest.mark.parametrize("device,yaml_edit,address", [
    ("arm", ("arm: {backend: fake}", "arm: {backend: xarm, ip: 127.0.0.1, use_controller_boundary: false}"), "127.0.0.1"),
    ("hand", ("hand: {backend: fake}", "hand: {backend: dynamixel, port: /dev/ttyDEFT_missing}"), "/dev/ttyDEFT_missing"),
])
def test_unreachable_robot_names_its_address_and_writes_nothing(monkeypatch, capsys, tmp_path, device, yaml_edit, address):
    rc, out = _run(monkeypatch, capsys, tmp_path, "", FAKE_YAML.replace(*yaml_edit))
    assert rc == 2
    assert f"cannot connect the {device}" in out.err and address in out.err and "robot.yaml" in out.err, out.err
    assert not (tmp_path / "runs").exists()


def test_text_segmenter_without_weights_fails_before_the_robot_starts(monkeypatch, capsys, tmp_path):
    rc, out = _run(monkeypatch, capsys, tmp_path, "", FAKE_YAML, "--segmenter", "text", "--detector-weights",
                   str(tmp_path / "no_owl"))
    assert rc == 2 and "no_owl" in out.err and "--segmenter operator" in out.err, out.err
    assert not (tmp_path / "runs").exists()


def test_oracle_prior_and_bad_yaml_are_refused(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    yaml_path = write_yaml(tmp_path, FAKE_YAML)
    assert main(["finetune", "--task", "pick_cup", "--prior", "oracle", "--robot", str(yaml_path)]) == 2
    assert "simulator's state" in capsys.readouterr().err
    bad = write_yaml(tmp_path, FAKE_YAML.replace("arm: {backend: fake}", "arm: {backend: fake, speed: 3}"))
    assert main(["finetune", "--task", "pick_cup", "--prior", "real-world-only", "--robot", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "robot.yaml" in err and "speed" in err, err


def test_terminal_judge_reasks_until_y_or_n(monkeypatch, capsys):
    from robot.cli_operator import judge

    monkeypatch.setattr("sys.stdin", io.StringIO("maybe\nY\n"))
    out = judge("pick_cup")
    assert out.success and out.reward == 1.0 and "type y or n" in capsys.readouterr().out


def test_eval_on_fake_robot_asks_the_operator_for_each_outcome(monkeypatch, capsys, tmp_path):
    """``deft-robot eval`` of a lab-robot run: each trial's outcome comes from the operator (a bad answer
    re-asked), the result lands in the run's eval/ folder, and ``--objects both`` is refused (one split at a
    time: the operator places the objects)."""
    rc, out = _run(monkeypatch, capsys, tmp_path, "".join(f"\n\n{BOX}\n0.5\n" for _ in range(3)))
    assert rc == 0, out.err
    evaluate = ["eval", "--task", "pick_cup", "--policy", "affordance", "--prior", "real-world-only",
                "--out", str(tmp_path / "runs"), "--segmenter", "operator", "--trials", "2"]
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main([*evaluate, "--objects", "both"]) == 2
    assert "one split at a time" in capsys.readouterr().err
    # trial 1: Enter (release), Enter (reset), box, 'maybe' (re-asked), y; trial 2: ..., n
    monkeypatch.setattr("sys.stdin", io.StringIO(f"\n\n{BOX}\nmaybe\ny\n\n\n{BOX}\nn\n"))
    rc = main([*evaluate, "--objects", "train"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "type y or n" in out.out
    doc = json.loads((tmp_path / "runs" / "pick_cup" / "real-world-only" / "eval" / "affordance_train.json").read_text())
    assert [t["success"] for t in doc["per_trial"]] == [True, False] and doc["successes"] == 1


def test_the_bundled_dry_run_config_runs_the_documented_dry_run(monkeypatch, capsys, tmp_path, caplog):
    """docs/finetune-cli.md's step 0 as written: robot/configs/lab_fake.yaml, the §5 baseline, typed boxes
    and operator scores — the run completes; the summary, distill and the report say successes are not
    recorded (an operator scores, it does not judge success) instead of counting every episode a failure;
    stdin closing mid-run leaves the robot safe once, with no failed retreat of a stopped arm logged."""
    import logging

    from robot.config import example_config_path

    text = example_config_path("lab_fake").read_text()
    caplog.set_level(logging.WARNING, logger="robot.real_env")
    rc, out = _run(monkeypatch, capsys, tmp_path, f"\n\n{BOX}\n0.4\n\n\n{BOX}\n", text)
    assert rc == 2 and "standard input closed" in out.err and "Traceback" not in out.err + out.out
    assert not [r for r in caplog.records if "leaving the robot safe" in r.getMessage()], caplog.text
    rc, out = _run(monkeypatch, capsys, tmp_path, f"\n\n{BOX}\n0.7\n\n\n{BOX}\n0.9\n", text)
    assert rc == 0, out.err
    assert "successes not recorded (operator scores)" in out.out
    runs = str(tmp_path / "runs")
    assert main(["distill", "--task", "pick_cup", "--prior", "real-world-only", "--kind", "mean", "--out", runs]) == 0
    printed = capsys.readouterr().out
    assert "mean reward 0.67 (operator scores: successes not recorded)" in printed and "warning" not in printed
    assert main(["report", "--runs", runs, "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    # before a cVAE is distilled, the elites are the top E (= 1 here) by reward
    assert "| pick_cup | real-world-only | not recorded | 0 | 0.67 → 0.67 | mean reward 0.90 of 1 |" in md


def test_calibrating_a_hand_the_backend_cannot_take_is_refused(capsys, tmp_path):
    """The fake hand has no joint→motor map: calibrate-hand must not write scale/offset into its YAML
    (the next finetune would refuse the file) — it is refused and the file is left as it was."""
    from robot.config import example_config_path

    cfg = tmp_path / "lab_fake.yaml"
    cfg.write_text(example_config_path("lab_fake").read_text())
    before = cfg.read_text()
    joint = np.random.default_rng(0).uniform(0, 1.2, (10, 16))
    pairs = {"pairs": [{"motor": (1.1 * j + 3.0).tolist(), "joint": j.tolist()} for j in joint]}
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    assert main(["calibrate-hand", "--pairs", str(tmp_path / "pairs.json"), "--config", str(cfg)]) == 2
    assert "unknown field" in capsys.readouterr().err
    assert cfg.read_text() == before


def test_a_run_keeps_the_yamls_geometry_and_refuses_other_geometry(monkeypatch, capsys, tmp_path):
    """The YAML's executor/retarget sections are recorded in the run's meta; after the YAML changes, both
    resuming the fine-tuning and evaluating the run are refused, naming the section (its residuals were
    learned in the old geometry)."""
    yaml_text = FAKE_YAML + "executor: {contact_offset: [0.0, 0.0, 0.02]}\n"
    rc, out = _run(monkeypatch, capsys, tmp_path, f"\n\n{BOX}\n0.4\n", yaml_text)
    assert rc == 2 and "standard input closed" in out.err, out.err   # one episode, then stdin closes
    meta = json.loads((tmp_path / "runs" / "pick_cup" / "real-world-only" / "run_meta.json").read_text())
    assert meta["extra"] == {"robot_geometry": {"executor": {"contact_offset": [0.0, 0.0, 0.02]}}}
    moved = FAKE_YAML + "executor: {contact_offset: [0.0, 0.0, 0.04]}\n"
    rc, out = _run(monkeypatch, capsys, tmp_path, f"\n\n{BOX}\n0.4\n", moved)
    assert rc == 2 and "belongs to a different run" in out.err and "robot_geometry" in out.err, out.err
    assert len(_episodes(tmp_path)) == 1
    monkeypatch.setattr("sys.stdin", io.StringIO(f"\n\n{BOX}\ny\n"))
    rc = main(["eval", "--task", "pick_cup", "--policy", "affordance", "--prior", "real-world-only", "--out",
               str(tmp_path / "runs"), "--segmenter", "operator", "--trials", "1", "--objects", "train"])
    err = capsys.readouterr().err
    run_dir = tmp_path / "runs" / "pick_cup" / "real-world-only"
    assert rc == 2 and f"the executor section(s) differ from those the run {run_dir} was fine-tuned with" in err, err
    assert not (tmp_path / "runs" / "pick_cup" / "real-world-only" / "eval" / "affordance_train.json").exists()


def test_run_episode_on_the_lab_robot_uses_the_yaml_geometry_and_asks_like_eval(monkeypatch, capsys, tmp_path):
    """One operator-judged episode: the YAML's executor section places the grasp (as finetune and eval do),
    bad answers are re-asked with the reason, a closed stdin is a one-line error."""
    import io

    from test_real_env import FAKE_YAML  # noqa: E402  (same directory, rootdir sys.path)

    monkeypatch.setattr("robot.executor.Clock.sleep", lambda self, s: None)
    params = tmp_path / "grasp.json"
    params.write_text(json.dumps({"mu": [0.4, 0.0, 0.1], "theta": [3.14159, 0.0, 0.0], "hand": [0.5] * 16}))
    heights = {}
    for name, extra in (("default", ""), ("offset", "executor: {contact_offset: [0, 0, 0.05]}\n")):
        robot = tmp_path / f"{name}.yaml"
        robot.write_text(FAKE_YAML + extra)
        monkeypatch.setattr("sys.stdin", io.StringIO("maybe\nyes\nv\nnan\n0.6\n"))
        out = tmp_path / name
        assert main(["run-episode", "--task", "pick_cup", "--robot", str(robot), "--params", str(params),
                     "--out", str(out)]) == 0
        said = capsys.readouterr().out
        assert "'maybe': type y or n" in said and "cannot be voided" in said and "not a finite number" in said
        result = json.loads((out / "result.json").read_text())
        assert result["success"] is True and result["reward"] == 0.6
        heights[name] = result["report"]["grasp_pose"]["position"][2]
    # palm 1 cm (lab default) or 5 cm (the YAML) behind μ along the downward wrist z: above μ
    assert heights["default"] == pytest.approx(0.11, abs=1e-3) and heights["offset"] == pytest.approx(0.15, abs=1e-3)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert main(["run-episode", "--task", "pick_cup", "--robot", str(tmp_path / "default.yaml"), "--params", str(params),
                 "--out", str(tmp_path / "closed")]) == 2
    err = capsys.readouterr().err
    assert "standard input closed while waiting for the reward; nothing was written" in err and "Traceback" not in err
