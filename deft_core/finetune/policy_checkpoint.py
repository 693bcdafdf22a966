"""Self-describing residual-policy checkpoints (DESIGN.md §3).

A checkpoint is a directory with

- ``config.json``: format id and version, policy ``kind``, the full :class:`PolicyConfig` (encoder,
  image preprocessing, sizes), the input/output layout, the training-data summary (episodes, rewards,
  task, source log) and the tensor shapes;
- ``model.safetensors``: every parameter and buffer, normalisation statistics included;
- ``metrics.json``: the training metrics returned by ``fit`` plus anything the caller adds.

Loading rebuilds the network from ``config.json`` alone, never unpickles, and checks that every tensor
in the file exists in the rebuilt network with the same shape (and vice versa) before loading.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file

from deft_core.finetune.encoders import IMAGENET_MEAN, IMAGENET_STD
from deft_core.finetune.episode_log import write_json_durable, write_safetensors_durable
from deft_core.finetune.policies import PolicyConfig, ResidualPolicy, policy_class
from deft_core.grasp import GRASP_DIM

FORMAT = "deft-residual-policy"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint directory is missing files or does not match the network its config describes."""


def save_policy(policy: ResidualPolicy, out_dir: str | Path, metrics: dict | None = None,
                extra: dict | None = None) -> Path:
    """Write ``policy`` to ``out_dir`` (created). ``extra`` (e.g. task, source log dir) goes into
    config.json's ``training_data``; ``metrics`` into metrics.json."""
    net = policy._require_net()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, **policy.config_dict(),
        "inputs": {"image": "RGB uint8 H×W×3 initial image I0", "xi": f"prior grasp ξ ({GRASP_DIM}, robot base frame)"},
        "output": "residual δ (22) added to ξ: μ m, θ rad (Euler xyz), hand joints rad",
        "image_preprocessing": {"resize": [policy.config.encoder.image_size] * 2, "interpolation": "area",
                                "scale": 1 / 255, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "training_data": {**policy.training_summary, **(extra or {})},
        "tensors": {k: list(v.shape) for k, v in state.items()},
    }
    # durably (fsync before rename): a policy is what the robot executes, never half-written
    write_safetensors_durable(out / "model.safetensors", state, {"format": FORMAT, "kind": policy.kind})
    write_json_durable(out / "config.json", config, indent=2)
    write_json_durable(out / "metrics.json", metrics or {}, indent=2)
    return out


def load_policy(ckpt_dir: str | Path) -> ResidualPolicy:
    """Rebuild a policy from a checkpoint directory written by :func:`save_policy`."""
    ckpt = Path(ckpt_dir)
    cfg_path, weights_path = ckpt / "config.json", ckpt / "model.safetensors"
    for p in (cfg_path, weights_path):
        if not p.exists():
            raise CheckpointError(f"{ckpt} is not a policy checkpoint: {p.name} is missing")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{cfg_path} is not a policy description (a JSON {type(config).__name__}, not an object)")
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path}: format is {config.get('format')!r}, expected {FORMAT!r}")
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path}: format_version {config.get('format_version')!r} is not supported "
                              f"(this code reads {FORMAT_VERSION})")
    try:
        policy = policy_class(config["kind"])(PolicyConfig.from_dict(config["policy"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{cfg_path}: bad policy config ({exc})") from None
    net = policy.build(for_loading=True)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors' own error type (a truncated or foreign file), or an OSError
        raise CheckpointError(f"{weights_path} is not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    problems = [f"missing tensor {k} {s}" for k, s in expected.items() if k not in state]
    problems += [f"unexpected tensor {k}" for k in state if k not in expected]
    problems += [f"tensor {k} has shape {tuple(state[k].shape)}, config implies {s}"
                 for k, s in expected.items() if k in state and tuple(state[k].shape) != s]
    if problems:
        raise CheckpointError(f"{weights_path} does not match {cfg_path.name}: " + "; ".join(problems[:8]))
    net.load_state_dict(state, strict=True)
    net.eval()
    policy.training_summary = dict(config.get("training_data", {}))
    return policy


def load_metrics(ckpt_dir: str | Path) -> dict:
    path = Path(ckpt_dir) / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


__all__ = ["save_policy", "load_policy", "load_metrics", "CheckpointError"]
