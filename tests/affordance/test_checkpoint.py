"""Export → load round trip with identical outputs; bad checkpoint directories rejected with clear errors."""

import json

import numpy as np
import pytest
import torch

from deft_core.affordance import CheckpointError, load_affordance, save_export
from deft_core.affordance.model import AffordanceModel
from deft_core.affordance.predictor import fit_heatmap_gmm
from tests.affordance.conftest import tiny_config


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = AffordanceModel(tiny_config(64).model).eval()
    d = tmp_path_factory.mktemp("ckpt")
    save_export(d, model, {"rows": 3, "crop": {"square": True, "pad_fraction_of_short_side": 0.1}}, {"note": "test"},
                {"final": {"val_contact_px": 1.0}})
    return model, d


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (120, 200, 3), dtype=np.uint8)


def test_round_trip_gives_identical_outputs(exported):
    model, d = exported
    pred = load_affordance(d)
    assert json.loads((d / "config.json").read_text())["text_encoder"] == "hash:64"
    image, box = _image(), (40, 20, 104, 84)  # 64×64 box: the crop needs no resampling
    res = pred.predict(image, box, "pick up the cup")
    with torch.no_grad():
        crop = torch.from_numpy(image[20:84, 40:104][None].copy())
        emb = torch.from_numpy(pred.text_encoder.encode(["pick up the cup"]))
        ref = model(crop, emb)
    np.testing.assert_array_equal(res.points_normalised, ref["points"][0].numpy().astype(np.float64))
    np.testing.assert_array_equal(res.wrist_rotation, ref["wrist"][0].numpy().astype(np.float64))
    np.testing.assert_array_equal(res.hand_pose, ref["pose"][0].numpy().astype(np.float64))
    # image pixels: inside the box, consistent with the normalised points
    np.testing.assert_allclose(res.contact_points, np.array([40, 20]) + res.points_normalised * 64)
    assert res.gmm_means.shape == (3, 2) and res.gmm_vars.shape == (3, 2) and res.hand_pose.shape == (45,)
    assert np.all((res.contact_mean >= [40, 20]) & (res.contact_mean <= [104, 84]))


def test_crop_framings_and_the_training_framing_follows_extraction(exported, tmp_path):
    """framing="training" pads the tight object box (the same fraction of the short side as the training
    frames') and squares it inside the image, as pipelines.stages.crop frames v1; exports that do not record
    the padding get extraction's 20 px of a 256-px short side. The default crops the box as given."""
    from deft_core.affordance.predictor import DEFAULT_CROP_PAD_FRACTION
    from pipelines.stages.crop import square_box

    model, d = exported
    pred = load_affordance(d, framing="training")
    frame = np.random.default_rng(1).integers(0, 256, (256, 456, 3), dtype=np.uint8)
    for tight in [(300, 100, 340, 180), (420, 10, 456, 40), (0, 200, 30, 256)]:  # tall, at the corners
        crop, box = pred.crop(frame, tight)
        assert np.array_equal(box, square_box(tight, (456, 256), pad=0.1 * 256)) and box[2] - box[0] == box[3] - box[1]
        assert crop.shape == (64, 64, 3)
    assert np.array_equal(load_affordance(d).crop(frame, (300, 100, 340, 180))[1], [300, 100, 340, 180])  # default: as given
    assert np.array_equal(load_affordance(d, framing="square").crop(frame, (300, 100, 340, 180))[1], [280, 100, 360, 180])
    with pytest.raises(ValueError, match="framing 'padded' is not one of"):
        load_affordance(d, framing="padded")
    old = _copy(d, tmp_path / "old")
    cfg = json.loads((old / "config.json").read_text())
    del cfg["training"]["data"]["crop"]
    (old / "config.json").write_text(json.dumps(cfg))
    legacy = load_affordance(old, framing="training")
    assert legacy.crop_pad_fraction == DEFAULT_CROP_PAD_FRACTION
    _, box = legacy.crop(frame, (300, 100, 340, 180))
    assert np.array_equal(box, square_box((300, 100, 340, 180), (456, 256), pad=20))  # extraction's own crop


def test_predictor_rejects_bad_input(exported):
    pred = load_affordance(exported[1])
    with pytest.raises(ValueError, match="uint8"):
        pred.predict(_image().astype(np.float32), (0, 0, 10, 10), "x")
    with pytest.raises(ValueError, match="empty"):
        pred.predict(_image(), (300, 10, 320, 40), "x")


