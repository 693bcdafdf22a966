"""Residual policies (cVAE of §3.2 and Table 3's ablations) on tiny data, and their checkpoints."""

import json

import numpy as np
import pytest
import torch

from deft_core.finetune.encoders import EncoderConfig
from deft_core.finetune.policies import (POLICY_KINDS, DistillEpisode, PolicyConfig, episodes_from_log,
                                         make_policy)
from deft_core.finetune.policy_checkpoint import CheckpointError, load_policy, save_policy
from deft_core.grasp import GRASP_DIM, initial_sigma

S0 = initial_sigma()
A = 2 * S0 * np.where(np.arange(GRASP_DIM) % 3 == 0, -1.0, 1.0)  # a residual of 2 σ₀ per dimension
TRAINED_KINDS = [k for k in POLICY_KINDS if k != "mean"]
TINY = dict(encoder=EncoderConfig(image_size=32, feature_dim=16), hidden=64, d_model=32, layers=1, steps=250)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The dev/CI machine has 2 shared cores: more torch threads than that only adds contention.
    Restored afterwards so other test modules see the default."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(kind, **kw):
    cfg = PolicyConfig(**{**TINY, **({"top_k": None} if kind == "transformer" else {}), **kw})
    return make_policy(kind, cfg)


def _image(value):
    img = np.zeros((36, 40, 3), np.uint8)
    img[..., 0] = value
    img[10:20, 10:20, 2] = 255 - value
    return img


@pytest.fixture(scope="module")
def image_conditioned():
    """The best residual depends on the image: a red scene wants +A, a dark one −A."""
    rng = np.random.default_rng(0)
    episodes = []
    for i in range(10):
        red = i % 2 == 0
        xi = rng.normal(size=GRASP_DIM) * S0
        episodes.append(DistillEpisode(image=_image(220 if red else 30), xi=xi,
                                       delta=(A if red else -A) + 0.05 * S0 * rng.normal(size=GRASP_DIM),
                                       reward=1.0, episode=i + 1))
    return episodes


@pytest.mark.parametrize("kind", TRAINED_KINDS)
def test_policy_trains_and_conditions_on_the_image(kind, image_conditioned):
    policy = tiny(kind)
    metrics = policy.fit(image_conditioned)
    assert metrics["final_loss"] < 0.3 * metrics["initial_loss"]
    xi = np.zeros(GRASP_DIM)
    red, dark = policy.act(_image(220), xi), policy.act(_image(30), xi)
    assert red.shape == (GRASP_DIM,) and red.dtype == np.float64 and np.all(np.isfinite(red))
    # conditioning matters: each image gets (close to) its own residual, far from the other one
    sep = np.linalg.norm(2 * A / S0)
    assert np.linalg.norm((red - A) / S0) < 0.3 * sep, kind
    assert np.linalg.norm((dark + A) / S0) < 0.3 * sep, kind
    batch = policy.act_batch([_image(220), _image(30)], np.zeros((2, GRASP_DIM)), np.random.default_rng(3))
    assert batch.shape == (2, GRASP_DIM)
    a1 = policy.act(_image(220), xi, np.random.default_rng(5))
    assert np.array_equal(a1, policy.act(_image(220), xi, np.random.default_rng(5)))


def test_cvae_covers_both_modes_where_the_mlp_averages():
    """Identical conditions, two equally good residuals ±A: cVAE samples land near the modes in both
    proportions; the MLP predicts their mean, far from either."""
    episodes = [DistillEpisode(image=_image(100), xi=np.zeros(GRASP_DIM), reward=1.0, episode=i + 1,
                               delta=(A if i % 2 else -A) + 0.05 * S0 * np.random.default_rng(i).normal(size=GRASP_DIM))
                for i in range(10)]
    sep = np.linalg.norm(2 * A / S0)
    out = {}
    for kind in ("deft", "mlp"):
        policy = tiny(kind, steps=300)
        policy.fit(episodes)
        s = policy.act_batch([_image(100)] * 200, np.zeros((200, GRASP_DIM)), np.random.default_rng(1))
        d_plus, d_minus = (np.linalg.norm((s - m) / S0, axis=1) for m in (A, -A))
        out[kind] = (float((d_plus < d_minus).mean()), float(np.median(np.minimum(d_plus, d_minus)) / sep))
    assert 0.2 < out["deft"][0] < 0.8 and out["deft"][1] < 0.25, out
    assert out["mlp"][1] > 0.4, out


