"""Self-describing affordance checkpoints (DESIGN.md §3). Nothing here ever unpickles.

An exported directory holds:

- ``config.json`` — format id, ``schema_version`` (the sample schema of the code that exported it; loading
  accepts every readable version, since no column a model reads has changed), the architecture
  (:class:`~deft_core.affordance.config.ModelConfig`), image preprocessing, the text encoder id, the
  output layout and a training-data summary;
- ``model.safetensors`` — the weights;
- ``metrics.json`` — per-epoch training/validation metrics and the final ones.

A training checkpoint (one per epoch) is the same directory plus ``train_state.safetensors`` (optimiser
tensors) and ``train_state.json`` (epoch, step, optimiser hyper-parameters, metric history), so any
epoch's checkpoint is also loadable by :func:`load_affordance`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from deft_core.affordance.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig, dataclass_from_dict
from deft_core.affordance.model import AffordanceModel
from deft_core.finetune.episode_log import write_json_durable, write_safetensors_durable
from deft_core.version import READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION, __version__

FORMAT = "deft.affordance"
FORMAT_VERSION = 1
REQUIRED_FILES = ("config.json", "model.safetensors", "metrics.json")


class CheckpointError(ValueError):
    """A checkpoint directory is missing files or disagrees with this code (named in the message)."""


def _write_json(path: Path, data: Any) -> None:
    """Durably (temporary file, fsync, rename, fsync of the folder), as every file of an export: a crash or
    power loss leaves each file whole, old or new, never empty or cut short."""
    write_json_durable(path, data, newline=False, indent=2, sort_keys=True)


def build_config_json(cfg: ModelConfig, data_summary: dict | None = None, train: dict | None = None) -> dict:
    s = cfg.image_size
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "schema_version": SCHEMA_VERSION,
        "deft_version": __version__, "model": dataclasses.asdict(cfg), "text_encoder": cfg.text_encoder,
        "image_preprocessing": {"input": "object crop, RGB uint8 HxWx3", "resize": [s, s], "keep_aspect": False,
                                "interpolation": "area", "normalise_in_model": {"scale": 1 / 255, "mean": IMAGENET_MEAN,
                                                                                "std": IMAGENET_STD}},
        "outputs": {"points": f"({cfg.num_points}, 2) crop-normalised (x right, y down)",
                    "wrist": "(3,) axis-angle, camera frame, OpenCV axes, rad",
                    "pose": "(45,) MANO axis-angle, right hand, flat-hand-mean, order index/middle/pinky/ring/thumb"},
        "training": {"config": train or {}, "data": data_summary or {}},
    }


def save_export(directory: str | Path, model: AffordanceModel, data_summary: dict | None = None,
                train: dict | None = None, metrics: dict | None = None) -> Path:
    """Write ``config.json``, ``model.safetensors`` and ``metrics.json`` into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_safetensors_durable(d / "model.safetensors", state, {"format": FORMAT})
    _write_json(d / "config.json", build_config_json(model.cfg, data_summary, train))
    _write_json(d / "metrics.json", metrics or {})
    return d


