"""Ray Data actor wrappers: direct calls, failure recording, and a 2-actor pool equal to 1 actor."""

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from pipelines.models.actors import HandObjectActor, ObjectBoxActor, SegmentActor, model_stage_kwargs, query_for
from pipelines.sources.base import ClipRecord
from tests.scale.test_scale_hand_object import ScriptedDetector
from tests.scale.tiny_models import write_video


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    rows = []
    for k in range(6):
        video = write_video(d / f"P01_{k:02d}.mp4", n_frames=10, seed=k)
        rows.append(ClipRecord(dataset="epic_kitchens", video_id=f"P01_{k:02d}", action_id=f"P01_{k:02d}_0", video_path=str(video),
                               fps=10.0, first_frame=1 + k % 3, last_frame=10, frame_base=1, noun=["cup", "knife", "pan"][k % 3],
                               text="take cup").to_row())
    return rows


def _boxes(df):
    """sample_id → (query, boxes array) of an ObjectBoxActor output, order-insensitive."""
    out = {}
    for sid, c in zip(df["sample_id"], df["contact"]):
        v = json.loads(c)["v1_object_boxes"]
        out[sid] = (v["query"], np.asarray(v["boxes"], float))
    return out


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k][0] == b[k][0] and a[k][1].shape == b[k][1].shape
        assert np.allclose(a[k][1], b[k][1], atol=2e-3)


def test_object_box_actor_direct(owlv2_dir, records):
    actor = ObjectBoxActor("owlv2", {"weights": str(owlv2_dir), "device": "cpu", "threshold": 0.0}, top_k=3)
    bad = dict(records[0], sample_id="broken", video_path="/nonexistent/video.mp4")
    out = actor(pd.DataFrame(records[:2] + [bad]))
    assert list(out["sample_id"]) == [records[0]["sample_id"], records[1]["sample_id"], "broken"]
    got = _boxes(out.iloc[:2])
    assert [q for q, _ in got.values()] == ["cup", "knife"]
    assert all(b.shape == (3, 5) for _, b in got.values())
    err = json.loads(out["contact"].iloc[2])
    assert "v1_object_boxes" not in err and "video file not found" in err["v1_object_boxes_error"]


def test_hand_object_actor_direct_and_resume(records, tmp_path):
    det = ScriptedDetector(onset=5)
    actor = HandObjectActor("hands23", str(tmp_path), detector=det)
    out = actor(pd.DataFrame(records[:2]))
    infos = [json.loads(c)["model_detections"] for c in out["contact"]]
    assert infos[0]["frames"] == list(range(records[0]["first_frame"], 11))
    calls = det.calls
    again = actor(out)  # rows that already carry detections are passed through
    assert det.calls == calls and list(again["contact"]) == list(out["contact"])


def test_query_for():
    def rec(noun, text=""):
        return ClipRecord(dataset="epic_kitchens", video_id="v", action_id="a", video_path="x", fps=1.0, first_frame=1,
                          last_frame=2, noun=noun, text=text)
    assert query_for(rec("cupboard:kitchen")) == "kitchen cupboard"
    assert query_for(rec(None, "#C C picks up the mug")) == "mug"
    with pytest.raises(ValueError, match="no noun"):
        query_for(rec(None, ""))


def test_segment_actor_direct(sam_dir):
    img = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", img)[1].tobytes()
    actor = SegmentActor("sam", {"weights": str(sam_dir), "device": "cpu"})
    out = actor(pd.DataFrame({"image": [jpeg, jpeg, b"not an image"], "prompt_box": [[5, 5, 30, 30], None, None]}))
    masks = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_GRAYSCALE) for p in out["mask_png"][:2]]
    assert all(m.shape == (40, 60) and set(np.unique(m)) <= {0, 255} for m in masks)
    assert out["mask_error"][:2].isna().all()
    assert out["mask_png"][2] is None and "do not decode" in out["mask_error"][2]


def test_bound_object_store():
    ray_data = pytest.importorskip("ray.data")
    from pipelines.models.actors import bound_object_store

    ctx = ray_data.DataContext.get_current()
    before = ctx.execution_options.resource_limits
    try:
        bound_object_store(2e9)
        assert ctx.execution_options.resource_limits.object_store_memory == 2e9
        with pytest.raises(ValueError, match="positive"):
            bound_object_store(0)
    finally:
        ctx.execution_options.resource_limits = before


def test_model_stage_kwargs():
    """An actor pool as compute= (map_batches' concurrency= is deprecated since Ray 2.51)."""
    kw = model_stage_kwargs(num_gpus=1, concurrency=(1, 8), batch_size=2)
    pool = kw.pop("compute")
    assert kw == {"batch_size": 2, "batch_format": "pandas", "num_gpus": 1}
    assert (pool.min_size, pool.max_size) == (1, 8)
    assert model_stage_kwargs(concurrency=3)["compute"].min_size == 3 and "num_gpus" not in model_stage_kwargs()


@pytest.mark.slow
@pytest.mark.ray
def test_two_actor_pool_matches_one_actor_and_direct_call(owlv2_dir, records):
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:  # shut down afterwards: other suites size their own local Ray
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        _run_pools(ray, owlv2_dir, records)
    finally:
        if started:
            ray.shutdown()


def _run_pools(ray, owlv2_dir, records):
    if ray.cluster_resources().get("CPU", 0) < 2:
        pytest.skip("the running Ray has fewer than 2 CPUs for 2 actors")
    kwargs = {"fn_constructor_kwargs": {"backend": "owlv2", "backend_options": {"weights": str(owlv2_dir), "device": "cpu",
                                                                                "threshold": 0.0}, "top_k": 4}}
    direct = _boxes(ObjectBoxActor(**kwargs["fn_constructor_kwargs"])(pd.DataFrame(records)))
    results = {}
    for n in (1, 2):
        ds = ray.data.from_items(records, override_num_blocks=3).map_batches(
            ObjectBoxActor, **kwargs, **model_stage_kwargs(concurrency=n, batch_size=2, num_cpus=1))
        results[n] = _boxes(ds.to_pandas())
    _same(results[1], direct)
    _same(results[2], direct)