def test_transformer_follows_the_reward_it_is_conditioned_on():
    """Same inputs, +A earned reward 1 and −A reward 0: queried with the max reward it outputs +A."""
    episodes = [DistillEpisode(image=_image(100), xi=np.zeros(GRASP_DIM), delta=A if i % 2 else -A,
                               reward=float(i % 2), episode=i + 1) for i in range(12)]
    policy = tiny("transformer", steps=300)
    policy.fit(episodes)
    out = policy.act(_image(100), np.zeros(GRASP_DIM))
    assert np.linalg.norm((out - A) / S0) < 0.25 * np.linalg.norm(2 * A / S0)
    assert policy.training_summary["episodes"] == list(range(1, 13))  # trained on all episodes


def test_elite_mean_policy_returns_the_mean_of_the_top_k(image_conditioned):
    eps = [DistillEpisode(e.image, e.xi, e.delta, reward=float(i), episode=e.episode) for i, e in enumerate(image_conditioned)]
    policy = tiny("mean", top_k=4)
    metrics = policy.fit(eps)
    expected = np.mean([e.delta for e in eps[-4:]], axis=0)
    for img in (_image(220), _image(30)):
        assert np.allclose(policy.act(img, np.ones(GRASP_DIM)), expected, atol=1e-6)
    assert metrics["final_loss"] is None and policy.training_summary["episodes"] == [10, 9, 8, 7]


def test_top_k_selects_the_best_episodes(image_conditioned):
    eps = [DistillEpisode(e.image, e.xi, e.delta, reward=float(i), episode=e.episode) for i, e in enumerate(image_conditioned)]
    policy = tiny("mlp", top_k=3, steps=5)
    policy.fit(eps)
    assert policy.training_summary["episodes"] == [10, 9, 8]


@pytest.mark.parametrize("kind", list(POLICY_KINDS))
def test_checkpoint_round_trip_gives_identical_outputs(kind, image_conditioned, tmp_path):
    policy = tiny(kind, steps=20)
    metrics = policy.fit(image_conditioned)
    save_policy(policy, tmp_path / kind, metrics=metrics, extra={"task": "pick_cup"})
    loaded = load_policy(tmp_path / kind)
    assert type(loaded) is type(policy) and loaded.config == policy.config
    for img in (_image(220), _image(30)):
        xi = np.linspace(-0.1, 0.1, GRASP_DIM)
        assert np.array_equal(policy.act(img, xi, np.random.default_rng(2)), loaded.act(img, xi, np.random.default_rng(2)))
    cfg = json.loads((tmp_path / kind / "config.json").read_text())
    assert cfg["kind"] == kind and cfg["training_data"]["task"] == "pick_cup"
    assert json.loads((tmp_path / kind / "metrics.json").read_text())["kind"] == kind


def test_checkpoint_rejects_mismatched_shapes_and_bad_dirs(image_conditioned, tmp_path):
    policy = tiny("deft", steps=2)
    policy.fit(image_conditioned)
    save_policy(policy, tmp_path / "c")
    cfg_path = tmp_path / "c" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["policy"]["hidden"] = 32
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"tensor p\.0\.weight has shape"):
        load_policy(tmp_path / "c")
    cfg["policy"]["hidden"], cfg["format"] = 64, "pickle"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="format"):
        load_policy(tmp_path / "c")
    (tmp_path / "c" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_policy(tmp_path / "c")
    with pytest.raises(RuntimeError, match="not trained"):
        tiny("mlp").act(_image(1), np.zeros(GRASP_DIM))


def test_bad_inputs_are_named(image_conditioned):
    policy = tiny("mlp", steps=2)
    policy.fit(image_conditioned)
    with pytest.raises(ValueError, match="uint8"):
        policy.act(np.zeros((8, 8, 3)), np.zeros(GRASP_DIM))
    with pytest.raises(ValueError, match="xi must have shape"):
        policy.act(_image(1), np.zeros(5))
    with pytest.raises(ValueError, match="unknown policy kind"):
        make_policy("gan")
    with pytest.raises(ValueError, match="PolicyConfig.steps"):
        PolicyConfig(steps=0)
    with pytest.raises(ValueError, match="unknown image encoder"):
        EncoderConfig(kind="vit")
    bad = [DistillEpisode(_image(1), np.zeros(3), np.zeros(GRASP_DIM), 1.0, episode=4)]
    with pytest.raises(ValueError, match="episode 4: xi"):
        tiny("mlp").fit(bad)


def test_resnet18_encoder_with_local_weights(tmp_path, image_conditioned):
    torchvision = pytest.importorskip("torchvision")
    from safetensors.torch import save_file

    net = torchvision.models.resnet18(weights=None)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "r18.safetensors"))
    enc = EncoderConfig(kind="resnet18", image_size=32, weights=str(tmp_path / "r18.safetensors"))
    policy = tiny("deft", encoder=enc, steps=30)
    metrics = policy.fit(image_conditioned)
    assert metrics["final_loss"] < metrics["initial_loss"]
    assert torch.equal(policy.net.encoder.net.conv1.weight, net.conv1.weight)  # loaded, and still frozen
    save_policy(policy, tmp_path / "ckpt")
    (tmp_path / "r18.safetensors").unlink()  # the checkpoint alone is enough to load
    loaded = load_policy(tmp_path / "ckpt")
    xi = np.zeros(GRASP_DIM)
    assert np.array_equal(loaded.act(_image(220), xi), policy.act(_image(220), xi))
    with pytest.raises(FileNotFoundError, match="resnet18 encoder weights not found"):
        tiny("deft", encoder=enc).fit(image_conditioned)


