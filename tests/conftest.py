"""Shared pytest configuration. Tests never need hardware, network or downloaded weights."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
