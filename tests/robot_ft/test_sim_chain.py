"""The commands on the MuJoCo simulator (small: 2 episodes, 1 trial, tiny images)."""

from __future__ import annotations

import json
import logging

import pytest

pytest.importorskip("mujoco")
try:  # torchvision.models must be imported before MuJoCo's EGL rendering runs in the process
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

from robot.cli import main  # noqa: E402

logging.getLogger("robot.safety").setLevel(logging.ERROR)


@pytest.mark.slow
def test_sim_finetune_distill_eval(tmp_path):
    out = str(tmp_path)
    common = ["--task", "open_drawer", "--out", out]
    assert main(["finetune", *common, "--prior", "oracle", "--episodes", "2", "--warmup", "1", "--elites", "1",
                 "--size", "96x72", "--no-live"]) == 0
    lines = (tmp_path / "open_drawer" / "oracle" / "finetune" / "episodes.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    assert [r["episode"] for r in recs] == [1, 2] and all(0.0 <= r["reward"] <= 1.0 for r in recs)
    _check_contact_marks_land_on_the_object(recs[0], tmp_path / "open_drawer" / "oracle")
    assert main(["distill", *common, "--kind", "mean"]) == 0
    assert main(["eval", *common, "--policy", "mean", "--objects", "test", "--trials", "1"]) == 0
    doc = json.loads((tmp_path / "open_drawer" / "oracle" / "eval" / "mean_test.json").read_text())
    assert doc["trials"] == 1 and doc["prior"] == "oracle" and doc["objects"] == "test"
    assert doc["per_trial"][0]["variants"]                       # the test split's object variant is recorded
    trial = doc["per_trial"][0]                                  # its images and camera, for `deft-robot show`
    assert set(trial["images"]) == {"initial", "final"} and set(trial["camera"]) == {"K", "T_base_camera"}
    assert main(["show", *common, "--eval", "mean", "--objects", "test"]) == 0
    assert (tmp_path / "open_drawer" / "oracle" / "eval" / "mean_test.png").is_file()


def _check_contact_marks_land_on_the_object(line: dict, run_dir) -> None:
    """The camera each episode keeps projects the oracle's μ (on the drawer's handle) onto the drawer in I₀:
    the episode sheet's marks are where the grasp went, in the simulator's own image."""
    import numpy as np
    from PIL import Image

    from deft_core.finetune.episode_log import EpisodeRecord
    from deft_core.finetune.sheet import contact_pixels
    from robot.sim.world import SEGMENT_IDS
    from robot.sim_env import SimFinetuneEnv

    rec = EpisodeRecord.from_dict(line)
    pixels = contact_pixels(rec)
    assert set(pixels) == {"prior", "executed"}
    env = SimFinetuneEnv("open_drawer", image_size=(96, 72))
    try:
        mask = env.reset(rec.episode, rec.env_seed).extras["mask"] == SEGMENT_IDS["object"]
    finally:
        env.close()
    u, v = np.round(pixels["prior"]).astype(int)
    assert mask[max(0, v - 2):v + 3, max(0, u - 2):u + 3].any(), (pixels, np.argwhere(mask).mean(axis=0))
    sheet = Image.open(run_dir / "episodes.png")
    assert sheet.width >= 2 * (3 * 150)  # two tiles of three panels: I₀, the zoom around μ, the final image


@pytest.mark.slow
def test_finetune_and_eval_execute_the_given_trajectory(tmp_path, capsys):
    """--trajectory reaches the arm: with a τ that holds the wrist still, the oracle's drawer grasp (which
    opens the drawer with the scripted pull) leaves it shut; evaluation of the run replays the same τ,
    and a different τ for that run is refused."""
    import numpy as np

    from deft_core.trajectory import PostGraspTrajectory

    still = PostGraspTrajectory(np.zeros((40, 6)), task="open_drawer").save(tmp_path / "still.npz")
    out = str(tmp_path / "runs")
    common = ["--task", "open_drawer", "--out", out]
    assert main(["finetune", *common, "--prior", "oracle", "--episodes", "1", "--warmup", "1", "--elites", "1",
                 "--size", "96x72", "--no-live", "--trajectory", str(still), "--run", str(tmp_path / "runs" / "still")]) == 0
    assert main(["finetune", *common, "--prior", "oracle", "--episodes", "1", "--warmup", "1", "--elites", "1",
                 "--size", "96x72", "--no-live", "--run", str(tmp_path / "runs" / "scripted")]) == 0
    rec = {name: json.loads((tmp_path / "runs" / name / "finetune" / "episodes.jsonl").read_text().splitlines()[0])
           for name in ("still", "scripted")}
    assert rec["still"]["env_seed"] == rec["scripted"]["env_seed"]     # the same scene and grasp
    assert rec["scripted"]["success"] and not rec["still"]["success"]
    meta = json.loads((tmp_path / "runs" / "still" / "run_meta.json").read_text())
    assert meta["trajectory"] == PostGraspTrajectory.load(still).digest()
    assert (tmp_path / "runs" / "still" / "trajectory.npz").is_file()
    still.unlink()                                                        # the run has its own copy
    assert main(["eval", *common, "--policy", "affordance", "--run", str(tmp_path / "runs" / "still"), "--trials", "1"]) == 0
    assert main(["eval", *common, "--policy", "affordance", "--run", str(tmp_path / "runs" / "scripted"), "--trials", "1"]) == 0
    ev = {name: json.loads((tmp_path / "runs" / name / "eval" / "affordance_train.json").read_text())["per_trial"][0]
          for name in ("still", "scripted")}
    assert ev["still"]["seed"] == ev["scripted"]["seed"] and ev["scripted"]["success"] and not ev["still"]["success"]
    other = PostGraspTrajectory(np.full((40, 6), 1e-3), task="open_drawer").save(tmp_path / "other.npz")
    capsys.readouterr()
    assert main(["eval", *common, "--policy", "affordance", "--run", str(tmp_path / "runs" / "still"), "--trials", "1",
                 "--trajectory", str(other)]) == 2
    assert "a run is evaluated with its own τ" in capsys.readouterr().err
