"""End to end without Ray: the tiny model trained on fake shards beats the trivial baselines, its contact
prediction depends on the text, and `deft model evaluate` writes its report."""

import json

import numpy as np
import pytest

from deft_core.affordance import load_affordance
from deft_core.affordance.data import ShardDecoder, iter_batches, list_shard_files, read_split
from deft_core.affordance.train_loop import train_func
from pipelines.cli import main as deft_main
from tests.affordance.conftest import config_dict, tiny_config
from tests.affordance.fake_shards import TEXTS, draw_cup, labels

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    from tests.affordance.fake_shards import write_shards

    write_shards(root / "shards", 320, files=2, seed=0)
    files = list_shard_files([root / "shards"])
    p = tiny_config(64)
    p.train.epochs = 8
    tr, va = read_split(files, "train", 0.2), read_split(files, "val", 0.2)
    dec, vdec = ShardDecoder(64, p.model.text_encoder, augment=True, seed=0), ShardDecoder(64, p.model.text_encoder)
    reported = []

    def report(metrics, ckpt):
        reported.append(metrics)
        if ckpt:  # keep the newest checkpoint as the export
            import shutil

            shutil.copytree(ckpt, root / "model", dirs_exist_ok=True)

    history = train_func(config_dict(p, -(-tr.num_rows // 32)), lambda e: iter_batches(tr, 32, dec, True, 0, e),
                         lambda: iter_batches(va, 64, vdec), report)
    return root, history


def test_history_and_checkpoint(trained):
    root, history = trained
    assert [m["epoch"] for m in history] == list(range(8))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert (root / "model" / "train_state.json").is_file()


def test_beats_baselines_and_depends_on_text(trained, capsys):
    root, _ = trained
    out = root / "report"
    assert deft_main(["model", "evaluate", "--checkpoint", str(root / "model"), "--shards", str(root / "shards"),
                      "--out", str(out), "--images", "8"]) == 0
    rep = json.loads((out / "metrics.json").read_text())
    assert (out / "heatmaps.png").stat().st_size > 10_000
    assert rep["samples"] > 30
    assert rep["model"]["contact_px"] < 0.7 * rep["baselines"]["crop_centre_contact_px"], rep
    assert rep["model"]["wrist_deg"] < 0.6 * rep["baselines"]["train_mean_wrist_deg"], rep
    assert rep["model"]["pose_deg"] < 0.6 * rep["baselines"]["train_mean_pose_deg"], rep
    per = rep["by_hand_pose_source"]              # one label source ("fake") here: the same numbers again
    assert list(per) == ["fake"] and per["fake"]["samples"] == rep["samples"]
    assert abs(per["fake"]["model_wrist_deg"] - rep["model"]["wrist_deg"]) < 1e-6
    assert abs(per["fake"]["source_mean_pose_deg"] - rep["baselines"]["train_mean_pose_deg"]) < 1e-6
    (root / "report.json").write_text(json.dumps(rep))
    assert rep["device"] == "cpu"  # the default


def test_evaluate_device_option(trained, tmp_path, capsys):
    """--device auto takes a visible GPU, else the CPU, and says which; --device cuda without a GPU is one
    clear error, not a CUDA traceback (the GPU path itself: benchmarks/gpu_check.py on an H200)."""
    import torch

    root, _ = trained
    args = ["model", "evaluate", "--checkpoint", str(root / "model"), "--shards", str(root / "shards"), "--images", "2"]
    assert deft_main(args + ["--out", str(tmp_path / "auto"), "--device", "auto"]) == 0
    rep = json.loads((tmp_path / "auto" / "metrics.json").read_text())
    assert rep["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        assert deft_main(args + ["--out", str(tmp_path / "cuda"), "--device", "cuda"]) != 0
        assert "torch sees no CUDA GPU" in capsys.readouterr().err
        assert not (tmp_path / "cuda").exists()


def _chamfer(a, b):
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    return 0.5 * (d.min(0).mean() + d.min(1).mean())


def test_contact_depends_on_text(trained):
    """Same crop, two texts. The fake data puts "pick up the cup" contacts on both sides of the body and
    "pour the cup" contacts on the handle. A contact head that ignores the text predicts the same points
    for both, so its shift is 0 and it can never put BOTH predictions nearer their own text's region
    than the other's (0 wins): this test fails for the paper's image-only head (text_film=False)."""
    root, _ = trained
    rep = json.loads((root / "report.json").read_text())
    assert rep["text_swap_contact_shift_px"] > 2.0, rep
    pred, rng, wins, shifts, dists = load_affordance(root / "model"), np.random.default_rng(123), 0, [], []
    for _ in range(20):
        img, geom = draw_cup(rng, 96)
        frame = np.zeros((200, 300, 3), np.uint8)
        frame[50:146, 100:196] = img
        true = {t: labels(geom, t, rng)["gmm_means"] * 96 + [100, 50] for t in TEXTS}
        got = {t: pred.predict(frame, (100, 50, 196, 146), t) for t in TEXTS}
        shifts.append(np.linalg.norm(got[TEXTS[0]].contact_mean - got[TEXTS[1]].contact_mean))
        dists.append(np.linalg.norm(true[TEXTS[0]].mean(0) - true[TEXTS[1]].mean(0)))
        wins += all(_chamfer(got[t].contact_points, true[t]) < _chamfer(got[t].contact_points, true[o])
                    for t, o in (TEXTS, TEXTS[::-1]))
    # the mean contact moves by a sizeable part of the distance between the two true regions
    assert np.mean(shifts) > 0.25 * np.mean(dists), (np.mean(shifts), np.mean(dists))
    assert wins >= 8, wins


def test_hand_label_weights_mask_the_wrist_and_pose_terms(shard_dir):
    """Per-sample hand_weight (from hand_pose_source) averages the wrist/pose terms over trusted rows only:
    a row with weight 0 cannot move them, whatever its label; the contact term is untouched."""
    import torch

    from deft_core.affordance.data import ShardDecoder
    from deft_core.affordance.loss import affordance_loss

    out = {"points": torch.zeros(2, 3, 2), "wrist": torch.zeros(2, 3), "pose": torch.zeros(2, 45)}
    batch = {"target_points": torch.zeros(2, 1, 2), "target_mask": torch.ones(2, 1),
             "wrist": torch.tensor([[1.0, 0, 0], [100.0, 0, 0]]), "pose": torch.zeros(2, 45)}
    batch["pose"][1, 0] = 50.0
    plain = affordance_loss(out, batch)
    weighted = affordance_loss(out, batch | {"hand_weight": torch.tensor([1.0, 0.0])})
    assert abs(float(plain["wrist"]) - 50.5) < 1e-4 and abs(float(weighted["wrist"]) - 1.0) < 1e-5
    assert abs(float(plain["pose"]) - 25.0) < 1e-4 and float(weighted["pose"]) == 0.0
    assert float(plain["contact"]) == float(weighted["contact"])
    none = affordance_loss(out, batch | {"hand_weight": torch.zeros(2)})
    assert float(none["wrist"]) == 0.0 and float(none["pose"]) == 0.0
    table = read_split(list_shard_files([shard_dir]), "train", 0.0)  # rows with hand_pose_source "fake"
    b = next(iter_batches(table, 8, ShardDecoder(64, "hash:16", hand_label_weights={"fake": 0.25, "hoi4d": 2.0})))
    assert b["hand_weight"].shape == (8,) and np.all(b["hand_weight"] == 0.25)
    b = next(iter_batches(table, 8, ShardDecoder(64, "hash:16", hand_label_weights={"mediapipe": 0.0})))
    assert np.all(b["hand_weight"] == 1.0)                     # sources not named keep weight 1


def test_train_job_parses_hand_label_weights():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("train_job", Path(__file__).resolve().parents[2] / "jobs" / "train.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    assert job.hand_label_weights(["mediapipe=0", "hoi4d=1.5"]) == {"mediapipe": 0.0, "hoi4d": 1.5}
    assert job.hand_label_weights([]) is None
    for bad in ("mediapipe", "=1", "mediapipe=-1", "mediapipe=x"):
        with pytest.raises(SystemExit, match="SOURCE=W"):
            job.hand_label_weights([bad])
