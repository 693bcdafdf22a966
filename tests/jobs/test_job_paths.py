"""The extraction job hands its dataset root to the source as an absolute path: Ray actors may run in
another working directory (a cluster started elsewhere, `ray job submit`'s upload), where a relative
root silently turned every clip into a 'video file not found' error. Bad roots and shard folders stop
the jobs with a one-line error (exit 2) before Ray starts and before anything is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# a separate process: inside the test session the name `jobs` is this test package
_PROBE = """
import json, sys
sys.path.insert(0, {repo!r})
from jobs import _extract_common as common
seen = {{}}
def fake_open_source(dataset, root, **kw):
    seen["root"] = root
    raise KeyboardInterrupt
common.open_source = fake_open_source
args = common.build_parser("hoi4d").parse_args(["--root", "data/hoi4d", "--out", "out/hoi4d"])
try:
    common.run_job("hoi4d", args)
except KeyboardInterrupt:
    pass
print(json.dumps(seen))
"""


def test_relative_root_reaches_the_source_absolute(tmp_path):
    (tmp_path / "data" / "hoi4d").mkdir(parents=True)
    res = subprocess.run([sys.executable, "-c", _PROBE.format(repo=str(REPO))], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    root = Path(json.loads(res.stdout.strip().splitlines()[-1])["root"])
    assert root.is_absolute() and root == tmp_path / "data" / "hoi4d"


def _run_job(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "jobs" / script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180)


def test_truncated_ego4d_annotations_stop_the_job_cleanly(tmp_path):
    path = tmp_path / "ego4d" / "v2" / "annotations" / "fho_main.json"
    path.parent.mkdir(parents=True)
    video = {"video_uid": "v0", "annotated_intervals": [{"narrated_actions": [{"uid": "a0", "narration_text": "#C C x"}]}]}
    text = json.dumps({"videos": [video] * 20})
    path.write_text(text[:len(text) // 2])
    res = _run_job("extract_ego4d.py", "--root", str(tmp_path / "ego4d"), "--out", "out", "--hand-pose", "mediapipe",
                   cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"extract ego4d: error: {path}: truncated or malformed JSON" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()


def test_hoi4d_job_on_a_root_without_sequences_stops_cleanly(tmp_path):
    (tmp_path / "empty").mkdir()
    res = _run_job("extract_hoi4d.py", "--root", "empty", "--out", "out", cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "extract hoi4d: error: no HOI4D sequences under" in res.stderr and "release.txt" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


def test_train_job_without_shards_stops_before_creating_out(tmp_path):
    res = _run_job("train.py", "--shards", "noshards", "--out", "tr1", cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "train: error: shard directory not found: noshards" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "tr1").exists()


def test_train_job_names_an_unreadable_shard(tmp_path):
    (tmp_path / "sh" / "data").mkdir(parents=True)
    (tmp_path / "sh" / "data" / "part-0.parquet").write_bytes(b"not parquet at all")
    res = _run_job("train.py", "--shards", "sh", "--out", "tr2", cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "part-0.parquet: not a readable Parquet shard" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "tr2").exists()


def test_unknown_or_missing_hand_pose_and_unwritable_out_stop_the_job_before_ray(tmp_path, datasets):
    """Checked in the driver, one line, exit 2: an unknown --hand-pose (it used to kill every actor, 288
    lines), no --hand-pose for Ego4D (the message names the flag), an --out that cannot be written (it
    used to fail inside every actor)."""
    from pipelines.stages.process import ExtractConfig

    root = datasets["hoi4d"]  # a small generated HOI4D (session fixture): clips to process
    res = _run_job("extract_hoi4d.py", "--root", str(root), "--out", str(tmp_path / "o1"), "--hand-pose", "bogus", cwd=tmp_path)
    assert res.returncode == 2 and "unknown hand-pose backend 'bogus' (--hand-pose)" in res.stderr, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    import pytest

    with pytest.raises(ValueError, match=r"no hand-pose backend for dataset 'ego4d': pass --hand-pose "):
        ExtractConfig(dataset="ego4d").resolved_hand_pose_backend()
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = _run_job("extract_hoi4d.py", "--root", str(root), "--out", str(blocker / "out"), cwd=tmp_path)
    assert res.returncode == 2 and f"--out {blocker / 'out'}: cannot write there" in res.stderr, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    # the backend's import, its option names and the text encoder's name: also before Ray (each used to
    # kill every actor with a long traceback)
    for extra, expected in ((["--hand-pose", "nosuchmod:Cls"], "--hand-pose nosuchmod:Cls: cannot import it"),
                            (["--hand-pose", "mediapipe", "--hand-pose-option", "bogus_key=1"],
                             "--hand-pose-option bogus_key: not an option of"),
                            (["--text-encoder", "bogus"], "unknown text encoder 'bogus' (--text-encoder)"),
                            (["--text-encoder", "clip:ViT-B-32"], "needs DEFT_CLIP_WEIGHTS=FILE"),
                            (["--object-boxes", "owlv2", "--model-option", f"object-boxes.weights={tmp_path / 'none'}"],
                             "--object-boxes owlv2: owlv2: weight directory not found")):
        res = _run_job("extract_hoi4d.py", "--root", str(root), "--out", str(tmp_path / "o2"), *extra, cwd=tmp_path)
        assert res.returncode == 2 and expected in res.stderr, res.stderr[-2000:]
        assert "Traceback" not in res.stderr and not (tmp_path / "o2").exists()


def test_malformed_key_value_options_are_usage_errors(tmp_path):
    """--hand-pose-option / --model-option without KEY=VALUE: 'extract X: error: ...', exit 2 like every
    other usage error (they exited 1 through SystemExit)."""
    root = tmp_path / "ego4d"
    (root / "v2" / "annotations").mkdir(parents=True)
    for flag, value, expected in (("--hand-pose-option", "fov_deg", "--hand-pose-option 'fov_deg': expected KEY=VALUE"),
                                  ("--model-option", "sam.x", "--model-option 'sam.x': expected [SCOPE.]KEY=VALUE")):
        res = _run_job("extract_ego4d.py", "--root", str(root), "--out", str(tmp_path / "o"), "--hand-pose", "mediapipe",
                       flag, value, cwd=tmp_path)
        assert res.returncode == 2, res.stderr[-2000:]
        assert f"extract ego4d: error: {expected}" in res.stderr and "Traceback" not in res.stderr
    res = _run_job("extract_ego4d.py", "--root", str(root), "--out", str(tmp_path / "o"), "--hand-pose", "mediapipe",
                   "--limit", "0", cwd=tmp_path)   # said 'nothing to process (every clip already done)'
    assert res.returncode == 2 and "argument --limit: must be an integer >= 1, got 0" in res.stderr, res.stderr[-2000:]


_GPU_PROBE = """
import json, sys
sys.path.insert(0, {repo!r})
from jobs import _extract_common as common, _extract_models as models
import jobs.train as train
out = {{}}
class FakeDs:
    def __init__(self): self.stages = []
    def map_batches(self, cls, fn_constructor_kwargs=None, **kw):
        self.stages.append({{"cls": cls.__name__, "options": fn_constructor_kwargs["backend_options"], "kw": sorted(kw)}})
        return self
