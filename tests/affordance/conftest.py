"""Fixtures for the affordance tests: fake shards with a learnable signal, tiny configs, one Ray session."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from deft_core.affordance.config import get_preset
from tests.affordance.fake_shards import write_shards

torch.set_num_threads(1)  # the CI machine is shared: avoid oversubscribing its cores


def tiny_config(image_size: int = 64, text_dim: int = 64):
    """The tiny preset at a smaller input and with the hashed (test stand-in) text encoder."""
    p = get_preset("tiny")
    p.model.image_size, p.model.text_encoder, p.model.text_dim = image_size, f"hash:{text_dim}", text_dim
    p.train.batch_size, p.train.val_fraction = 32, 0.2
    return p


def config_dict(p, steps_per_epoch: int = 1) -> dict:
    return {"model": dataclasses.asdict(p.model), "train": dataclasses.asdict(p.train), "steps_per_epoch": steps_per_epoch}


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    write_shards(d, 48, files=2, seed=1)
    return d


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray for one test module, started like the job starts it (pipelines.train_affordance.
    init_local_ray: 4 logical CPUs, State API pinned to its own dashboard), and shut down after it:
    a Ray left running in the pytest process broke later modules that start clusters of their own
    (the jobs' `ray start` / `ray job submit` test, the actor-pool test)."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        from pipelines.train_affordance import init_local_ray

        init_local_ray(4, log_to_driver=True)
    yield ray
    if started:
        ray.shutdown()
