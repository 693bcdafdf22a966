"""Small value checks shared by the configuration dataclasses (robot YAML sections, safety limits,
retargeting): YAML hands over strings, booleans and NaN where a number was meant, and each must be
refused at load with the field's name, not fail later mid-grasp."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_real(value: Any) -> bool:
    """A real number (Python's or numpy's int or float), not a bool and not a string."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def is_finite_real(value: Any) -> bool:
    """:func:`is_real` and finite (no NaN, no infinity)."""
    return is_real(value) and bool(np.isfinite(value))


__all__ = ["is_real", "is_finite_real"]
