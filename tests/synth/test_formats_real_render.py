"""End to end with the real MuJoCo renderer: tiny resolution, two clips (slow)."""

import json

import pytest

from pipelines.synth.generate import generate_dataset
from pipelines.synth.writers.groundtruth import read_clip_records
from tests.synth import readers as R


@pytest.mark.slow
def test_real_renderer_ego4d(tmp_path):
    pytest.importorskip("mujoco")
    root = tmp_path / "ego4d"
    s = generate_dataset("ego4d", root, clips=2, seed=0, width=160, height=96, demos=False)
    assert s.clips == 2
    doc = json.loads((root / "v2/annotations/fho_main.json").read_text())
    for v in doc["videos"]:
        assert R.ffprobe(root / "v2/full_scale" / f"{v['video_uid']}.mp4")["frames"] == v["video_metadata"]["num_frames"]
    for rec in read_clip_records(root):
        assert rec["action_start"] <= rec["contact_frame"] <= rec["action_end"]
