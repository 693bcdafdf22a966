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
    assert main(["distill", *common, "--kind", "mean"]) == 0
    assert main(["eval", *common, "--policy", "mean", "--objects", "test", "--trials", "1"]) == 0
    doc = json.loads((tmp_path / "open_drawer" / "oracle" / "eval" / "mean_test.json").read_text())
    assert doc["trials"] == 1 and doc["prior"] == "oracle" and doc["objects"] == "test"
    assert doc["per_trial"][0]["variants"]                       # the test split's object variant is recorded
