"""Small generated datasets shared by the pipeline tests (read-only: a test that changes one copies it first)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def extracted(tmp_path_factory):
    """(root, out): a 6-clip EPIC dataset (one contact-free, one corrupted) and its extraction by the plain
    loop with a fixed hand pose."""
    from pipelines.sources.base import open_source
    from pipelines.stages.loop import run_local
    from pipelines.stages.process import ClipProcessor, ExtractConfig
    from pipelines.synth.generate import generate_dataset
    from tests.jobs.backends import FixedHandPose
    from tests.jobs.conftest import textured_render_clip

    root = tmp_path_factory.mktemp("q") / "epic"
    generate_dataset("epic_kitchens", root, clips=6, seed=5, corrupt=1, width=192, height=112,
                     render_fn=textured_render_clip, demos=False)
    out = root.parent / "out"
    cfg = ExtractConfig(dataset="epic_kitchens", hand_pose_backend="fixed")
    run_local(open_source("epic_kitchens", str(root)), out, cfg, processor=ClipProcessor(cfg, hand_pose=FixedHandPose()))
    return root, out


@pytest.fixture(scope="session")
def hoi4d_fake(tmp_path_factory):
    """A 3-clip synthetic HOI4D dataset with masks and depth."""
    from pipelines.synth.generate import generate_dataset
    from tests.jobs.conftest import textured_render_clip

    root = tmp_path_factory.mktemp("hoi4d_masks") / "ds"
    generate_dataset("hoi4d", root, clips=3, seed=5, width=192, height=112, render_fn=textured_render_clip, demos=False)
    return root
