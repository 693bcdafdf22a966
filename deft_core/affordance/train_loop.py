"""The training loop as one pure function, shared by Ray Train and a plain process.

:func:`train_func` knows nothing about Ray: it receives callables that yield decoded batches (see
:mod:`deft_core.affordance.data`), a ``report(metrics, checkpoint_dir | None)`` callback, an optional
checkpoint to resume from and an optional ``wrap_model`` (Ray's ``prepare_model`` → DDP). The Ray
wiring (``get_dataset_shard``, ``ray.train.report``) lives in ``jobs/train.py``.

Per epoch it trains, validates (contact error in crop px, wrist and per-joint pose errors in degrees,
and the crop-centre baseline's contact error for scale), writes a checkpoint directory (an export plus
optimiser state) on the chief worker and calls ``report``. The learning rate follows a linear warm-up
and a cosine decay to zero over ``epochs × steps_per_epoch`` steps, computed from the global step, so a
resumed run continues on the same schedule.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from deft_core.affordance.checkpoint import check_state_dict, load_train_state, save_export, save_train_state
from deft_core.affordance.config import ModelConfig, TrainConfig, dataclass_from_dict
from deft_core.affordance.data import DECODED_KEYS
from deft_core.affordance.loss import MetricAccumulator, affordance_loss
from deft_core.affordance.model import AffordanceModel

Batch = dict[str, Any]
Report = Callable[[dict, "str | None"], None]


def to_tensors(batch: Batch, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Decoded batch (numpy or torch values) → tensors on ``device`` (only :data:`DECODED_KEYS`)."""
    missing = [k for k in DECODED_KEYS if k not in batch]
    if missing:
        raise KeyError(f"batch is missing decoded columns {missing}")
    return {k: torch.as_tensor(np.asarray(batch[k]) if not torch.is_tensor(batch[k]) else batch[k]).to(device)
            for k in DECODED_KEYS}


def learning_rate(step: int, total: int, base: float, warmup: int = 0) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``base`` to 0 at ``total`` steps."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * base * (1.0 + math.cos(math.pi * progress))


PRECISIONS = ("fp32", "bf16")


