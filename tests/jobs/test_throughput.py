"""Throughput wiring of the extraction jobs: the auto batch size, the per-process model cache of the
task form, and that the task form (what the Ray job runs by default), the actor form and the plain
loop write exactly the same samples and errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.sources.base import open_source
from pipelines.sources.filters import apply_filters
from pipelines.stages import process
from pipelines.stages.loop import run_local
from pipelines.stages.process import (BLOCKS_PER_WORKER, MAX_AUTO_BATCH, ExtractBatch, ExtractConfig, auto_batch_size,
                                      extract_batch, shared_processor)
from tests.jobs.conftest import REPO, _make, job_env

HAND_POSE = "tests.jobs.backends:FixedHandPose"


@given(n=st.integers(1, 20000), workers=st.integers(1, 32))
def test_auto_batch_size_starts_every_worker_and_bounds_the_tail(n, workers):
    bs = auto_batch_size(n, workers)
    assert 1 <= bs <= MAX_AUTO_BATCH
    blocks = -(-n // bs)
    assert blocks >= min(n, workers)  # every worker starts at once
    if bs < MAX_AUTO_BATCH:  # at least two batches per worker (the tail is at most half a worker's share)
        assert blocks >= min(n, 2 * workers)
        assert blocks <= workers * BLOCKS_PER_WORKER


def test_auto_batch_size_examples():
    assert auto_batch_size(100, 2) == 13  # 8 batches: 4 per worker
    assert auto_batch_size(3, 2) == 1
    assert auto_batch_size(10**6, 2) == MAX_AUTO_BATCH


def test_shared_processor_loads_once_per_config(monkeypatch):
    monkeypatch.setattr(process, "_PROCESSORS", {})
    cfg = ExtractConfig(dataset="epic_kitchens", hand_pose_backend=HAND_POSE)
    p = shared_processor(cfg)
    assert shared_processor(ExtractConfig(dataset="epic_kitchens", hand_pose_backend=HAND_POSE)) is p
    other = shared_processor(ExtractConfig(dataset="epic_kitchens", hand_pose_backend=HAND_POSE, seed=1))
    assert other is not p and other.config.seed == 1
    assert len(process._PROCESSORS) == 2


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


def test_task_and_actor_forms_write_what_the_loop_writes(epic, loop_out, tmp_path, monkeypatch):
    monkeypatch.setattr(process, "_PROCESSORS", {})
    cfg = ExtractConfig(dataset="epic_kitchens", hand_pose_backend=HAND_POSE)
    rows = [r.to_row() for r in apply_filters(open_source("epic_kitchens", str(epic)).records())]
    assert len(rows) >= 3
    half = len(rows) // 2
    actor = ExtractBatch(cfg, str(tmp_path / "actor"))
    summaries = {"task": [], "actor": []}
    for batch in (rows[:half], rows[half:]):
        summaries["task"].append(extract_batch(pd.DataFrame(batch), cfg, str(tmp_path / "task")))
        summaries["actor"].append(actor(pd.DataFrame(batch)))
    assert summaries["task"] == summaries["actor"]
    assert len(process._PROCESSORS) == 1  # both task calls used one processor
    loop_data, loop_errors = _table(loop_out, "data"), _table(loop_out, "errors")
    assert loop_data, "the loop wrote no sample: the comparison would be empty"
    for form in ("task", "actor"):
        assert _table(tmp_path / form, "data") == loop_data, form
        assert [(e["sample_id"], e["stage"]) for e in _table(tmp_path / form, "errors")] == \
            [(e["sample_id"], e["stage"]) for e in loop_errors if e["stage"] != "source"], form


def _job(root, out, *extra: str, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "jobs" / "extract_epic_kitchens.py"), "--root", str(root), "--out", str(out),
           "--ray-num-cpus", "2", "--concurrency", "2", "--no-progress", "--hand-pose", HAND_POSE, *extra]
    return subprocess.run(cmd, env=job_env(), capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.mark.slow
def test_ray_job_with_auto_batches_equals_the_loop(epic, loop_out, tmp_path):
    res = _job(epic, tmp_path / "ray")  # defaults: --compute tasks, auto --batch-size
    assert res.returncode == 0, res.stderr[-3000:]
    run = json.loads(res.stdout.strip().splitlines()[-1])["this_run"]
    assert run["compute"] == "tasks" and run["batch_size"] == auto_batch_size(run["clips_pending"], 2)
    assert _table(tmp_path / "ray", "data") == _table(loop_out, "data")
    assert sorted((e["sample_id"], e["stage"]) for e in _table(tmp_path / "ray", "errors")) == \
        sorted((e["sample_id"], e["stage"]) for e in _table(loop_out, "errors"))


def test_bad_batch_size_is_refused(epic, tmp_path):
    res = _job(epic, tmp_path / "out", "--batch-size", "0", timeout=120)
    assert res.returncode == 2 and "--batch-size must be >= 1, got 0" in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "out" / "data").exists()
