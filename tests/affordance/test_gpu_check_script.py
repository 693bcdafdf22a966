"""benchmarks/gpu_check.py checks the GPU paths on a lent GPU machine (CI has none). Here it runs its
parts A, C and P on the CPU with the tiny preset, so the script cannot rot between GPU runs, and a failing
check makes it exit non-zero."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_part_a_runs_on_the_cpu(tmp_path):
    env = os.environ | {"OUT": str(tmp_path), "N_ROWS": "48", "PRESET": "tiny", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "a"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = json.loads((tmp_path / "gpu_check_a.json").read_text())
    assert out["env"]["device"] == "cpu"
    assert set(out["checks"]) == {"train_on_device_2_epochs", "resume_on_cuda_epoch_3",
                                  "export_loads_on_cpu_and_cuda_same_outputs", "predictor_on_cuda",
                                  "evaluate_checkpoint_on_cuda", "open_clip_text_encoder_on_cuda",
                                  "throughput_decode_threads_and_cpu"}
    assert all(c["ok"] for c in out["checks"].values())
    tp = out["checks"]["throughput_decode_threads_and_cpu"]["result"]
    # the read-ahead threads decode the same batches: the same training loss whatever their number
    assert tp["cpu_decode_threads_0"]["train_loss"] == tp["cpu_decode_threads_8"]["train_loss"]


def test_gpu_check_part_p_runs_on_the_cpu(tmp_path):
    env = os.environ | {"OUT": str(tmp_path), "N_ROWS": "48", "PRESET": "tiny", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "p"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = json.loads((tmp_path / "gpu_check_p.json").read_text())["checks"]["precision_bf16_against_fp32"]
    assert out["ok"], out
    r = out["result"]
    assert r["fp32_decode_8"]["precision"] == "fp32" and r["bf16_decode_8"]["precision"] == "bf16"
    assert r["fp32_decode_8"]["train_loss"] != r["bf16_decode_8"]["train_loss"]  # autocast really ran


def test_gpu_check_part_c_runs_on_the_cpu(tmp_path):
    pytest.importorskip("transformers")
    env = os.environ | {"OUT": str(tmp_path), "N_ROWS": "8", "PRESET": "tiny", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "c"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = json.loads((tmp_path / "gpu_check_c.json").read_text())["checks"]["open_vocab_boxes_and_sam_on_cuda"]
    assert out["ok"] and set(out["result"]) == {"owlv2", "grounding-dino", "sam", "robot_text_locator",
                                                "robot_point_locator"}
