"""cluster.yaml validates against the schema Ray ships and keeps the promises the docs make."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_validates_against_rays_schema(config):
    jsonschema = pytest.importorskip("jsonschema")
    ray = pytest.importorskip("ray")
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    broken = dict(config, available_node_types={"gpu_model": {"node_config": {}}})  # no resources
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_cluster_yaml_passes_rays_own_config_preparation(config):
    """What `ray up` does before launching: fill the AWS defaults, then validate (no cloud calls)."""
    util = pytest.importorskip("ray.autoscaler._private.util")
    prepared = util.prepare_config(config)
    util.validate_config(prepared)
    assert set(prepared["available_node_types"]) == {"head", "cpu_decode", "gpu_model"}


def test_node_types_and_storage(config):
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    assert types["gpu_model"]["resources"].get("GPU", 0) >= 1
    assert types["cpu_decode"]["resources"]["CPU"] >= 8 and "GPU" not in types["cpu_decode"]["resources"]
    assert sum(t.get("max_workers", 0) for n, t in types.items() if n != config["head_node_type"]) <= config["max_workers"]
    for commands in (config["setup_commands"], types["gpu_model"]["worker_setup_commands"]):
        text = "\n".join(commands)
        assert "scripts/setup.sh" in text and "/mnt/deft" in text  # the README's install + shared storage
    assert config["file_mounts"]["~/deft"] == "."


def test_dashboard_is_not_exposed(config):
    start = " ".join(config["head_start_ray_commands"])
    assert re.search(r"--dashboard-host[= ]127\.0\.0\.1", start)
    assert "0.0.0.0" not in (ROOT / "cluster.yaml").read_text()
    assert "--object-store-memory" in start  # bounded object store: streaming execution spills beyond it
