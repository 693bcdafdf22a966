"""Tiny datasets for the job tests: the synth tests' fast fake renderer, with a static random-block
texture behind the scene (the fake's flat background has no ORB features, so the contact-point
homography could never be fitted), generated once per session (the HOI4D writer writes objpose/ itself)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.synth.generate import generate_dataset
from tests.synth.fakes import fake_render_clip

REPO = Path(__file__).resolve().parents[2]
CLIPS, CORRUPT = 6, 2


def textured_render_clip(**kw):
    clip = fake_render_clip(**kw)
    f = clip.frames
    rng = np.random.default_rng(kw["seed"])
    H, W = f.shape[1:3]
    small = rng.integers(20, 235, size=(H // 6 + 1, W // 6 + 1), dtype=np.uint8)
    tex = np.repeat(np.repeat(small, 6, 0), 6, 1)[:H, :W]
    bg = np.all(f == f[:, :1, :1], axis=-1)  # the fake fills its background with one colour (corner pixel)
    f[bg] = np.repeat(tex[None], f.shape[0], 0)[bg][:, None].repeat(3, 1)
    return clip


def _make(factory, dataset: str) -> Path:
    root = factory.mktemp(dataset) / "ds"
    generate_dataset(dataset, root, clips=CLIPS, seed=5, corrupt=CORRUPT, width=192, height=112,
                     render_fn=textured_render_clip, demos=False)
    return root


@pytest.fixture(scope="session")
def datasets(tmp_path_factory):
    return {d: _make(tmp_path_factory, d) for d in ("ego4d", "epic_kitchens", "hoi4d")}


def job_env() -> dict:
    """Environment for job subprocesses: the repo on PYTHONPATH (the test backend lives in tests/),
    the venv first on PATH (so `python` in a Ray job entrypoint is the venv's)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["RAY_AUTH_MODE"] = "disabled"
    env.pop("RAY_ADDRESS", None)
    return env


def hand_pose_args(dataset: str) -> list[str]:
    return [] if dataset == "hoi4d" else ["--hand-pose", "tests.jobs.backends:FixedHandPose"]
