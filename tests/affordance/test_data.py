"""Shard decoding, augmentation and the by-video split."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from deft_core.affordance.data import ShardDecoder, is_validation, iter_batches, list_shard_files, read_split
from deft_core.affordance.encoders import HashTextEncoder
from tests.affordance.fake_shards import make_rows, write_shards


def _pydict(rows):
    return {k: [r.get(k) for r in rows] for k in rows[0]}


def test_decode_shapes_and_targets():
    rows = make_rows(5, seed=2)
    b = ShardDecoder(64, "hash:32", max_targets=4)(_pydict(rows))
    assert b["image"].shape == (5, 64, 64, 3) and b["image"].dtype == np.uint8
    assert b["text_emb"].shape == (5, 32) and b["wrist"].shape == (5, 3) and b["pose"].shape == (5, 45)
    for i, r in enumerate(rows):
        k = len(r["gmm_means"])
        np.testing.assert_allclose(b["target_points"][i, :k], r["gmm_means"], atol=1e-6)
        assert b["target_mask"][i].sum() == k
        box = r["crop_box"]
        np.testing.assert_allclose(b["crop_wh"][i], [box[2] - box[0], box[3] - box[1]], rtol=1e-5)


def test_shard_embedding_is_used_when_the_encoder_matches():
    enc = HashTextEncoder(32)
    rows = make_rows(3, seed=4, with_embedding=enc)
    for r in rows:  # a marker only the shard has: proves the decoder did not recompute it
        r["text_embedding"] = [0.5] * 32
    b = ShardDecoder(64, "hash:32")(_pydict(rows))
    np.testing.assert_allclose(b["text_emb"], 0.5)
    b2 = ShardDecoder(64, "hash:16")(_pydict(rows))  # other encoder → computed
    np.testing.assert_allclose(b2["text_emb"], HashTextEncoder(16).encode([r["text"] for r in rows]))


def test_augmentation_moves_targets_with_the_crop_and_is_seeded():
    rows = _pydict(make_rows(6, seed=5))
    plain = ShardDecoder(64, "hash:32")(rows)
    a1 = ShardDecoder(64, "hash:32", augment=True, seed=7)(rows)
    a2 = ShardDecoder(64, "hash:32", augment=True, seed=7)(rows)
    np.testing.assert_array_equal(a1["image"], a2["image"])
    assert not np.array_equal(a1["image"], plain["image"])
    m = plain["target_mask"] > 0
    assert np.all((a1["target_points"][m] >= 0) & (a1["target_points"][m] <= 1))
    assert np.abs(a1["target_points"][m] - plain["target_points"][m]).max() > 1e-3
    np.testing.assert_array_equal(a1["wrist"], plain["wrist"])


def test_split_is_by_video_and_deterministic(tmp_path):
    write_shards(tmp_path, 80, files=3, seed=6)
    files = list_shard_files([tmp_path])
    assert len(files) == 3  # the errors table next to the shards is skipped
    tr, va = read_split(files, "train", 0.3), read_split(files, "val", 0.3)
    assert tr.num_rows + va.num_rows == 80 and va.num_rows > 0 and tr.num_rows > 0
    train_videos = set(zip(tr.column("dataset").to_pylist(), tr.column("video_id").to_pylist()))
    val_videos = set(zip(va.column("dataset").to_pylist(), va.column("video_id").to_pylist()))
    assert not train_videos & val_videos
    assert is_validation("ego4d", "v1", 0.3) == is_validation("ego4d", "v1", 0.3)
    frac = np.mean([is_validation("ego4d", f"v{i}", 0.25) for i in range(4000)])
    assert 0.22 < frac < 0.28
    batches = list(iter_batches(tr, 16, ShardDecoder(64, "hash:32")))
    assert sum(len(b["image"]) for b in batches) == tr.num_rows


def test_missing_or_empty_shard_dirs(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        list_shard_files([tmp_path / "nope"])
    with pytest.raises(FileNotFoundError, match="no affordance shards"):
        list_shard_files([tmp_path])
    t = pq.read_table(write_shards(tmp_path / "s", 4, files=1)[0]).drop_columns(["hand_pose"])
    pq.write_table(t, tmp_path / "s" / "bad.parquet")
    with pytest.raises(ValueError, match="hand_pose"):
        list_shard_files([tmp_path / "s"])


def test_a_folder_mixing_version_1_and_version_2_shards_trains(tmp_path):
    """An extraction output resumed after the schema-2 upgrade holds both versions; training reads all rows."""
    from tests.affordance.fake_shards import rows_to_table

    rows = make_rows(12, seed=4)
    d = tmp_path / "mixed"
    d.mkdir()
    old = rows_to_table(rows[:5]).drop_columns(["contact_mapping"])
    pq.write_table(old.replace_schema_metadata({**old.schema.metadata, b"deft.schema_version": b"1"}), d / "part-0.parquet")
    pq.write_table(rows_to_table(rows[5:]), d / "part-1.parquet")
    table = read_split(list_shard_files([d]), "all", 0.0)
    assert sorted(table.column("sample_id").to_pylist()) == sorted(r["sample_id"] for r in rows)


def test_rows_do_not_depend_on_how_samples_are_spread_over_files(tmp_path):
    """Extraction runs may put the same samples into different files, in a different order; the training
    table (and so a seeded run's batches) must be the same."""
    from tests.affordance.fake_shards import rows_to_table

    rows = make_rows(30, seed=8)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    pq.write_table(rows_to_table(rows), a / "part-0.parquet")
    rev = rows[::-1]
    pq.write_table(rows_to_table(rev[:11]), b / "part-0.parquet")
    pq.write_table(rows_to_table(rev[11:]), b / "part-1.parquet")
    ta, tb = read_split(list_shard_files([a]), "all", 0.0), read_split(list_shard_files([b]), "all", 0.0)
    assert ta.column("sample_id").to_pylist() == sorted(r["sample_id"] for r in rows)
    assert ta.equals(tb)
    dec = ShardDecoder(64, "hash:32")
    ba = next(iter_batches(ta, 8, dec, shuffle=True, seed=3))
    bb = next(iter_batches(tb, 8, dec, shuffle=True, seed=3))
    np.testing.assert_array_equal(ba["image"], bb["image"])


def _reference_colour_jitter(img, rng, strength=0.3):
    """The colour jitter as first written (and as every demo model so far was trained): the fast in-place
    version must give the same bytes, or models trained before and after it would differ."""
    x = img.astype(np.float32)
    b, c, s = rng.uniform(1 - strength, 1 + strength, size=3)
    x = x * b
    x = (x - x.mean()) * c + x.mean()
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * s + grey
    return np.clip(x, 0, 255).astype(np.uint8)


def test_colour_jitter_gives_the_reference_bytes():
    from deft_core.affordance.data import colour_jitter

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (int(h), int(w), 3), dtype=np.uint8) for h, w in rng.integers(1, 260, (200, 2))]
    images += [np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)]  # clipping at both ends
    images += [img[3:-5, 7:-2] for img in images[:20] if min(img.shape[:2]) > 12]  # the decoder jitters crop views
    for i, img in enumerate(images):
        for strength in (0.3, 0.9):
            got = colour_jitter(img, np.random.default_rng(i), strength)
            want = _reference_colour_jitter(img, np.random.default_rng(i), strength)
            assert got.dtype == np.uint8 and got.shape == img.shape
            assert np.array_equal(got, want), (i, strength, int(np.abs(got.astype(int) - want).max()))
