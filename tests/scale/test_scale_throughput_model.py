"""The throughput model's projection arithmetic (the measuring parts run on demand, not in tests)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tm():
    spec = importlib.util.spec_from_file_location("throughput_model", ROOT / "benchmarks" / "throughput_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_projection_arithmetic(tm):
    cpu = {"a": {"clips_ok": 2, "median_s_per_clip": {"total": 1.0, "video": 0.5}},
           "b": {"clips_ok": 0, "median_s_per_clip": {}}}
    decode = {"width": 100, "height": 100, "s_per_frame": 0.01}
    gpu = {"hand_object": {"s_per_image": 0.1}, "object_boxes": {"s_per_image": 0.2}, "hand_pose": {"s_per_image": None}}
    counts = {"a": {"used_clips": 100, "raw_clips": 200}, "b": {"used_clips": 10, "raw_clips": None}}
    p = tm.project(cpu, decode, gpu, counts, detect_fps=10, clip_s={"a": 2.0, "b": 1.0}, decode_res=(200, 100),
                   cores=10, gpus=2, target_h=1.0)
    assert p["gpu_stages_unknown"] == ["hand_pose"]
    ann = p["scenarios"]["annotations"]
    # a: 1.0 + 0.5 * (2 - 1) = 1.5 CPU s per clip (frames at twice the pixels); b borrows a's cost
    assert ann["per_dataset"]["a"]["cpu_s_per_clip"] == pytest.approx(1.5)
    assert ann["per_dataset"]["b"]["cpu_cost_borrowed"] is True
    assert ann["cpu_core_hours"] == pytest.approx(round((200 * 1.5 + 10 * 1.5) / 3600, 2))
    assert ann["gpu_hours"] == pytest.approx(round(110 * 0.2 / 3600, 2))
    raw = p["scenarios"]["raw_video"]["per_dataset"]["a"]
    assert raw["model_frames_per_clip"] == 20
    assert raw["cpu_s_per_clip"] == pytest.approx(1.5 + 20 * 0.02)
    assert raw["gpu_s_per_clip"] == pytest.approx(0.2 + 20 * 0.1)
    assert p["scenarios"]["annotations"]["gpu_totals_are_lower_bounds"] is True


def test_gpu_costs_file_is_complete(tm):
    import json

    costs = json.loads(tm.DEFAULT_COSTS.read_text())
    assert set(costs["gpu_s_per_image"]) == {"hand_object", "object_boxes", "hand_pose"}
    assert all("source" in v for v in costs["gpu_s_per_image"].values())
    assert set(tm.PAPER_USED) <= set(costs["raw_clips"]) and set(tm.PAPER_USED) <= set(costs["clip_seconds"])
