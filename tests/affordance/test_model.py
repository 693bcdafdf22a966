"""Shapes, spatial softmax, the Eq. 1 loss and that the loss goes down on a tiny batch."""

import numpy as np
import pytest
import torch

from deft_core.affordance.data import ShardDecoder
from deft_core.affordance.loss import affordance_loss, chamfer
from deft_core.affordance.model import AffordanceModel, spatial_softmax
from deft_core.affordance.train_loop import learning_rate, to_tensors
from tests.affordance.conftest import tiny_config
from tests.affordance.fake_shards import make_rows


def test_output_shapes_and_ranges():
    p = tiny_config(64)
    torch.manual_seed(0)
    model = AffordanceModel(p.model).eval()
    out = model(torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8), torch.randn(3, 64))
    assert out["points"].shape == (3, 5, 2) and out["heatmaps"].shape == (3, 5, 16, 16)
    assert out["wrist"].shape == (3, 3) and out["pose"].shape == (3, 45)
    assert torch.all((out["points"] >= 0) & (out["points"] <= 1))
    assert torch.allclose(out["heatmaps"].sum((-1, -2)), torch.ones(3, 5), atol=1e-5)


def test_bad_inputs_rejected():
    model = AffordanceModel(tiny_config(64).model)
    with pytest.raises(ValueError, match=r"\(B, 64, 64, 3\)"):
        model(torch.zeros(1, 3, 64, 64), torch.zeros(1, 64))
    with pytest.raises(ValueError, match="text_emb"):
        model(torch.zeros(1, 64, 64, 3), torch.zeros(1, 32))


def test_spatial_softmax_finds_the_peak():
    logits = torch.full((1, 2, 8, 10), -50.0)
    logits[0, 0, 2, 7] = 50.0
    logits[0, 1, 5, 1] = 50.0
    prob, pts = spatial_softmax(logits)
    assert torch.allclose(pts[0, 0], torch.tensor([7.5 / 10, 2.5 / 8]), atol=1e-4)
    assert torch.allclose(pts[0, 1], torch.tensor([1.5 / 10, 5.5 / 8]), atol=1e-4)


def test_chamfer_is_order_invariant_and_masks_padding():
    a = torch.tensor([[[0.1, 0.2], [0.8, 0.7]]])
    tgt = torch.tensor([[[0.8, 0.7], [0.1, 0.2], [9.0, 9.0]]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert chamfer(a, tgt, mask).item() == pytest.approx(0.0, abs=1e-6)
    far = torch.tensor([[[0.5, 0.5], [0.5, 0.5]]])
    assert chamfer(far, tgt, mask).item() > 0.3


def test_learning_rate_schedule():
    assert learning_rate(0, 100, 1e-3) == pytest.approx(1e-3)
    assert learning_rate(50, 100, 1e-3) == pytest.approx(5e-4)
    assert learning_rate(100, 100, 1e-3) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(0, 100, 1e-3, warmup=10) == pytest.approx(1e-4)


def test_loss_decreases_on_a_tiny_batch():
    p = tiny_config(64)
    torch.manual_seed(0)
    batch = to_tensors(ShardDecoder(64, p.model.text_encoder)(_pydict(make_rows(4, seed=3))))
    model = AffordanceModel(p.model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(10):
        terms = affordance_loss(model(batch["image"], batch["text_emb"]), batch)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(float(terms["loss"].detach()))
    assert losses[-1] < 0.5 * losses[0], losses
    assert set(terms) == {"loss", "contact", "wrist", "pose"}


def _pydict(rows):
    return {k: [r.get(k) for r in rows] for k in rows[0]}