@pytest.mark.parametrize("kind", ["deft", "mlp"])
def test_frozen_small_cnn_trains_the_rest_and_keeps_its_random_features(kind, image_conditioned, tmp_path):
    """``EncoderConfig(trainable=False)``: the small CNN's random features are computed once and never change
    (its first fit died in the second backward: the features had been computed with a graph)."""
    policy = tiny(kind, encoder=EncoderConfig(kind="small_cnn", image_size=32, trainable=False), steps=30)
    policy.net = policy.build()  # the same initialisation fit() starts from (seeded)
    before = {k: v.clone() for k, v in policy.net.encoder.state_dict().items()}
    metrics = policy.fit(image_conditioned)
    assert metrics["final_loss"] < metrics["initial_loss"]
    after = policy.net.encoder.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in policy.net.encoder.parameters())
    save_policy(policy, tmp_path / "ckpt")
    xi = np.zeros(GRASP_DIM)
    assert np.array_equal(load_policy(tmp_path / "ckpt").act(_image(220), xi), policy.act(_image(220), xi))


def test_distill_from_a_finetuning_log(tmp_path, toy_env_cls):
    from deft_core.finetune.cem import CEMConfig
    from deft_core.finetune.loop import FinetuneConfig, run_finetune

    env = toy_env_cls()
    cfg = FinetuneConfig(task="pick_cup", seed=1, cem=CEMConfig(num_elites=3, warmup_episodes=3, total_episodes=8))
    result = run_finetune(env, env.reward, cfg, tmp_path / "run")
    episodes = episodes_from_log(tmp_path / "run")
    assert [e.episode for e in episodes] == list(range(1, 9))
    assert np.array_equal(episodes[0].delta, result.records[0].epsilon_array)
    policy = tiny("deft", top_k=3, steps=20)
    policy.fit(episodes)
    assert sorted(policy.training_summary["episodes"]) == sorted(e.episode for e in result.elites)


def test_distill_from_log_writes_a_loadable_checkpoint(tmp_path, toy_env_cls):
    from deft_core.finetune.cem import CEMConfig
    from deft_core.finetune.distill import distill_from_log
    from deft_core.finetune.loop import FinetuneConfig, run_finetune

    env = toy_env_cls(void_at={(2, 0)})
    cfg = FinetuneConfig(task="pour_cup", seed=2, cem=CEMConfig(num_elites=3, warmup_episodes=3, total_episodes=6))
    run_finetune(env, env.reward, cfg, tmp_path / "run")
    policy, metrics = distill_from_log(tmp_path / "run", tmp_path / "ckpt", "mlp",
                                       PolicyConfig(**{**TINY, "steps": 10, "top_k": 3}))
    cfg_json = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert cfg_json["training_data"]["task"] == "pour_cup" and cfg_json["training_data"]["num_void_attempts"] == 1
    assert len(cfg_json["training_data"]["episodes"]) == 3 and metrics["num_train"] == 3
    loaded = load_policy(tmp_path / "ckpt")
    img, xi = _image(10), np.zeros(GRASP_DIM)
    assert np.array_equal(loaded.act(img, xi), policy.act(img, xi))


