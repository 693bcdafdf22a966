"""Fixtures: small datasets generated with the fast fake renderer (one per format, module scope)."""

import pytest

from pipelines.synth.generate import generate_dataset
from tests.synth.fakes import fake_render_clip, fake_render_demo


def _make(tmp_path_factory, dataset, clips, corrupt):
    root = tmp_path_factory.mktemp(dataset) / "ds"
    generate_dataset(dataset, root, clips=clips, seed=3, corrupt=corrupt, width=160, height=96,
                     render_fn=fake_render_clip, demo_fn=fake_render_demo)
    return root


@pytest.fixture(scope="session")
def ego4d_root(tmp_path_factory):
    return _make(tmp_path_factory, "ego4d", 12, 3)


@pytest.fixture(scope="session")
def epic_root(tmp_path_factory):
    return _make(tmp_path_factory, "epic_kitchens", 12, 3)


@pytest.fixture(scope="session")
def hoi4d_root(tmp_path_factory):
    return _make(tmp_path_factory, "hoi4d", 12, 4)
