"""The Ray Train job's in-worker data path (no Ray needed): rank sharding, (seed, epoch)-keyed augmentation
and the auto choice between in-worker reading and Ray Data."""

from pathlib import Path

import numpy as np
import pytest

from deft_core.affordance.data import ShardDecoder, iter_batches, list_shard_files, read_split
from pipelines.train_affordance import choose_data_mode
from tests.affordance.fake_shards import write_shards


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    d = tmp_path_factory.mktemp("wshards")
    write_shards(d, 37, files=2, seed=3)
    return read_split(list_shard_files([d]), "all", 0.0), list_shard_files([d])


def _ids(batches):
    return [int(x) for b in batches for x in b["sample_row"]]


class _RowDecoder(ShardDecoder):
    """Records which rows a batch holds (via the sample ids) on top of the real decode."""

    def __call__(self, batch):
        out = super().__call__(batch)
        out["sample_row"] = np.array([self.row_of[s] for s in batch["sample_id"]])
        return out


def test_ranks_partition_each_epoch_with_equal_steps(table):
    t, _ = table
    dec = _RowDecoder(32, "hash:16")
    dec.row_of = {s: i for i, s in enumerate(t.column("sample_id").to_pylist())}
    for epoch in (0, 1):
        per_rank = [list(iter_batches(t, 4, dec, True, 5, epoch, rank=r, world_size=3)) for r in range(3)]
        assert {len(b) for b in per_rank} == {len(per_rank[0])}  # same number of steps on every rank
        rows = [_ids(b) for b in per_rank]
        assert all(len(r) == 37 // 3 for r in rows)
        flat = sum(rows, [])
        assert len(set(flat)) == len(flat)  # no row on two ranks
    # one rank sees the whole table in the plain loop's order
    single = _ids(iter_batches(t, 4, dec, True, 5, 1))
    assert sorted(single) == list(range(37)) and single != list(range(37))
    with pytest.raises(ValueError, match="rank 3 out of range"):
        next(iter_batches(t, 4, dec, rank=3, world_size=3))


def test_augmentation_is_keyed_by_epoch_not_by_batch_order(table):
    """A resumed run (fresh decoder, epoch 2) and a different batch order give the same augmentations
    as an uninterrupted run; the next epoch gives different ones."""
    t, _ = table
    def images(dec, batch_size, shuffle, epoch):
        return {int(i): img for b in iter_batches(t, batch_size, dec, shuffle, 0, epoch)
                for i, img in zip(b["sample_row"], b["image"])}

    uninterrupted = _row_decoder(t)
    for e in range(2):
        images(uninterrupted, 8, True, e)
    run_on = images(uninterrupted, 8, True, 2)
    resumed = _row_decoder(t)  # fresh decoder, other batch size, no shuffle
    other = images(resumed, 5, False, 2)
    assert run_on.keys() == other.keys() == set(range(37))
    for k in run_on:
        np.testing.assert_array_equal(run_on[k], other[k])
    nxt = images(resumed, 8, True, 3)
    assert sum(not np.array_equal(run_on[k], nxt[k]) for k in run_on) > 30


def _row_decoder(t):
    d = _RowDecoder(32, "hash:16", augment=True, seed=0)
    d.row_of = {s: i for i, s in enumerate(t.column("sample_id").to_pylist())}
    return d


def test_decode_threads_give_the_same_batches_in_the_same_order(table):
    """threads=N decodes ahead in background threads (the GPU's bottleneck, benchmarks/gpu_check.py): the
    batches, their order and their augmentations equal the inline decode's, on every rank."""
    t, _ = table
    for rank, world in ((0, 1), (1, 3)):
        inline = list(iter_batches(t, 4, _row_decoder(t), True, 5, 2, rank=rank, world_size=world))
        for threads in (1, 3):
            ahead = list(iter_batches(t, 4, _row_decoder(t), True, 5, 2, rank=rank, world_size=world, threads=threads))
            assert len(ahead) == len(inline)  # no batch dropped while filling the read-ahead
            for a, b in zip(inline, ahead):
                assert a.keys() == b.keys()
                for k in a:
                    np.testing.assert_array_equal(a[k], b[k])


def test_decode_threads_stop_early_and_pass_errors_on(table):
    t, _ = table
    import threading

    gen = iter_batches(t, 4, _row_decoder(t), threads=2)
    next(gen)
    gen.close()  # a consumer that stops early (an exception in the training step) does not hang...
    assert not [th for th in threading.enumerate() if th.name.startswith("deft-decode")]  # ...nor leave threads

    class _Broken(_RowDecoder):
        def __call__(self, batch):
            if self.row_of[batch["sample_id"][0]] >= 8:
                raise ValueError("crop_jpeg could not be decoded as JPEG")
            return super().__call__(batch)

    dec = _Broken(32, "hash:16")
    dec.row_of = {s: i for i, s in enumerate(t.column("sample_id").to_pylist())}
    got = []
    with pytest.raises(ValueError, match="could not be decoded"):
        for b in iter_batches(t, 4, dec, threads=2):
            got.append(b)
    assert len(got) == 2  # the batches before the bad one arrived, in order


def _small_train_config(epochs: int, precision: str = "fp32") -> dict:
    """train_func's config for a very small model on the `table` fixture (64 px, hashed text, 5 steps an epoch)."""
    import dataclasses

    from deft_core.affordance.config import get_preset

    p = get_preset("tiny")
    p.model.image_size, p.model.text_encoder, p.model.text_dim = 64, "hash:16", 16
    p.model.d_model, p.model.n_layers, p.model.mlp_hidden, p.train.epochs = 32, 1, 48, epochs
    p.train.precision = precision
    return {"model": dataclasses.asdict(p.model), "train": dataclasses.asdict(p.train), "steps_per_epoch": 5}


def test_decode_threads_train_the_same_weights(table):
    """The read-ahead changes nothing a training run computes: the same weights, byte for byte."""
    from deft_core.affordance.train_loop import train_func

    t, _ = table
    cfg = _small_train_config(epochs=2)
    weights = []
    for threads in (0, 2):  # 5 batches: more than the read-ahead holds (2 × threads)
        dec = ShardDecoder(64, "hash:16", augment=True, seed=0)
        models = []
        train_func(cfg, lambda e: iter_batches(t, 8, dec, True, 0, e, threads=threads), None,
                   lambda m, ckpt: models.append((Path(ckpt) / "model.safetensors").read_bytes()) if ckpt else None)
        weights.append(models[-1])
    assert weights[0] == weights[1]


def test_bf16_precision_autocasts_the_step_and_keeps_float32_weights(table):
    """train.precision "bf16" runs the forward pass and loss in bfloat16 (the loss differs from float32's,
    slightly) while the weights and the export stay float32; an unknown precision is an error before any
    step."""
    import torch
    from safetensors.torch import load_file

    from deft_core.affordance.train_loop import precision_context, train_func

    with precision_context("bf16", "cpu")():
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.bfloat16
    with precision_context("fp32", "cpu")():
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.float32
    t, _ = table
    runs = {}
    for precision in ("fp32", "bf16"):
        ckpts = []
        hist = train_func(_small_train_config(1, precision), lambda e: iter_batches(t, 8, ShardDecoder(64, "hash:16", augment=True, seed=0), True, 0, e),
                          None, lambda m, ckpt: ckpts.append(load_file(str(Path(ckpt) / "model.safetensors"))) if ckpt else None)
        runs[precision] = (hist[-1], ckpts[-1])
    (m32, w32), (m16, w16) = runs["fp32"], runs["bf16"]
    assert m16["precision"] == "bf16" and m32["precision"] == "fp32"
    assert np.isfinite(m16["train_loss"]) and m16["train_loss"] != m32["train_loss"]
    assert abs(m16["train_loss"] - m32["train_loss"]) < 0.1 * abs(m32["train_loss"]), (m16["train_loss"], m32["train_loss"])
    assert all(v.dtype == w32[k].dtype for k, v in w16.items()) and w16.keys() == w32.keys()
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        train_func(_small_train_config(1, "fp16"), lambda e: iter(()), None, lambda m, ckpt: None)


def test_ray_data_split_stays_arrow_and_matches_the_plain_split(table):
    """The Ray Data path's split step takes and returns Arrow (numpy batches with nested list columns came
    back pickled on every block) and keeps the rows the plain path's read_split keeps."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.train_affordance import select_split

    _, files = table
    whole = pa.concat_tables([pq.read_table(f) for f in files])
    for split in ("train", "val"):
        got = select_split(whole, split, 0.4)
        assert isinstance(got, pa.Table) and got.schema == whole.schema
        want = read_split(files, split, 0.4)
        assert sorted(got.column("sample_id").to_pylist()) == want.column("sample_id").to_pylist()
        assert 0 < got.num_rows < whole.num_rows


def test_auto_data_mode_follows_the_size_threshold(table):
    _, files = table
    assert choose_data_mode(files, "auto") == "worker"
    assert choose_data_mode(files, "auto", in_worker_max_mb=1e-6) == "ray_data"
    assert choose_data_mode(files, "ray_data") == "ray_data" and choose_data_mode(files, "worker") == "worker"
    with pytest.raises(ValueError, match="data_mode must be one of"):
        choose_data_mode(files, "bogus")


def test_ray_data_mode_is_refused_on_a_cluster_too_small_to_schedule_it():
    """On `ray start --head` on 2 cores the ray_data path waited forever (Train worker + decode actors took
    1.5 of 2 CPUs, the parquet read asked for 1): refused up front with what to do instead."""
    from pipelines.train_affordance import check_ray_data_cpus

    with pytest.raises(ValueError, match=r"needs >= 3 logical CPUs.*it has 2.*--num-cpus 3.*--data-mode worker"):
        check_ray_data_cpus(2.0, num_workers=1, cpus_per_worker=1.0)
    check_ray_data_cpus(4.0, num_workers=1, cpus_per_worker=1.0)          # init_local_ray's 4: fine
    with pytest.raises(ValueError, match="needs >= 6"):
        check_ray_data_cpus(4.0, num_workers=2, cpus_per_worker=2.0)


def test_training_without_validation_rows_says_so(tmp_path, monkeypatch, capsys):
    """A split that leaves no validation video is announced before training (the epochs then print "no
    validation split", not NaNs, and `deft model evaluate` needs --split all)."""
    import pipelines.train_affordance as ta

    write_shards(tmp_path / "sh", 8, files=1, seed=0)

    class Stop(Exception):
        pass

    def stop(*a, **k):
        raise Stop

    monkeypatch.setattr(ta, "choose_data_mode", stop)  # the step right after the data summary
    with pytest.raises(Stop):
        ta.run([str(tmp_path / "sh")], str(tmp_path / "out"), "tiny", {"train": {"val_fraction": 0.0}})
    assert "warning: no validation rows: 8 rows, val_fraction 0.0" in capsys.readouterr().err
    with pytest.raises(Stop):
        ta.run([str(tmp_path / "sh")], str(tmp_path / "out"), "tiny", {"train": {"val_fraction": 0.5}})
    assert "no validation rows" not in capsys.readouterr().err


def test_training_settings_are_checked_before_anything_is_written_or_started(tmp_path):
    """Bad numbers and a text encoder whose width disagrees with --text-dim are refused where the config is
    made (they used to fail in every Train worker, after OUT/run.json was written)."""
    from pipelines.train_affordance import resolve_config

    for overrides, message in (({"train": {"epochs": 0}}, "epochs must be a whole number >= 1"),
                               ({"train": {"batch_size": -2}}, "batch_size must be a whole number >= 1"),
                               ({"train": {"val_fraction": 1.5}}, "val_fraction must be in"),
                               ({"model": {"text_encoder": "hash:64"}}, "gives 64-d embeddings but text_dim is 384"),
                               ({"model": {"text_encoder": "bogus"}}, "unknown text encoder 'bogus'")):
        with pytest.raises(ValueError, match=message):
            resolve_config("tiny", overrides)
    assert resolve_config("tiny", {"model": {"text_encoder": "hash:64", "text_dim": 64}})["model"]["text_dim"] == 64


class _ReachedRay(Exception):
    """Raised where run() would start Ray: every check before it has passed."""


@pytest.fixture
def stop_at_ray(monkeypatch):
    """run() goes through its checks and stops where it would start a local Ray (raising _ReachedRay)."""
    import pipelines.train_affordance as ta

    def stop(*a, **k):
        raise _ReachedRay

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr("ray.is_initialized", lambda: False)
    monkeypatch.setattr(ta, "init_local_ray", stop)
    return _ReachedRay


def _fake_checkpoint(out):
    """A checkpoint on disk for run() to find (its contents are never read before Ray starts)."""
    import json

    from pipelines.train_affordance import RUN_NAME

    ckpt = out / "ray" / RUN_NAME / "checkpoint_000000"
    ckpt.mkdir(parents=True)
    (ckpt / "train_state.json").write_text(json.dumps({"epoch": 1}))
    (ckpt / "model.safetensors").write_bytes(b"")


def test_a_start_that_failed_before_its_first_checkpoint_does_not_block_the_corrected_command(table, tmp_path, stop_at_ray):
    """OUT/run.json from a start that died in the workers (no checkpoint) is replaced by the next command;
    with a checkpoint to resume, another model config is still refused."""
    import json

    import pipelines.train_affordance as ta

    ReachedRay = stop_at_ray
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"model": {"text_encoder": "something else"}}))
    with pytest.raises(ReachedRay):   # past the run.json check: nothing to resume, so nothing to protect
        ta.run([str(Path(table[1][0]).parent)], str(out), "tiny", {"model": {"text_encoder": "hash:64", "text_dim": 64}})
    assert json.loads((out / "run.json").read_text())["model"]["text_encoder"] == "hash:64"
    _fake_checkpoint(out)
    with pytest.raises(ValueError, match="holds a run with a different model config"):
        ta.run([str(Path(table[1][0]).parent)], str(out), "tiny", {"model": {"text_encoder": "hash:32", "text_dim": 32}})


