"""The extraction jobs with a model stage chosen by name: ``--object-boxes owlv2`` on a tiny real-format
OWLv2 gives schema-valid shards, 2 model actors give the same shards as 1, bad names fail clearly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from deft_core.schema import check_table_schema, validate_row
from tests.jobs.conftest import REPO, _make, hand_pose_args, job_env


@pytest.fixture(scope="module")
def epic_root(tmp_path_factory):
    return _make(tmp_path_factory, "epic_kitchens")


def _job(root: Path, out: Path, *extra: str, check: bool = True, timeout: int = 300):
    cmd = [sys.executable, str(REPO / "jobs" / "extract_epic_kitchens.py"), "--root", str(root), "--out", str(out),
           "--ray-num-cpus", "4", "--concurrency", "1", "--batch-size", "2", "--no-progress",
           *hand_pose_args("epic_kitchens"), *extra]
    res = subprocess.run(cmd, env=job_env(), capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if check:
        assert res.returncode == 0, res.stderr[-3000:]
    return res


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for p in sorted((out / "data").glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()}


def _errors(out: Path) -> dict[str, str]:
    return {r["sample_id"]: r["stage"] for p in (out / "errors").glob("part-*.parquet") for r in pq.read_table(p).to_pylist()}


def _same_rows(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for sid in a:
        for col, va in a[sid].items():
            vb = b[sid][col]
            if isinstance(va, list) or isinstance(va, float):
                assert np.allclose(np.asarray(va, float), np.asarray(vb, float), atol=1e-4), (sid, col, va, vb)
            else:
                assert va == vb, (sid, col)


@pytest.mark.slow
def test_object_boxes_job_one_vs_two_model_actors(epic_root, owlv2_dir, tmp_path):
    model = ["--object-boxes", "owlv2", "--model-option", f"weights={owlv2_dir}", "--model-option", "device=cpu",
             "--model-option", "threshold=0.0", "--model-batch-size", "2", "--model-num-cpus", "1"]
    outs = {}
    for n in (1, 2):
        outs[n] = tmp_path / f"actors{n}"
        _job(epic_root, outs[n], *model, "--model-concurrency", str(n))
    rows = _rows(outs[1])
    assert len(rows) >= 2
    for p in (outs[1] / "data").glob("part-*.parquet"):
        check_table_schema(pq.read_table(p).schema)
    for r in rows.values():
        validate_row(r)
    manifest = json.loads((outs[1] / "manifest.json").read_text())
    assert manifest["models"]["object_boxes"] == "owlv2"
    assert manifest["models"]["object_box_options"]["weights"] == str(owlv2_dir)
    _same_rows(rows, _rows(outs[2]))  # 2 actors per model stage == 1 actor: same ids, same contents
    assert _errors(outs[1]) == _errors(outs[2])


def test_unknown_backend_names_fail_listing_the_choices(tmp_path):
    res = _job(tmp_path, tmp_path / "o", "--object-boxes", "yolo", check=False)
    assert res.returncode == 2 and "owlv2" in res.stderr and "grounding-dino" in res.stderr and "yolo" in res.stderr
    res = _job(tmp_path, tmp_path / "o", "--hand-object-model", "frankmocap", check=False)
    assert res.returncode == 2 and "hands23" in res.stderr and "detic" in res.stderr
    res = _job(tmp_path, tmp_path / "o", "--object-boxes", "owlv2", "--model-option", "sam.weights=x", check=False)
    assert res.returncode != 0 and "unknown scope 'sam'" in res.stderr
