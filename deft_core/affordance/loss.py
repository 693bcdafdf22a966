"""Eq. 1 of the paper and the validation metrics.

    L = λμ ‖μ − μ̂‖₂ + λθ ‖θ_wrist − θ̂_wrist‖₂ + λP ‖P − P̂‖₂      (λμ = 1.0, λθ = 0.1, λP = 0.1)

The norms are unsquared L2 norms, averaged over the batch. **Contact matching:** the model predicts K
points and a sample has k ≤ ``max_targets`` GMM means (padded + masked) in no particular order, so
the contact term is the symmetric Chamfer distance between the two point sets (crop-normalised
units): ½·(mean over targets of the distance to the nearest prediction + mean over predictions of the
distance to the nearest target). It is zero iff the sets coincide, invariant to GMM component order,
and the target→prediction half keeps every GMM mode covered.
"""

from __future__ import annotations

import numpy as np
import torch

from deft_core.geometry import axis_angle_to_matrix, rotation_angle_between


def chamfer(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Symmetric Chamfer distance per sample. pred (B, K, 2), target (B, T, 2), mask (B, T) → (B,)."""
    mask = mask.to(pred.dtype)
    d = torch.cdist(pred.float(), target.float())  # (B, K, T)
    big = torch.finfo(d.dtype).max / 4
    d_masked = d.masked_fill(mask.unsqueeze(1) < 0.5, big)
    pred_to_t = d_masked.min(dim=2).values.mean(dim=1)
    t_to_pred = (d.min(dim=1).values * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    return 0.5 * (pred_to_t + t_to_pred)


def affordance_loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], lambda_mu: float = 1.0,
                    lambda_theta: float = 0.1, lambda_pose: float = 0.1) -> dict[str, torch.Tensor]:
    """Eq. 1. ``batch`` has ``target_points`` (B, T, 2), ``target_mask`` (B, T), ``wrist`` (B, 3),
    ``pose`` (B, 45) and optionally ``hand_weight`` (B,): the wrist and pose terms are then averaged with
    those per-sample weights (a batch whose weights are all 0 contributes 0). Returns ``loss`` and its
    three terms ``contact``, ``wrist``, ``pose`` (before the λ weights)."""
    contact = chamfer(out["points"], batch["target_points"], batch["target_mask"]).mean()
    wrist_err = torch.linalg.vector_norm(out["wrist"] - batch["wrist"].float(), dim=-1)
    pose_err = torch.linalg.vector_norm(out["pose"] - batch["pose"].float(), dim=-1)
    if "hand_weight" in batch:
        w = batch["hand_weight"].to(wrist_err.dtype)
        total = w.sum().clamp_min(1e-6)
        wrist, pose = (w * wrist_err).sum() / total, (w * pose_err).sum() / total
    else:
        wrist, pose = wrist_err.mean(), pose_err.mean()
    loss = lambda_mu * contact + lambda_theta * wrist + lambda_pose * pose
    return {"loss": loss, "contact": contact.detach(), "wrist": wrist.detach(), "pose": pose.detach()}


def rotation_error_deg(pred_aa: np.ndarray, true_aa: np.ndarray) -> np.ndarray:
    """Geodesic angle (degrees) between axis-angle rotations, (..., 3) → (...)."""
    return np.degrees(rotation_angle_between(axis_angle_to_matrix(pred_aa), axis_angle_to_matrix(true_aa)))


def contact_error_px(points: np.ndarray, target: np.ndarray, mask: np.ndarray, crop_wh: np.ndarray) -> np.ndarray:
    """Mean over a sample's GMM means of the distance (px of the crop in the original frame) to the
    nearest predicted point. points (B, K, 2), target (B, T, 2) normalised, mask (B, T), crop_wh (B, 2)."""
    scale = crop_wh[:, None, :]
    d = np.linalg.norm((points * scale)[:, :, None, :] - (target * scale)[:, None, :, :], axis=-1)  # B,K,T
    nearest = d.min(axis=1)
    return (nearest * mask).sum(1) / np.maximum(mask.sum(1), 1.0)


class MetricAccumulator:
    """Sums per-sample validation errors: contact px, wrist deg, pose deg (mean over 15 joints)."""

    def __init__(self) -> None:
        self.sums = {"contact_px": 0.0, "wrist_deg": 0.0, "pose_deg": 0.0}
        self.n = 0

    def add(self, points, target, mask, crop_wh, wrist_pred, wrist_true, pose_pred, pose_true) -> None:
        self.sums["contact_px"] += float(contact_error_px(points, target, mask, crop_wh).sum())
        self.sums["wrist_deg"] += float(rotation_error_deg(wrist_pred, wrist_true).sum())
        pj = rotation_error_deg(pose_pred.reshape(-1, 15, 3), pose_true.reshape(-1, 15, 3)).mean(axis=1)
        self.sums["pose_deg"] += float(pj.sum())
        self.n += len(points)

    def result(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": v / max(self.n, 1) for k, v in self.sums.items()} | {f"{prefix}samples": self.n}