def test_fitting_is_deterministic_in_the_seed(image_conditioned):
    outs = []
    for seed in (0, 0, 1):
        policy = tiny("deft", steps=15, seed=seed)
        policy.fit(image_conditioned)
        outs.append(policy.act(_image(220), np.zeros(GRASP_DIM), np.random.default_rng(0)))
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])


def test_far_out_of_range_prior_stays_bounded(image_conditioned):
    """A prior ξ far from every training ξ (a new object) is clipped in normalised space, so δ̂ stays
    in the range of the training residuals instead of extrapolating linearly."""
    policy = tiny("mlp", steps=100)
    policy.fit(image_conditioned)
    train_max = max(np.linalg.norm(e.delta / S0) for e in image_conditioned)
    for scale in (30.0, 1000.0):
        out = policy.act(_image(220), scale * S0)
        assert np.all(np.isfinite(out)) and np.linalg.norm(out / S0) < 3 * train_max
    assert np.array_equal(policy.act(_image(220), 30.0 * S0), policy.act(_image(220), 1000.0 * S0))


def test_random_shift_moves_content_within_bounds():
    from deft_core.finetune.policies import random_shift

    img = torch.zeros(3, 1, 16, 16)
    img[:, :, 8, 8] = 1.0
    out = random_shift(img, 2, torch.Generator().manual_seed(0))
    assert out.shape == img.shape
    for b in range(3):
        y, x = map(int, torch.nonzero(out[b, 0] == 1.0)[0])
        assert abs(y - 8) <= 2 and abs(x - 8) <= 2


@pytest.mark.parametrize("kind", ["deft", "direct"])
def test_output_stays_within_what_fine_tuning_tried(kind, image_conditioned, tmp_path):
    """The trust region of act(): an image unlike the training ones cannot push a dimension of the output
    past the range of the training targets — δ̂ for the residual kinds, ξ̂ for ``direct``, which must not
    lean on the test-time prior ξ (its δ̂ = ξ̂ − ξ follows ξ wherever ξ goes); the range travels with the
    checkpoint; the option turns it off."""
    policy = tiny(kind, steps=60)
    policy.fit(image_conditioned)
    D = np.stack([e.delta for e in image_conditioned])
    T = D + np.stack([e.xi for e in image_conditioned]) if kind == "direct" else D
    np.testing.assert_allclose(policy.training_summary["residual_range"]["low"], D.min(0))
    rng_ = policy.training_summary["target_range"]
    np.testing.assert_allclose(rng_["low"], T.min(0))
    np.testing.assert_allclose(rng_["high"], T.max(0))
    odd = np.full((36, 40, 3), 128, np.uint8)           # neither red nor dark: outside the training images
    far = 40 * S0                                         # and a prior far from every training ξ
    # narrow the region to one point: every output must then be that point
    mid = (T.min(0) + T.max(0)) / 2
    want = mid - far if kind == "direct" else mid         # direct: ξ̂ = mid, whatever the prior
    policy.training_summary["target_range"] = {"low": mid.tolist(), "high": mid.tolist()}
    out = policy.act(odd, far, np.random.default_rng(0))
    np.testing.assert_allclose(out, want)
    save_policy(policy, tmp_path / "p")
    loaded = load_policy(tmp_path / "p")
    np.testing.assert_allclose(loaded.act(odd, far, np.random.default_rng(0)), want)
    free = tiny(kind, steps=60, clip_to_training_range=False)
    free.fit(image_conditioned)
    free.training_summary["target_range"] = {"low": mid.tolist(), "high": mid.tolist()}
    assert not np.allclose(free.act(odd, far, np.random.default_rng(0)), want)


def test_checkpoints_without_target_range_keep_the_residual_clip(image_conditioned):
    """A policy saved before target_range existed was evaluated with its residual clipped to
    residual_range (direct included, through ξ̂ − ξ): loading it keeps that rule."""
    policy = tiny("direct", steps=60)
    policy.fit(image_conditioned)
    del policy.training_summary["target_range"]
    D = np.stack([e.delta for e in image_conditioned])
    mid = ((D.min(0) + D.max(0)) / 2).tolist()
    policy.training_summary["residual_range"] = {"low": mid, "high": mid}
    np.testing.assert_allclose(policy.act(np.full((36, 40, 3), 128, np.uint8), 40 * S0, np.random.default_rng(0)), mid)