def _copy(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_missing_file_is_named(exported, tmp_path):
    d = _copy(exported[1], tmp_path / "c")
    (d / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_affordance(d)
    with pytest.raises(CheckpointError, match="not found"):
        load_affordance(tmp_path / "absent")
    run = tmp_path / "run"   # a training run's --out given instead of its model/ export
    run.mkdir()
    _copy(exported[1], run / "model")
    with pytest.raises(CheckpointError, match=r"looks like a training run's --out: its exported model is .*run/model"):
        load_affordance(run)
    with pytest.raises(CheckpointError, match="is a file: give the folder that holds it"):
        load_affordance(run / "model" / "model.safetensors")


@pytest.mark.parametrize("key, value, message", [
    ("schema_version", 99, "schema_version 99"),
    ("format_version", 2, "format_version 2 is not one this code reads.*upgrade deft"),  # a newer deft's export
])
def test_unknown_versions_are_refused_naming_them(exported, tmp_path, key, value, message):
    d = _copy(exported[1], tmp_path / "c")
    cfg = json.loads((d / "config.json").read_text())
    cfg[key] = value
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=message):
        load_affordance(d)


def test_checkpoint_trained_on_version_1_shards_still_loads(exported, tmp_path):
    """Schema 2 only added a provenance column no model reads: a model exported before it must load."""
    d = _copy(exported[1], tmp_path / "c")
    cfg = json.loads((d / "config.json").read_text())
    cfg["schema_version"] = 1
    (d / "config.json").write_text(json.dumps(cfg))
    assert load_affordance(d) is not None


def test_shape_mismatch_is_named(exported, tmp_path):
    d = _copy(exported[1], tmp_path / "c")
    cfg = json.loads((d / "config.json").read_text())
    cfg["model"]["num_points"] = 4
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"tensor 'heat_(out|text)\.(weight|bias)' has shape \(\d+"):
        load_affordance(d)


def test_unknown_config_field_is_named(exported, tmp_path):
    d = _copy(exported[1], tmp_path / "c")
    cfg = json.loads((d / "config.json").read_text())
    cfg["model"]["wings"] = 2
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="wings"):
        load_affordance(d)


def test_gmm_fit_recovers_two_modes():
    h = w = 40
    ys, xs = np.mgrid[0:h, 0:w]
    u, v = (xs + 0.5) / w, (ys + 0.5) / h
    prob = np.exp(-((u - 0.2) ** 2 + (v - 0.3) ** 2) / 0.002) + np.exp(-((u - 0.7) ** 2 + (v - 0.8) ** 2) / 0.002)
    prob /= prob.sum()
    means, var, pi = fit_heatmap_gmm(prob, np.array([[0.5, 0.5], [0.1, 0.1], [0.9, 0.9]]), k=2)
    got = means[np.argsort(means[:, 0])]
    np.testing.assert_allclose(got, [[0.2, 0.3], [0.7, 0.8]], atol=0.02)
    np.testing.assert_allclose(pi, [0.5, 0.5], atol=0.05)


def test_export_and_train_state_files_are_written_durably(tmp_path, monkeypatch):
    """Every file of an export and of a training checkpoint is fsynced before its rename (a power loss
    leaves each whole), and no temporary file is left; the bytes load back."""
    import os

    from deft_core.affordance.checkpoint import save_train_state
    from deft_core.finetune import episode_log

    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        try:
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            synced.append(str(fd))
        real_fsync(fd)

    monkeypatch.setattr(episode_log.os, "fsync", fsync)
    model = AffordanceModel(tiny_config(64).model).eval()
    save_export(tmp_path, model, {"rows": 1}, {"note": "test"}, {})
    opt = torch.optim.Adam(model.parameters())
    model(torch.zeros(1, 64, 64, 3, dtype=torch.uint8), torch.zeros(1, 64))["points"].sum().backward()
    opt.step()
    save_train_state(tmp_path, opt, {"epoch": 0})
    names = {os.path.basename(p) for p in synced}
    for f in ("model.safetensors", "config.json", "metrics.json", "train_state.safetensors", "train_state.json"):
        assert f + ".tmp" in names, (f, names)
    assert not list(tmp_path.glob("*.tmp"))
    load_affordance(tmp_path)
