"""robot.runs.relocate_checkpoint / relocate_robot without a robot: the messages a moved run gets."""

from __future__ import annotations

import json

import pytest

from robot.runs import CHECKPOINT_DIGEST, RunError, RunMeta, checkpoint_digest, relocate_checkpoint, relocate_robot


def _model(path, weights=b"w"):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"format": "deft.affordance"}))
    (path / "model.safetensors").write_bytes(weights)
    return path


def _meta(ckpt, digest=True, robot="sim"):
    extra = {CHECKPOINT_DIGEST: checkpoint_digest(ckpt)} if digest else {}
    return RunMeta(task="pick_cup", prior="affordance", reward="sim", robot=robot, checkpoint=str(ckpt.resolve()),
                   extra=extra)


def test_a_moved_model_is_found_by_digest_and_another_is_refused(tmp_path):
    meta = _meta(_model(tmp_path / "old"))
    (tmp_path / "old").rename(tmp_path / "new")
    with pytest.raises(RunError, match=r"not there any more .*pass --run RUN --checkpoint DIR"):
        relocate_checkpoint(meta, "RUN")
    assert relocate_checkpoint(meta, "RUN", tmp_path / "new").checkpoint == str((tmp_path / "new").resolve())
    with pytest.raises(RunError, match="holds another model"):
        relocate_checkpoint(meta, "RUN", _model(tmp_path / "other", b"x"))


def test_a_run_without_a_digest_is_told_it_cannot_be_moved(tmp_path):
    meta = _meta(_model(tmp_path / "old"), digest=False)
    (tmp_path / "old").rename(tmp_path / "new")
    with pytest.raises(RunError) as exc:
        relocate_checkpoint(meta, "RUN")
    assert "records no digest" in str(exc.value) and "--checkpoint" not in str(exc.value)
    with pytest.raises(RunError, match=r"records no digest .*as a new run"):
        relocate_checkpoint(meta, "RUN", tmp_path / "new")


def test_runs_without_a_model_refuse_checkpoint_and_sim_runs_ignore_robot(tmp_path):
    meta = RunMeta(task="pick_cup", prior="real-world-only", reward="sim", robot="sim")
    assert relocate_checkpoint(meta, "RUN") is meta
    with pytest.raises(RunError, match="drop --checkpoint"):
        relocate_checkpoint(meta, "RUN", _model(tmp_path / "m"))
    assert relocate_robot(meta, "RUN", "sim") is meta


def test_a_lab_runs_yaml_moved(tmp_path):
    (tmp_path / "a.yaml").write_text("name: x\n")
    meta = RunMeta(task="pick_cup", prior="real-world-only", reward="operator", robot=str(tmp_path / "a.yaml"))
    assert relocate_robot(meta, "RUN") is meta and relocate_robot(meta, "RUN", "sim") is meta
    (tmp_path / "a.yaml").rename(tmp_path / "b.yaml")
    with pytest.raises(RunError, match="a.yaml, which is not there any more.*pass --robot"):
        relocate_robot(meta, "RUN")
    assert relocate_robot(meta, "RUN", str(tmp_path / "b.yaml")).robot == str(tmp_path / "b.yaml")
    with pytest.raises(RunError, match="no such robot YAML"):
        relocate_robot(meta, "RUN", str(tmp_path / "typo.yaml"))
