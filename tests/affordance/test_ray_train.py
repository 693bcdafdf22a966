"""The Ray Train job: trains from Ray Data, checkpoints every epoch, resumes when the same job is submitted
again with the same --out, and retries a failed worker from its last checkpoint."""

import json
from pathlib import Path

import numpy as np
import pytest

from deft_core.affordance import load_affordance

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def _overrides(epochs):
    return {"model": {"image_size": 64, "text_encoder": "hash:32", "text_dim": 32},
            "train": {"batch_size": 16, "val_fraction": 0.2, "epochs": epochs}}


def test_ray_train_and_resubmission_resumes(ray_session, shard_dir, tmp_path):
    from pipelines.train_affordance import run

    out = tmp_path / "run"
    # the Ray Data path (read_parquet → decode actors → iter_torch_batches); the other tests use the
    # in-worker path that "auto" picks for small shards
    first = run([str(shard_dir)], str(out), "tiny", _overrides(1), num_workers=1, data_mode="ray_data")
    assert first["resumed_from"] is None and first["metrics"]["epoch"] == 0 and first["data_mode"] == "ray_data"
    # the same job submitted again (more epochs) continues from the newest checkpoint, not from scratch
    second = run([str(shard_dir)], str(out), "tiny", _overrides(2), num_workers=1, data_mode="ray_data")
    assert second["resumed_from"] is not None
    metrics = json.loads((out / "model" / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics["history"]] == [0, 1]
    assert metrics["history"][0] == first["metrics"]  # epoch 0 was not re-run
    assert metrics["final"]["val_samples"] > 0 and "val_contact_px" in metrics["final"]
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    summary = json.loads((out / "model" / "config.json").read_text())["training"]["data"]
    assert summary["rows"] == 48 and summary["train_rows"] + summary["val_rows"] == 48
    # the texts that supervised the hand heads travel with the export (fake rows: source "fake", weight 1)
    assert sum(summary["hand_label_texts"].values()) == summary["train_rows"]
    assert load_affordance(out / "model").hand_text_support("pour the cup")["similarity"] == pytest.approx(1.0)
    res = load_affordance(out / "model").predict(np.zeros((80, 80, 3), np.uint8), (0, 0, 64, 64), "pour the cup")
    assert res.hand_pose.shape == (45,)


def test_worker_failure_is_retried_from_checkpoint(ray_session, shard_dir, tmp_path):
    """The worker raises once after epoch 0's checkpoint; FailureConfig(max_failures=1) restarts the worker
    group, which must get that checkpoint from Ray (ray.train.get_checkpoint) and train only epoch 1."""
    from pipelines.train_affordance import run

    out, marker = tmp_path / "run", tmp_path / "failed-once"
    result = run([str(shard_dir)], str(out), "tiny", _overrides(2), num_workers=1, max_failures=1,
                 extra_config={"simulate_failure_at_epoch": 0, "failure_marker": str(marker)})
    assert marker.exists() and result["metrics"]["epoch"] == 1 and result["data_mode"] == "worker"
    resumed = json.loads((tmp_path / "failed-once.resumed").read_text())
    assert resumed["epoch"] == 0
    # the worker's copy of Ray's checkpoint is deleted when it is done (each retry leaked ~150 MB in /tmp)
    assert "deft-resume-" in resumed["dir"] and not Path(resumed["dir"]).exists()
    history = json.loads((out / "model" / "metrics.json").read_text())["history"]
    assert [m["epoch"] for m in history] == [0, 1]


def test_two_workers_train_with_ddp(ray_session, shard_dir, tmp_path, monkeypatch):
    """Multi-worker training (issue 7): two CPU workers, the model wrapped in DDP by Ray's prepare_model,
    each reading its own Ray Data shard; rank 0 writes the checkpoint and the export. The shards are given
    as a path relative to the driver's working directory, which the workers do not share."""
    import os

    from pipelines.train_affordance import run

    out = tmp_path / "run2"
    monkeypatch.chdir(shard_dir.parent)
    result = run([os.path.relpath(shard_dir)], str(out), "tiny", _overrides(1), num_workers=2)
    assert result["metrics"]["epoch"] == 0 and result["metrics"]["val_samples"] > 0 and result["data_mode"] == "worker"
    # each rank trained on its own half of the training rows (in-worker path, rank-sharded)
    summary = json.loads((out / "run.json").read_text())["data_summary"]
    assert result["metrics"]["train_samples"] == summary["train_rows"] // 2
    cfg = json.loads((out / "model" / "config.json").read_text())
    assert cfg["training"]["data"]["rows"] == 48
    # the export is a plain (un-wrapped) model: no DDP "module." prefixes, loads without Ray
    res = load_affordance(out / "model").predict(np.zeros((80, 80, 3), np.uint8), (0, 0, 64, 64), "pick up the cup")
    assert res.hand_pose.shape == (45,) and np.all(np.isfinite(res.hand_pose))


def test_ray_data_reads_a_folder_mixing_schema_versions(ray_session, tmp_path):
    """Schema 2 added a column; an output folder resumed across the upgrade holds version-1 and version-2
    shards, and the Ray Data path (read_parquet → select_columns) must still read every row of both."""
    import pyarrow.parquet as pq
    import ray.data

    from deft_core.affordance.data import READ_COLUMNS, list_shard_files
    from tests.affordance.fake_shards import make_rows, rows_to_table

    rows = make_rows(12, seed=4)
    old = rows_to_table(rows[:5]).drop_columns(["contact_mapping"])
    pq.write_table(old.replace_schema_metadata({**old.schema.metadata, b"deft.schema_version": b"1"}), tmp_path / "part-0.parquet")
    pq.write_table(rows_to_table(rows[5:]), tmp_path / "part-1.parquet")
    ds = ray.data.read_parquet(list_shard_files([tmp_path])).select_columns(list(READ_COLUMNS))
    assert sorted(r["sample_id"] for r in ds.take_all()) == sorted(r["sample_id"] for r in rows)
