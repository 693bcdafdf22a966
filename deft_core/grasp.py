"""Grasp parameters ξ (paper Table 1) and the initial CEM sigmas (Table 4).

ξ is a 22-vector in the **robot base frame**:

==========  =====  ==============================================================
slice       size   meaning
==========  =====  ==============================================================
``MU``      3      contact location μ, metres
``THETA``   3      wrist rotation θ, extrinsic Euler xyz, radians
``HAND``    16     hand joint targets P, radians, 0 = flat open hand
==========  =====  ==============================================================

Hand joint order (LEAP/DASH style): index, middle, ring, thumb, each
``[MCP-side, MCP-forward, PIP, DIP]`` (for the thumb: CMC-side, CMC-forward, MCP, IP).
Positive forward/PIP/DIP angles close the finger; positive side angles spread towards the thumb side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRASP_DIM = 22
MU = slice(0, 3)
THETA = slice(3, 6)
HAND = slice(6, 22)

FINGERS = ("index", "middle", "ring", "thumb")
FINGER_JOINTS = ("mcp_side", "mcp_forward", "pip", "dip")
HAND_JOINT_NAMES: tuple[str, ...] = tuple(f"{f}_{j}" for f in FINGERS for j in FINGER_JOINTS)
assert len(HAND_JOINT_NAMES) == 16

#: Table 4 initial standard deviations: contact location (m), wrist rotation (rad), hand joints.
SIGMA_MU = 0.02
SIGMA_THETA = 0.2
SIGMA_HAND = 0.05


def initial_sigma(sigma_mu: float = SIGMA_MU, sigma_theta: float = SIGMA_THETA, sigma_hand: float = SIGMA_HAND) -> np.ndarray:
    """The 22-d vector of initial CEM standard deviations (Table 4 defaults)."""
    s = np.empty(GRASP_DIM)
    s[MU] = sigma_mu
    s[THETA] = sigma_theta
    s[HAND] = sigma_hand
    return s


@dataclass(frozen=True)
class GraspParams:
    """Named view of ξ. ``mu`` (3, m), ``theta`` (3, rad, Euler xyz), ``hand`` (16, rad); robot base frame."""

    mu: np.ndarray
    theta: np.ndarray
    hand: np.ndarray

    def __post_init__(self) -> None:
        for name, size in (("mu", 3), ("theta", 3), ("hand", 16)):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (size,):
                raise ValueError(f"GraspParams.{name} must have shape ({size},), got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"GraspParams.{name} contains non-finite values: {value}")
            object.__setattr__(self, name, value)

    def to_vector(self) -> np.ndarray:
        v = np.empty(GRASP_DIM)
        v[MU], v[THETA], v[HAND] = self.mu, self.theta, self.hand
        return v

    @classmethod
    def from_vector(cls, v: np.ndarray) -> "GraspParams":
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (GRASP_DIM,):
            raise ValueError(f"a grasp vector has shape ({GRASP_DIM},), got {v.shape}")
        return cls(mu=v[MU].copy(), theta=v[THETA].copy(), hand=v[HAND].copy())

    def __add__(self, residual: np.ndarray) -> "GraspParams":
        """ξ + ε for a 22-d residual ε."""
        return GraspParams.from_vector(self.to_vector() + np.asarray(residual, dtype=np.float64))

    def to_dict(self) -> dict:
        return {"mu": self.mu.tolist(), "theta": self.theta.tolist(), "hand": self.hand.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "GraspParams":
        missing = {"mu", "theta", "hand"} - set(d)
        if missing:
            raise ValueError(f"grasp parameters are missing keys {sorted(missing)}")
        extra = set(d) - {"mu", "theta", "hand"}
        if extra:  # a misspelt key would otherwise be dropped without a word
            raise ValueError(f"grasp parameters have unknown keys {sorted(extra)} (expected mu, theta, hand)")
        return cls(mu=np.asarray(d["mu"]), theta=np.asarray(d["theta"]), hand=np.asarray(d["hand"]))
