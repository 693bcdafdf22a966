"""Reward sources: the operator prompt with bad inputs, void, and the embedding-distance rewards."""

import numpy as np
import pytest

from deft_core.finetune.loop import VOID, EpisodeResult, Observation, RewardQuery, task_reward
from deft_core.finetune.rewards import (EmbeddingReward, OperatorInputError, OperatorReward,
                                        parse_operator_score, r3m_embedder, resnet18_embedder)
from deft_core.grasp import GraspParams


def _query(final=None, success=None, task=None, attempt=0):
    img = np.zeros((8, 8, 3), np.uint8)
    return RewardQuery(episode=4, attempt=attempt, observation=Observation(img),
                       grasp=GraspParams.from_vector(np.zeros(22)),
                       result=EpisodeResult(success=success, final_image=final, task_reward=task))


@pytest.mark.parametrize("text,value", [("0.7", 0.7), (" 1 ", 1.0), ("0", 0.0), (".25", 0.25), ("V", VOID), ("void", VOID)])
def test_operator_scores_parse(text, value):
    assert parse_operator_score(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.5", "-0.1", "nan", "inf", "0,5", "yes"])
def test_operator_bad_inputs_are_rejected(text):
    with pytest.raises(OperatorInputError, match="score from 0 to 1"):
        parse_operator_score(text)


def test_operator_is_re_asked_until_valid():
    answers, told, prompts = iter(["", "2", "great", "0.6"]), [], []

    def ask(prompt):
        prompts.append(prompt)
        return next(answers)

    reward = OperatorReward(ask, told.append)
    assert reward(_query(success=True, attempt=1)) == 0.6
    assert len(prompts) == 4 and len(told) == 3 and "outside [0, 1]" in told[1]
    assert "episode 4, redo 1 (task check: success)" in prompts[0]


def test_operator_void_and_give_up():
    assert OperatorReward(lambda p: "v")(_query()) is VOID
    with pytest.raises(OperatorInputError):
        OperatorReward(lambda p: "x", max_asks=2)(_query())


def test_task_reward_needs_the_env_reward():
    assert task_reward(_query(task=0.3)) == 0.3
    with pytest.raises(ValueError, match="task_reward"):
        task_reward(_query())


def test_embedding_reward_ranks_by_distance_to_the_goal():
    goal = np.full((16, 16, 3), 200, np.uint8)
    reward = EmbeddingReward(lambda im: im.astype(float).mean(axis=(0, 1)), goal)
    near, far = np.full_like(goal, 190), np.full_like(goal, 20)
    assert reward(_query(final=goal)) == 0.0
    assert reward(_query(final=near)) > reward(_query(final=far))
    assert reward(_query(final=None)) is VOID


def test_resnet18_and_r3m_embedders_load_local_weights(tmp_path):
    torch = pytest.importorskip("torch")
    tvm = pytest.importorskip("torchvision.models")
    net = tvm.resnet18(weights=None)
    # an R3M-style checkpoint (what R3M publishes for resnet18: {'r3m': {'module.convnet.*': ...}})
    torch.save({"r3m": {f"module.convnet.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "model.pt")
    r3m = r3m_embedder(tmp_path / "model.pt", arch="resnet18", image_size=64)
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    net.fc = torch.nn.Identity()
    net.eval()
    from deft_core.finetune.encoders import preprocess_images

    with torch.no_grad():
        expected = net(preprocess_images([img], 64, center_crop=True))[0].numpy()
    assert np.allclose(r3m(img), expected, atol=1e-5)
    # R3M's preprocessing keeps the aspect and drops the borders (Resize(256) + CenterCrop(224)): pixels
    # outside the central crop of a 4:3 camera image do not move the embedding; squashing had let them
    cam = np.random.default_rng(1).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    edged = cam.copy()
    edged[:, :8] = 255
    assert np.allclose(r3m(cam), r3m(edged), atol=1e-6)
    t = preprocess_images([cam], 64, center_crop=True)
    assert t.shape == (1, 3, 64, 64)
    assert resnet18_embedder(image_size=64)(img).shape == (512,)
    with pytest.raises(FileNotFoundError, match="R3M weights not found"):
        r3m_embedder(tmp_path / "missing.pt")
    torch.save({"other": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="R3M checkpoint"):
        r3m_embedder(tmp_path / "bad.pt", arch="resnet18")