def precision_context(precision: str, device: str | torch.device = "cpu") -> Callable[[], Any]:
    """A factory of the context the training step's forward pass and loss run in: ``fp32`` → nothing,
    ``bf16`` → ``torch.autocast`` to bfloat16 on ``device``'s type (no loss scaling needed: bfloat16 has
    float32's exponent range). An unknown name is a ValueError naming the choices."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {list(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext
    dev = torch.device(device).type
    return lambda: torch.autocast(device_type=dev, dtype=torch.bfloat16)


def evaluate_batches(model: torch.nn.Module, batches: Iterable[Batch], tc: TrainConfig, device="cpu") -> dict:
    """Validation loss terms and errors over ``batches`` (model put in eval mode)."""
    model.eval()
    acc, base = MetricAccumulator(), MetricAccumulator()
    sums, n = {"loss": 0.0, "contact": 0.0, "wrist": 0.0, "pose": 0.0}, 0
    with torch.no_grad():
        for raw in batches:
            b = to_tensors(raw, device)
            out = model(b["image"], b["text_emb"])
            terms = affordance_loss(out, b, tc.lambda_mu, tc.lambda_theta, tc.lambda_pose)
            bs = len(b["image"])
            for k in sums:
                sums[k] += float(terms[k].detach()) * bs
            n += bs
            npb = {k: v.cpu().numpy() for k, v in b.items()}
            args = (npb["target_points"], npb["target_mask"], npb["crop_wh"])
            acc.add(out["points"].cpu().numpy(), *args, out["wrist"].cpu().numpy(), npb["wrist"],
                    out["pose"].cpu().numpy(), npb["pose"])
            centre = np.full_like(out["points"].cpu().numpy(), 0.5)
            base.add(centre, *args, npb["wrist"], npb["wrist"], npb["pose"], npb["pose"])
    res = {f"val_{k}": v / max(n, 1) for k, v in sums.items()} | acc.result("val_")
    res["val_baseline_centre_contact_px"] = base.result()["contact_px"]
    return res


def train_func(config: dict, train_batches: Callable[[int], Iterable[Batch]],
               val_batches: Callable[[], Iterable[Batch]] | None, report: Report, resume_dir: str | None = None,
               device: str | torch.device = "cpu", wrap_model: Callable | None = None, is_chief: bool = True) -> list[dict]:
    """Train the affordance model. ``config``: ``model`` and ``train`` dicts (dataclass fields),
    ``steps_per_epoch`` (for the schedule), optional ``data_summary`` and ``tensorboard_dir``.

    ``train_batches(epoch)`` yields decoded training batches, ``val_batches()`` validation ones. On every
    worker ``report(metrics, ckpt_dir)`` is called once per epoch (``ckpt_dir`` only on the chief, a
    temporary directory the callback must copy before returning). Returns the metric history.

    Per-epoch timing metrics (seconds, wall clock in this process): ``train_seconds`` (the whole training
    pass), ``train_samples_per_s``, ``train_data_wait_s`` (time blocked on ``train_batches`` — decode or the
    Ray Data pipeline — rather than on compute) and ``train_first_batch_s`` (until the first batch arrived);
    ``torch_threads`` records the intra-op thread count the epoch ran with. ``train.precision`` ``bf16``
    runs each step's forward pass and loss under bfloat16 autocast (:func:`precision_context`)."""
    mc = dataclass_from_dict(ModelConfig, config["model"], "config['model']")
    tc = dataclass_from_dict(TrainConfig, config["train"], "config['train']")
    autocast = precision_context(tc.precision, device)
    torch.manual_seed(tc.seed)
    np.random.seed(tc.seed)
    model = AffordanceModel(mc).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    start_epoch, step, history = 0, 0, []
    if resume_dir:
        from safetensors.torch import load_file

        state = load_file(str(Path(resume_dir) / "model.safetensors"), device="cpu")
        check_state_dict(model, state, str(resume_dir))
        model.load_state_dict(state)
        saved = load_train_state(resume_dir, optimizer)
        start_epoch, step, history = int(saved["epoch"]) + 1, int(saved["step"]), list(saved.get("history", []))
    net = wrap_model(model) if wrap_model else model
    total = tc.epochs * max(1, int(config.get("steps_per_epoch", 1)))
    writer = None
    if is_chief and config.get("tensorboard_dir"):
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(config["tensorboard_dir"])
    for epoch in range(start_epoch, tc.epochs):
        net.train()
        t0, sums, n = time.perf_counter(), {"loss": 0.0, "contact": 0.0, "wrist": 0.0, "pose": 0.0}, 0
        wait, first_batch_s, t_ready = 0.0, None, time.perf_counter()
        for raw in train_batches(epoch):
            t_got = time.perf_counter()
            wait += t_got - t_ready  # time blocked on the batch source (decode / Ray Data), not on compute
            first_batch_s = t_got - t0 if first_batch_s is None else first_batch_s
            for g in optimizer.param_groups:
                g["lr"] = learning_rate(step, total, tc.lr, tc.warmup_steps)
            b = to_tensors(raw, device)
            with autocast():
                terms = affordance_loss(net(b["image"], b["text_emb"]), b, tc.lambda_mu, tc.lambda_theta, tc.lambda_pose)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            step += 1
            bs = len(b["image"])
            for k in sums:
                sums[k] += float(terms[k].detach()) * bs
            n += bs
            t_ready = time.perf_counter()
        train_s = time.perf_counter() - t0
        metrics = {"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"], "train_samples": n,
                   "train_seconds": train_s, "train_samples_per_s": n / max(train_s, 1e-9),
                   "train_data_wait_s": wait, "train_first_batch_s": first_batch_s or 0.0,
                   "torch_threads": torch.get_num_threads(), "precision": tc.precision}
        metrics |= {f"train_{k}": v / max(n, 1) for k, v in sums.items()}
        if val_batches is not None:
            metrics |= evaluate_batches(model, val_batches(), tc, device)
        history.append(metrics)
        if writer is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    writer.add_scalar(k, v, epoch)
            writer.flush()
        if is_chief:
            with tempfile.TemporaryDirectory(prefix="deft-ckpt-") as tmp:
                save_export(tmp, model, config.get("data_summary"), {"model": config["model"], "train": config["train"]},
                            {"final": metrics, "history": history})
                save_train_state(tmp, optimizer, {"epoch": epoch, "step": step, "history": history})
                report(metrics, tmp)
        else:
            report(metrics, None)
    if writer is not None:
        writer.close()
    return history