def test_a_resume_with_other_training_settings_is_refused(table, tmp_path, stop_at_ray):
    """More --epochs continue a run; another --val-fraction (it would validate on videos the checkpoint
    trained on), seed, batch size or worker count is refused, naming the change."""
    import pipelines.train_affordance as ta

    ReachedRay = stop_at_ray
    out, shards = tmp_path / "run", [str(Path(table[1][0]).parent)]
    model = {"model": {"text_encoder": "hash:64", "text_dim": 64}}
    with pytest.raises(ReachedRay):
        ta.run(shards, str(out), "tiny", {**model, "train": {"epochs": 2, "val_fraction": 0.2}})
    _fake_checkpoint(out)
    with pytest.raises(ReachedRay):  # more epochs: continues
        ta.run(shards, str(out), "tiny", {**model, "train": {"epochs": 4, "val_fraction": 0.2}})
    with pytest.raises(ValueError, match=r"other settings \(val_fraction: 0.2 -> 0.3\)"):
        ta.run(shards, str(out), "tiny", {**model, "train": {"epochs": 4, "val_fraction": 0.3}})
    with pytest.raises(ValueError, match=r"num_workers: 1 -> 2"):
        ta.run(shards, str(out), "tiny", {**model, "train": {"epochs": 4, "val_fraction": 0.2}}, num_workers=2)


def test_the_ray_data_path_reads_the_files_in_a_new_seeded_order_each_epoch(monkeypatch):
    import ray.data

    from pipelines.train_affordance import build_datasets, resolve_config

    seen = {}

    class Stop(Exception):
        pass

    def fake_read(files, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(ray.data, "read_parquet", fake_read)
    cfg = resolve_config("tiny", {"model": {"text_encoder": "hash:64", "text_dim": 64}, "train": {"seed": 7}})
    with pytest.raises(Stop):
        build_datasets(["a.parquet"], cfg["model"], cfg["train"])
    shuffle = seen["shuffle"]
    assert shuffle == "files" or (shuffle.seed == 7 and shuffle.reseed_after_execution)