def read_config(directory: str | Path) -> tuple[dict, ModelConfig]:
    """Validate a checkpoint directory's files and ``config.json``; returns (raw json, ModelConfig)."""
    d = Path(directory)
    if d.is_file():
        raise CheckpointError(f"checkpoint {d} is a file: give the folder that holds it ({d.parent})")
    if not d.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {d}")
    missing = [f for f in REQUIRED_FILES if not (d / f).is_file()]
    if missing:
        hint = (f"; {d} looks like a training run's --out: its exported model is {d / 'model'}"
                if all((d / "model" / f).is_file() for f in REQUIRED_FILES) else "")
        raise CheckpointError(f"checkpoint {d} is missing {missing}{hint}")
    try:
        raw = json.loads((d / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{d / 'config.json'} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise CheckpointError(f"{d / 'config.json'} is not an affordance model description (a JSON "
                              f"{type(raw).__name__}, not an object)")
    if raw.get("format") != FORMAT:
        raise CheckpointError(f"{d / 'config.json'}: format {raw.get('format')!r} is not {FORMAT!r}")
    version = raw.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(f"{d / 'config.json'}: format_version {version!r} is not one this code reads "
                              f"(1..{FORMAT_VERSION}); a newer deft wrote it: upgrade deft to load it")
    if raw.get("schema_version") not in READABLE_SCHEMA_VERSIONS:  # a model reads no column added since 1
        raise CheckpointError(f"{d / 'config.json'}: schema_version {raw.get('schema_version')!r} does not match "
                              f"this code's affordance schema versions {', '.join(map(str, READABLE_SCHEMA_VERSIONS))}")
    if not isinstance(raw.get("model"), dict):
        raise CheckpointError(f"{d / 'config.json'}: no 'model' section (the architecture); not an exported model")
    try:
        cfg = dataclass_from_dict(ModelConfig, raw["model"], str(d / "config.json"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{d / 'config.json'}: bad 'model' section: {exc}") from exc
    return raw, cfg


def load_model(directory: str | Path, device: str = "cpu") -> tuple[AffordanceModel, dict]:
    """Rebuild the model from ``config.json`` and load ``model.safetensors``, checking every tensor's
    name and shape against the architecture. Returns (model in eval mode, raw config json)."""
    d = Path(directory)
    raw, cfg = read_config(d)
    model = AffordanceModel(cfg, load_visual_weights=False)
    try:
        state = load_file(str(d / "model.safetensors"), device="cpu")
    except Exception as exc:
        raise CheckpointError(f"{d / 'model.safetensors'} is not a readable safetensors file: {exc}") from exc
    check_state_dict(model, state, str(d / "model.safetensors"))
    model.load_state_dict(state)
    return model.to(device).eval(), raw


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{source}: tensors do not match the architecture in config.json: missing "
                              f"{missing[:5]} ({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(f"{source}: tensor {k!r} has shape {tuple(v.shape)} but config.json's "
                                  f"architecture needs {tuple(own[k].shape)}")


# ------------------------------------------------------------------------------------ training state


def save_train_state(directory: str | Path, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Optimiser tensors → ``train_state.safetensors``; everything else (JSON-able) → ``train_state.json``."""
    d = Path(directory)
    opt = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, pstate in opt["state"].items():
        for name, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{idx}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}/{name}"] = value
    write_safetensors_durable(d / "train_state.safetensors", tensors)
    _write_json(d / "train_state.json", {**state, "optimizer": {"param_groups": opt["param_groups"], "scalars": scalars}})


def load_train_state(directory: str | Path, optimizer: torch.optim.Optimizer) -> dict:
    """Restore the optimiser from a training checkpoint; returns the saved JSON state (epoch, step, …)."""
    d = Path(directory)
    for f in ("train_state.json", "train_state.safetensors"):
        if not (d / f).is_file():
            raise CheckpointError(f"training checkpoint {d} is missing {f}")
    raw = json.loads((d / "train_state.json").read_text())
    tensors = load_file(str(d / "train_state.safetensors"))
    per_param: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(raw["optimizer"]["scalars"].items()):
        idx, name = key.split("/", 1)
        per_param.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": raw["optimizer"]["param_groups"]})
    return raw


def load_affordance(directory: str | Path, device: str = "cpu", text_encoder=None, framing: str = "box"):
    """Load an exported checkpoint as an :class:`~deft_core.affordance.predictor.AffordancePredictor`.

    ``text_encoder``: an already-built encoder with the checkpoint's id (else built from the id);
    ``framing``: how the object box becomes the model's crop (:attr:`AffordancePredictor.FRAMINGS`)."""
    from deft_core.affordance.predictor import AffordancePredictor

    model, raw = load_model(directory, device=device)
    return AffordancePredictor(model, raw, text_encoder=text_encoder, device=device, framing=framing)
