"""The lab-robot environment with the ``affordance`` prior: a tiny randomly initialised affordance export
(real predictor and checkpoint loader), the fake robot and camera: the contact pixel falls in the object
box and is lifted onto the object's top face in the robot base frame; the grasp executes."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deft_core.affordance import save_export  # noqa: E402
from deft_core.affordance.config import get_preset  # noqa: E402
from deft_core.affordance.model import AffordanceModel  # noqa: E402
from robot.real_env import Operator, RealFinetuneEnv  # noqa: E402

from test_real_env import NoSleepClock, RedBoxLocator, write_yaml  # noqa: E402  (same directory, rootdir sys.path)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    torch.set_num_threads(1)
    p = get_preset("tiny")
    p.model.image_size, p.model.text_encoder, p.model.text_dim = 64, "hash:64", 64  # hashed text: test stand-in
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("aff")
    save_export(d, AffordanceModel(p.model).eval(), {"rows": 0}, {"note": "robot_ft test"}, {})
    return d


def test_affordance_prior_on_the_fake_robot(export_dir, tmp_path):
    env = RealFinetuneEnv(write_yaml(tmp_path), "pick_cup", Operator(confirm=lambda m: None), prior="affordance",
                          checkpoint=export_dir, locator=RedBoxLocator(), clock=NoSleepClock())
    try:
        obs = env.reset(1, 0)
        x1, y1, x2, y2 = obs.extras["object_box"]
        xi = env.prior(obs)
        pred = env._predictor.predict(obs.image, obs.extras["object_box"], env.task_def.text)
        u, v = pred.contact_mean
        assert x1 <= u <= x2 and y1 <= v <= y2
        # camera 0.8 m above (0.4, 0): pixel (u, v) at depth 0.7 m → base x = 0.4 − 0.7 (v − cy)/fy, y = −0.7 (u − cx)/fx
        K = obs.extras["K"]
        expect = [0.4 - 0.7 * (v - K[1, 2]) / K[1, 1], -0.7 * (u - K[0, 2]) / K[0, 0], 0.1]
        assert np.allclose(xi.mu, expect, atol=0.01), (xi.mu, expect)
        assert np.all(np.isfinite(xi.theta)) and xi.hand.shape == (16,)
        out = env.execute(xi)
        assert out.info["error"] is None and out.info["prior"] == "affordance"
    finally:
        env.close()


def test_the_yamls_retarget_section_reaches_the_prior(export_dir, tmp_path):
    """``retarget`` in the robot YAML corrects the prior's hand: scale 0 and offset c give the hand c on every
    joint (clipped to the hand's limits) whatever the model predicts; without it the joint map is unchanged."""
    from deft_core.retarget import hand_joint_limits
    from test_real_env import FAKE_YAML

    yaml_text = FAKE_YAML + f"retarget: {{scale: {[0] * 16}, offset: {[0.5] * 16}}}\n"
    hands = {}
    for name, text in (("plain", FAKE_YAML), ("retarget", yaml_text)):
        (tmp_path / name).mkdir()
        env = RealFinetuneEnv(write_yaml(tmp_path / name, text), "pick_cup", Operator(confirm=lambda m: None),
                              prior="affordance", checkpoint=export_dir, locator=RedBoxLocator(), clock=NoSleepClock())
        try:
            hands[name] = env.prior(env.reset(1, 0)).hand
        finally:
            env.close()
    lo, hi = hand_joint_limits()
    assert np.allclose(hands["retarget"], np.clip(0.5, lo, hi))
    assert not np.allclose(hands["plain"], hands["retarget"])


def test_a_run_refuses_its_affordance_model_exported_again_into_the_same_folder(export_dir, tmp_path, monkeypatch, capsys):
    """The run records which export it was made from (a digest, not only the path): resuming or evaluating
    it after another model was exported into that folder is refused by name; a run made before the digest
    was recorded still resumes."""
    import io
    import json
    import shutil

    from robot.cli import main

    monkeypatch.setattr("robot.executor.Clock.sleep", lambda self, s: None)
    model = tmp_path / "model"
    shutil.copytree(export_dir, model)
    box = "120 90 200 150"  # the fake camera's red object
    cmd = ["finetune", "--task", "pick_cup", "--checkpoint", str(model), "--robot", str(write_yaml(tmp_path)),
           "--segmenter", "operator", "--episodes", "2", "--warmup", "1", "--elites", "1", "--out", str(tmp_path / "runs")]
    monkeypatch.setattr("sys.stdin", io.StringIO(f"\n\n{box}\n0.5\n"))
    assert main(cmd) == 2   # stdin closes in episode 2: one episode kept
    run = tmp_path / "runs" / "pick_cup" / "affordance"
    meta = json.loads((run / "run_meta.json").read_text())
    assert len(meta["extra"]["checkpoint_digest"]) == 16
    # another model exported into the same folder
    p = get_preset("tiny")
    p.model.image_size, p.model.text_encoder, p.model.text_dim = 64, "hash:64", 64
    torch.manual_seed(1)
    save_export(model, AffordanceModel(p.model).eval(), {"rows": 0}, {"note": "another"}, {})
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(f"\n\n{box}\n0.5\n"))
    assert main(cmd) == 2
    err = capsys.readouterr().err
    assert "exported again since" in err and str(model) in err and "Traceback" not in err
    assert main(["eval", "--task", "pick_cup", "--policy", "affordance", "--run", str(run), "--segmenter", "operator",
                 "--objects", "train", "--trials", "1"]) == 2
    assert "exported again since" in capsys.readouterr().err
    # a run made before the digest was recorded resumes (with the model that is there now)
    del meta["extra"]["checkpoint_digest"]
    (run / "run_meta.json").write_text(json.dumps(meta))
    monkeypatch.setattr("sys.stdin", io.StringIO(f"\n\n{box}\n0.5\n"))
    assert main(cmd) == 0, capsys.readouterr().err
    assert "checkpoint_digest" not in json.loads((run / "run_meta.json").read_text())["extra"]