def stages(argv):
    a = common.build_parser("ego4d").parse_args(["--root", "r", "--out", "o", "--hand-pose", "mediapipe"] + argv)
    return models.add_model_stages(FakeDs(), a, "o").stages
out["cpu"] = stages(["--hand-object-model", "hands23", "--object-boxes", "owlv2", "--num-gpus", "1"])
out["gpu"] = stages(["--hand-object-model", "hands23", "--model-num-gpus", "1"])
a = common.build_parser("ego4d").parse_args(["--root", "r", "--out", "o", "--hand-pose", "mediapipe",
                                             "--text-encoder", "minilm", "--text-num-gpus", "1"])
out["text"] = common.make_config("ego4d", a).text_encoder_options
seen = {{}}
train.run = lambda *p, **kw: seen.update(kw, overrides=p[3]) or {{}}
train.main(["--shards", "s", "--out", "o", "--no-cpu-check"])
out["check_cpus"], out["decode_threads_default"] = seen.get("check_cpus"), seen.get("decode_threads")
train.main(["--shards", "s", "--out", "o", "--use-gpu", "--decode-threads", "8"])
out["decode_threads"], out["use_gpu"] = seen.get("decode_threads"), seen.get("use_gpu")
out["precision_default"] = seen["overrides"]["train"]["precision"]
train.main(["--shards", "s", "--out", "o", "--precision", "bf16"])
out["precision"] = seen["overrides"]["train"]["precision"]
hoi = lambda argv: common.make_config("hoi4d", common.build_parser("hoi4d").parse_args(["--root", "r", "--out", "o"] + argv))
out["masks"], out["no_masks"] = hoi([]).use_masks, hoi(["--no-masks"]).use_masks
print(json.dumps(out))
"""


def test_gpu_and_cluster_options_reach_what_uses_them():
    """Ray leaves all GPUs visible to actors that reserved none: model stages without --model-num-gpus run on
    the CPU (a backend's device 'auto' took a GPU it had not reserved),
    with a note when --num-gpus was given instead; a GPU reserved for the text stage is used by its
    encoder; --no-cpu-check reaches training (an autoscaling cluster's live nodes count 0 CPUs); so does
    --decode-threads (the GPU worker's read-ahead) and --precision; HOI4D's --no-masks."""
    res = subprocess.run([sys.executable, "-c", _GPU_PROBE.format(repo=str(REPO))], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["masks"] is True and out["no_masks"] is False  # HOI4D's --no-masks reaches the config
    assert [s["options"].get("device") for s in out["cpu"]] == ["cpu", "cpu"]
    assert "--model-num-gpus, 0 here: they run on the CPU" in res.stderr
    assert out["gpu"][0]["options"].get("device") is None and "num_gpus" in out["gpu"][0]["kw"]
    assert out["text"] == {"device": "cuda"} and out["check_cpus"] is False
    assert out["decode_threads_default"] == 1 and out["decode_threads"] == 8 and out["use_gpu"] is True
    assert out["precision_default"] is None and out["precision"] == "bf16"  # None: the preset's (fp32)


def test_the_summary_says_why_there_was_nothing_to_process(capsys):
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); import json\n"
            "from jobs._extract_common import print_summary\n"
            "print_summary('epic_kitchens', json.loads(sys.stdin.read()))")

    def manifest(read, pending, done):
        return {"filters": {"read": read, "removed": {"no language": read - pending - done} if read else {}},
                "this_run": {"already_done": done, "clips_pending": pending, "samples_written": 0, "errors_by_stage": {},
                             "source_errors": 0, "clips_per_s": None, "seconds": 0.0},
                "counts": {"samples": done, "errors": 0, "errors_by_stage": {}}}

    for args, expected in (((0, 0, 0), "the source listed no clips"), ((4, 0, 0), "every clip was filtered out"),
                           ((4, 0, 4), "every clip already done")):
        res = subprocess.run([sys.executable, "-c", code], input=json.dumps(manifest(*args)), capture_output=True,
                             text=True, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
        assert expected in res.stderr, res.stderr
