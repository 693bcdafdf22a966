"""Fixtures for the scale-out tests: tiny real-format models built once per session, offline."""

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def owlv2_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests.scale.tiny_models import build_owlv2

    return build_owlv2(tmp_path_factory.mktemp("owlv2"))


@pytest.fixture(scope="session")
def grounding_dino_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests.scale.tiny_models import build_grounding_dino

    return build_grounding_dino(tmp_path_factory.mktemp("gdino"))


@pytest.fixture(scope="session")
def sam_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests.scale.tiny_models import build_sam

    return build_sam(tmp_path_factory.mktemp("sam"))
