"""Wiring behind the extraction jobs' throughput: the fused per-clip stage (:class:`ExtractBatch`, what
each Ray actor runs) writes exactly what the plain loop writes, however the clips are batched; the job
(Ray Data, 2 actors) does too; a bad ``--batch-size`` is refused before Ray starts."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.sources.base import open_source
from pipelines.sources.filters import apply_filters
from pipelines.stages.loop import run_local
from pipelines.stages.process import ExtractBatch, ExtractConfig
from tests.jobs.conftest import REPO, _make, job_env

HAND_POSE = "tests.jobs.backends:FixedHandPose"


def _table(out, sub: str) -> list[dict]:
    rows = [r for p in sorted((out / sub).glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]
    return sorted(rows, key=lambda r: r["sample_id"])


@pytest.fixture(scope="module")
def epic(tmp_path_factory):
    return _make(tmp_path_factory, "epic_kitchens")


@pytest.fixture(scope="module")
def loop_out(epic, tmp_path_factory):
    out = tmp_path_factory.mktemp("loop")
    run_local(open_source("epic_kitchens", str(epic)), out, ExtractConfig(dataset="epic_kitchens", hand_pose_backend=HAND_POSE))
    return out


@pytest.mark.parametrize("batch", [1, 3])
def test_fused_batches_write_what_the_loop_writes(batch, epic, loop_out, tmp_path):
    cfg = ExtractConfig(dataset="epic_kitchens", hand_pose_backend=HAND_POSE)
    rows = [r.to_row() for r in apply_filters(open_source("epic_kitchens", str(epic)).records())]
    assert len(rows) >= 3
    fn = ExtractBatch(cfg, str(tmp_path / "out"))
    summary = [fn(pd.DataFrame(rows[i:i + batch])) for i in range(0, len(rows), batch)]
    assert sorted(s for part in summary for s in part["sample_id"]) == sorted(r["sample_id"] for r in rows)
    loop_data, loop_errors = _table(loop_out, "data"), _table(loop_out, "errors")
    assert loop_data, "the loop wrote no sample: the comparison would be empty"
    assert _table(tmp_path / "out", "data") == loop_data
    assert [(e["sample_id"], e["stage"]) for e in _table(tmp_path / "out", "errors")] == \
        [(e["sample_id"], e["stage"]) for e in loop_errors if e["stage"] != "source"]


def _job(root, out, *extra: str, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "jobs" / "extract_epic_kitchens.py"), "--root", str(root), "--out", str(out),
           "--ray-num-cpus", "2", "--concurrency", "2", "--no-progress", "--hand-pose", HAND_POSE, *extra]
    return subprocess.run(cmd, env=job_env(), capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.mark.slow
def test_ray_job_with_default_batches_equals_the_loop(epic, loop_out, tmp_path):
    res = _job(epic, tmp_path / "ray")
    assert res.returncode == 0, res.stderr[-3000:]
    run = json.loads(res.stdout.strip().splitlines()[-1])["this_run"]
    assert run["batch_size"] == 4 and run["concurrency"] == 2
    assert _table(tmp_path / "ray", "data") == _table(loop_out, "data")
    assert sorted((e["sample_id"], e["stage"]) for e in _table(tmp_path / "ray", "errors")) == \
        sorted((e["sample_id"], e["stage"]) for e in _table(loop_out, "errors"))


def test_bad_batch_size_is_refused(epic, tmp_path):
    res = _job(epic, tmp_path / "out", "--batch-size", "0", timeout=120)
    assert res.returncode == 2 and "--batch-size must be >= 1, got 0" in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "out" / "data").exists()
