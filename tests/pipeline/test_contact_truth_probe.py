"""benchmarks/contact_truth_probe.py on the tiny generated EPIC and HOI4D datasets of tests/pipeline/conftest.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.quality import evaluate

_spec = importlib.util.spec_from_file_location(
    "contact_truth_probe", Path(__file__).resolve().parents[2] / "benchmarks" / "contact_truth_probe.py")
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


def test_first_touch_truth_is_the_evaluators(extracted):
    root, out = extracted
    res = probe.probe_frames(out, root)
    _, samples, _ = evaluate(out, root)
    errs = [s["contact_point_error_pct"] for s in samples if s["contact_point_error_pct"] is not None]
    assert res["first_touch"]["n"] == len(errs) >= 2
    assert res["first_touch"]["median"] == pytest.approx(float(np.median(errs)))
    assert res["held_lag_frames"]["median"] >= 0 and res["true_contacts_first"]["median"] >= 1
    assert {"held_grasp", "first_to_held_union"} <= set(res)


def test_held_grasp_frame_is_where_the_hand_stops():
    z = {"hand_pose": np.zeros((10, 45)), "wrist_pose_world": np.tile(np.eye(4), (10, 1, 1))}
    z["hand_pose"][:, 0] = np.minimum(np.arange(10), 5)  # closes until frame 5, then held
    assert probe.held_grasp_frame(z, 2) == 5
    assert probe.held_grasp_frame(z, 7) == 7


def test_cues_cli_prints_json(extracted, capsys):
    root, _ = extracted
    assert probe.main(["cues", "--truth", str(root), "--k", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    n = res["grasp_centre"]["n"]
    assert n >= 1 and res["oracle_nearest_keypoints"]["n"] == n and res["leading_edge_1_with_grasp_centre"]["n"] == n
    assert res["leading_edge_1"]["n"] <= n
    assert res["best_fixed_true_keypoints_all_kinds"]["n"] == n


def test_mirror_puts_the_hidden_side_behind_the_visible_one():
    # a 4 cm × 2 cm patch facing the camera 1 m away: the hidden side is 4 × its smaller std behind its centre
    xs, ys = np.meshgrid(np.linspace(-0.02, 0.02, 21), np.linspace(-0.01, 0.01, 11))
    P = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], 1)
    out = probe._mirror_hidden_side(P)
    assert len(out) == 2 * len(P) and np.allclose(out[:len(P)], P)
    depth = 4 * np.sqrt(np.var(ys.ravel()))
    assert np.allclose(out[len(P):, 2], 1 + depth, atol=2e-3)  # the rays are nearly parallel to z here
    assert np.allclose(out[len(P):, :2], P[:, :2], atol=1e-3)


def test_hoi4d_3d_cli_prints_json(hoi4d_fake, capsys):
    assert probe.main(["hoi4d-3d", "--truth", str(hoi4d_fake)]) == 0
    res = json.loads(capsys.readouterr().out)
    n = res["oracle_nearest_joints"]["n"]
    assert n >= 1 and sum(v["n"] for k, v in res.items() if k.startswith("extraction_")) == n
    for name in ("visible", "mirrored"):
        for mm in ("5mm", "10mm", "20mm"):
            assert res[f"{name}_joints_{mm}"]["n"] == res[f"{name}_midpoints_{mm}"]["n"] == n