def test_runs_moved_with_their_model_resume_and_evaluate_with_the_new_path(export_dir, tmp_path, monkeypatch, capsys):
    """Runs record their model's and their robot YAML's absolute paths. A run moved together with both
    (another machine, a renamed data folder, a new checkout) resumes and evaluates given ``--checkpoint`` and
    ``--robot`` at the new places, the model checked by digest; without them the error names the flag;
    ``--prior`` still picks the run; another model is refused; run_meta.json is not rewritten."""
    import io
    import json
    import shutil

    from robot.cli import main

    monkeypatch.setattr("robot.executor.Clock.sleep", lambda self, s: None)
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(export_dir, old / "model")
    write_yaml(old)
    box = "120 90 200 150"  # the fake camera's red object

    def finetune(root):
        return ["finetune", "--task", "pick_cup", "--checkpoint", str(root / "model"), "--robot", str(root / "robot.yaml"),
                "--segmenter", "operator", "--episodes", "2", "--warmup", "1", "--elites", "1",
                "--run", str(root / "runs" / "pick_cup" / "mine")]

    monkeypatch.setattr("sys.stdin", io.StringIO(f"\n\n{box}\n0.5\n"))
    assert main(finetune(old)) == 2  # stdin closes in episode 2: one episode kept
    shutil.move(old, new)
    run = new / "runs" / "pick_cup" / "mine"
    meta_text = (run / "run_meta.json").read_text()
    assert json.loads(meta_text)["checkpoint"] == str((old / "model").resolve())
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(f"\n\n{box}\n0.5\n"))
    assert main(finetune(new)) == 0, capsys.readouterr().err  # resumes: episode 2 only
    assert "1 resumed" in capsys.readouterr().out
    assert (run / "run_meta.json").read_text() == meta_text
    # --prior names the run (not a new 'affordance' run); each moved path asks for its flag
    evaluate = ["eval", "--task", "pick_cup", "--policy", "affordance", "--out", str(new / "runs"), "--prior", "mine",
                "--segmenter", "operator", "--objects", "train", "--trials", "1"]
    assert main(evaluate) == 2
    err = capsys.readouterr().err
    assert "not there any more" in err and f"--run {run} --checkpoint" in err and "Traceback" not in err, err
    evaluate += ["--checkpoint", str(new / "model")]
    assert main(evaluate) == 2
    err = capsys.readouterr().err
    assert "robot.yaml, which is not there any more" in err and "pass --robot" in err, err
    monkeypatch.setattr("sys.stdin", io.StringIO(f"\n\n{box}\ny\n"))
    assert main([*evaluate, "--robot", str(new / "robot.yaml")]) == 0, capsys.readouterr().err
    doc = json.loads((run / "eval" / "affordance_train.json").read_text())
    assert doc["successes"] == 1 and doc["prior_checkpoint"] == str((new / "model").resolve())
    assert not (new / "runs" / "pick_cup" / "affordance").exists()
    # another model where the run's model should be: refused by digest, nothing run
    p = get_preset("tiny")
    p.model.image_size, p.model.text_encoder, p.model.text_dim = 64, "hash:64", 64
    torch.manual_seed(2)
    save_export(new / "other", AffordanceModel(p.model).eval(), {"rows": 0}, {"note": "another"}, {})
    capsys.readouterr()
    evaluate[evaluate.index("--checkpoint") + 1] = str(new / "other")
    assert main([*evaluate, "--robot", str(new / "robot.yaml")]) == 2
    assert "holds another model" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    cmd = finetune(new)
    cmd[cmd.index("--checkpoint") + 1] = str(new / "other")
    assert main(cmd) == 2
    assert "holds another model" in capsys.readouterr().err
    # a YAML whose executor settings differ is another robot set-up, moved or not
    (new / "changed.yaml").write_text((new / "robot.yaml").read_text() + "executor: {contact_offset: [0.0, 0.0, 0.05]}\n")
    cmd = finetune(new)
    cmd[cmd.index("--robot") + 1] = str(new / "changed.yaml")
    assert main(cmd) == 2
    assert "belongs to a different run" in capsys.readouterr().err
