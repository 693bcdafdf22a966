"""The three extraction jobs end to end on tiny synthetic datasets: directly (local Ray), through
`ray job submit` against a `ray start --head`, with broken inputs, and killed midway then re-run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from deft_core.schema import check_table_schema, validate_row
from pipelines.sources.base import open_source
from pipelines.sources.filters import apply_filters
from tests.jobs.conftest import CORRUPT, REPO, hand_pose_args, job_env

pytestmark = pytest.mark.slow


def _job(dataset: str, root: Path, out: Path, *extra: str, timeout: int = 240, env: dict | None = None) -> dict:
    cmd = [sys.executable, str(REPO / "jobs" / f"extract_{dataset}.py"), "--root", str(root), "--out", str(out),
           "--ray-num-cpus", "2", "--concurrency", "2", "--batch-size", "2", "--no-progress", *hand_pose_args(dataset), *extra]
    res = subprocess.run(cmd, env={**job_env(), **(env or {})}, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _ids(out: Path, sub: str) -> list[str]:
    return sorted(i for p in (out / sub).glob("part-*.parquet") for i in pq.read_table(p, columns=["sample_id"]).column("sample_id").to_pylist())


def _errors(out: Path) -> list[dict]:
    return [r for p in (out / "errors").glob("part-*.parquet") for r in pq.read_table(p).to_pylist()]


@pytest.fixture(scope="session")
def full_runs(datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp("jobs")
    return {d: (out / d, _job(d, root, out / d)) for d, root in datasets.items()}


@pytest.mark.parametrize("dataset", ["ego4d", "epic_kitchens", "hoi4d"])
def test_job_writes_valid_shards_and_loses_no_clip(dataset, datasets, full_runs):
    out, summary = full_runs[dataset]
    data = _ids(out, "data")
    assert len(data) >= 2, summary
    for p in (out / "data").glob("part-*.parquet"):
        t = pq.read_table(p)
        check_table_schema(t.schema)
        for row in t.to_pylist():
            validate_row(row)
    errors = _errors(out)
    assert all(e["stage"] and e["error"] for e in errors)
    assert len({e["sample_id"] for e in errors}) >= CORRUPT - (dataset == "ego4d")  # an Ego4D malformed entry may be filtered as invalid
    assert not set(data) & {e["sample_id"] for e in errors}
    # every record that passed the filters ended as a sample or an error row: nothing silently lost
    src = open_source(dataset, str(datasets[dataset]))
    expected = {r.sample_id for r in apply_filters(src.records())} | {b["sample_id"] for b in src.bad_rows}
    assert expected == set(data) | {e["sample_id"] for e in errors}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["samples"] == len(data) and manifest["counts"]["duplicate_sample_rows"] == 0
    assert manifest["this_run"]["samples_written"] == len(data)
    # HOI4D's points come from its 2Dseg masks and depth, the others' from skin colour (schema version 3)
    sources = manifest["counts"]["contact_points_source"]
    assert sum(sources.values()) == len(data)
    assert set(sources) == {"hand_mask_depth"} if dataset == "hoi4d" else not set(sources) & {"hand_mask", "hand_mask_depth"}


def test_broken_inputs_have_reasons(full_runs):
    out, _ = full_runs["epic_kitchens"]
    reasons = " | ".join(f"{e['stage']}: {e['error']}" for e in _errors(out))
    assert "video" in reasons and ("pkl" in reasons or "pickle" in reasons or "hand-object" in reasons), reasons


def test_interrupted_then_resumed_equals_uninterrupted(datasets, full_runs, tmp_path):
    clean_out, _ = full_runs["epic_kitchens"]
    out = tmp_path / "resumed"
    first = _job("epic_kitchens", datasets["epic_kitchens"], out, "--limit", "2")
    assert first["this_run"]["clips_pending"] == 2
    second = _job("epic_kitchens", datasets["epic_kitchens"], out)
    assert second["this_run"]["already_done"] >= 2
    assert _ids(out, "data") == _ids(clean_out, "data")
    assert sorted(e["sample_id"] for e in _errors(out)) == sorted(e["sample_id"] for e in _errors(clean_out))
    third = _job("epic_kitchens", datasets["epic_kitchens"], out)  # nothing left to do
    assert third["this_run"]["clips_pending"] == 0


def test_a_clip_that_kills_its_worker_every_time_ends_as_errors_not_an_endless_job(datasets, full_runs, tmp_path):
    """A clip whose processing kills the worker process (as a crash in a video decoder would): Ray Data's
    default retries it forever. Bounded by --max-batch-retries, its batch is given up as 'worker' errors, the
    job ends, every other clip is extracted, and --retry-errors (the crash gone) completes the output."""
    clean_out, _ = full_runs["epic_kitchens"]
    victim = _ids(clean_out, "data")[0]
    out = tmp_path / "crash"
    summary = _job("epic_kitchens", datasets["epic_kitchens"], out, "--max-batch-retries", "1",
                   env={"DEFT_TEST_CRASH_ON_SAMPLE": victim})
    worker = {e["sample_id"]: e["error"] for e in _errors(out) if e["stage"] == "worker"}
    # its batch of 2, and any batch queued on the same actor when it died (Ray Data keeps two in flight per
    # actor, and a queued task loses an attempt with the actor): a few batches at most, never the whole job
    assert victim in worker and "died on all 2 attempts" in worker[victim]
    assert len(worker) <= 8 and set(worker) < set(_ids(clean_out, "data")) | {e["sample_id"] for e in _errors(clean_out)}
    assert summary["this_run"]["errors_by_stage"]["worker"] == len(worker)
    assert set(_ids(out, "data")) == set(_ids(clean_out, "data")) - set(worker)
    _job("epic_kitchens", datasets["epic_kitchens"], out, "--retry-errors")
    assert _ids(out, "data") == _ids(clean_out, "data")
    assert json.loads((out / "manifest.json").read_text())["counts"]["errors_by_stage"].get("worker") is None


def test_job_through_ray_job_submit(datasets, full_runs, tmp_path):
    """The three extraction jobs and the training job through `ray job submit` against `ray start --head`."""
    env = job_env()
    ray = str(Path(sys.executable).parent / "ray")
    port, dash = "6391", "8281"
    start = subprocess.run([ray, "start", "--head", "--port", port, "--dashboard-port", dash, "--num-cpus", "2",
                            "--include-dashboard", "true", "--disable-usage-stats"],
                           env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        for dataset in ("hoi4d", "ego4d", "epic_kitchens"):   # all three jobs, as the README submits them
            out = tmp_path / f"submitted_{dataset}"
            res = None
            for _ in range(8):  # the job server and its agent can take a while after `ray start` returns (loaded machine)
                res = subprocess.run([ray, "job", "submit", "--address", f"http://127.0.0.1:{dash}", "--working-dir", str(REPO), "--",
                                      "python", f"jobs/extract_{dataset}.py", "--root", str(datasets[dataset]), "--out", str(out),
                                      "--concurrency", "1", "--no-progress", *hand_pose_args(dataset)],
                                     env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
                if res.returncode == 0 or not any(m in res.stderr for m in ("Connection", "No available agent")):
                    break
                time.sleep(5)
            assert res.returncode == 0, (dataset, res.stdout[-3000:], res.stderr[-3000:])
            assert _ids(out, "data") == _ids(full_runs[dataset][0], "data"), dataset
            assert _ids(out, "errors") == _ids(full_runs[dataset][0], "errors"), dataset
        # and training, as the README submits it: each epoch's line once (Ray Train's print patch had doubled
        # them), without Ray's per-report dump of every metric
        from tests.affordance.fake_shards import write_shards

        write_shards(tmp_path / "fake_shards", 24, files=1, seed=0)
        res = subprocess.run([ray, "job", "submit", "--address", f"http://127.0.0.1:{dash}", "--working-dir", str(REPO), "--",
                              "python", "jobs/train.py", "--shards", str(tmp_path / "fake_shards"), "--out",
                              str(tmp_path / "submitted_train"), "--preset", "tiny", "--epochs", "2", "--image-size", "64",
                              "--text-encoder", "hash:32", "--text-dim", "32", "--val-fraction", "0.5"],
                             env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
        log = res.stdout + res.stderr
        assert res.returncode == 0, log[-3000:]
        assert (tmp_path / "submitted_train" / "model" / "model.safetensors").is_file()
        for epoch in (1, 2):
            assert log.count(f"[train] epoch {epoch}/2 loss") == 1, log[-3000:]
        assert "Reporting training result" not in log
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_retry_errors_reprocesses_clips_whose_inputs_arrived(datasets, full_runs, tmp_path):
    """A video missing on the first run (a partial download) fails its clips; after it arrives a plain
    re-run still skips them (finished work), --retry-errors processes them: they become samples, equal to
    a clean run's, and the manifest no longer counts them as errors."""
    import shutil

    root = tmp_path / "epic"
    shutil.copytree(datasets["epic_kitchens"], root)
    clean_out, _ = full_runs["epic_kitchens"]
    clean = set(_ids(clean_out, "data"))
    used = sorted({v for p in (clean_out / "data").glob("part-*.parquet")
                   for v in pq.read_table(p, columns=["video_id"]).column("video_id").to_pylist()})
    video = next(root.glob(f"{used[0].split('_')[0]}/videos/{used[0]}.*"))   # a video with samples in a clean run
    aside = tmp_path / video.name
    video.rename(aside)
    out = tmp_path / "out"
    first = _job("epic_kitchens", root, out)
    missing = clean - set(_ids(out, "data"))
    assert missing, "moving a video away should fail some clips"
    assert missing <= {e["sample_id"] for e in _errors(out)}
    aside.rename(video)
    again = _job("epic_kitchens", root, out)
    assert again["this_run"]["clips_pending"] == 0 and clean - set(_ids(out, "data")) == missing
    retried = _job("epic_kitchens", root, out, "--retry-errors")
    assert retried["this_run"]["clips_pending"] >= len(missing)
    assert set(_ids(out, "data")) == clean
    manifest = json.loads((out / "manifest.json").read_text())
    clean_manifest = json.loads((clean_out / "manifest.json").read_text())
    assert manifest["counts"]["errors"] == clean_manifest["counts"]["errors"] < first["counts"]["errors"]
    assert manifest["counts"]["duplicate_sample_rows"] == 0
