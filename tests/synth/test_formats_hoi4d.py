"""HOI4D sequence folders, pickles, depth and intrinsics read back independently."""

import json
import pickle

import numpy as np
import pytest

from deft_core.video import read_video
from pipelines.synth.writers.groundtruth import load_clip_arrays, read_clip_records, read_manifest
from tests.synth import readers as R


def test_layout_ids_and_release(hoi4d_root):
    seqs = (hoi4d_root / "release.txt").read_text().split()
    assert len(seqs) == 12 and len(set(seqs)) == 12
    real = R.hoi4d_task_ids()
    for s in seqs:
        assert R.HOI4D_SEQ.match(s), s
        c = int(s.split("/")[2][1:])
        t = int(s.split("/")[6][1:])
        assert (c, t) in real, f"{s}: C{c} T{t} is not a real HOI4D task"
        cam = s.split("/")[0]
        K = np.load(hoi4d_root / "camera_params" / cam / "intrin.npy")
        assert K.shape == (3, 3) and K[2, 2] == 1


def test_sequences_agree_with_truth(hoi4d_root):
    man = read_manifest(hoi4d_root)
    broken = {c["clip_id"]: c["kind"] for c in man["corruptions"]}
    assert len(broken) == 4
    for rec in read_clip_records(hoi4d_root):
        base = hoi4d_root / rec["video_id"]
        kind = broken.get(rec["clip_id"])
        if kind == "truncated_video":
            assert not R.ffprobe_ok(base / "align_rgb/image.mp4")
            continue
        if kind == "missing_action_json":
            assert not (base / "action/color.json").exists()
            continue
        if kind == "malformed_action_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads((base / "action/color.json").read_text())
            continue
        p = R.ffprobe(base / "align_rgb/image.mp4")
        assert p["frames"] == rec["num_frames"]
        action = json.loads((base / "action/color.json").read_text())
        fps = p["frames"] / action["info"]["duration"]
        assert fps == pytest.approx(float(p["fps"]))
        ev = action["events"]
        assert all({"event", "startTime", "endTime"} == set(e) and e["startTime"] <= e["endTime"] for e in ev)
        grasp = [e for e in ev if e["event"] == "Grasp"]
        if rec["has_contact"]:
            assert round(grasp[0]["startTime"] * fps) == rec["contact_frame"]
        else:
            assert not grasp
        d = R.ffprobe(base / "align_depth/depth_video.avi")
        assert d["frames"] == rec["num_frames"] and d["pix_fmt"] == "gray16le"
        hp = hoi4d_root / "handpose" / f"refinehandpose_{rec['hand_side']}" / rec["video_id"]
        if kind == "missing_handpose":
            assert not hp.exists()
            continue
        gt = load_clip_arrays(hoi4d_root, rec["clip_id"])
        files = sorted(hp.glob("*.pickle"), key=lambda f: int(f.stem))
        assert len(files) == rec["num_frames"]
        for f in files[:: max(1, len(files) // 4)]:
            item = pickle.load(f.open("rb"))
            assert set(item) == {"poseCoeff", "beta", "trans", "kps2D"}
            assert np.shape(item["poseCoeff"]) == (48,) and np.shape(item["beta"]) == (10,)
            assert np.shape(item["trans"]) == (3,) and np.shape(item["kps2D"]) == (21, 2)
            t = int(f.stem)
            pose = np.concatenate([gt["wrist_rotation"][t], gt["hand_pose"][t]])
            if rec["hand_side"] == "left":
                pose = (pose.reshape(16, 3) * [1, -1, -1]).reshape(48)
            np.testing.assert_allclose(item["poseCoeff"], pose, atol=1e-5)
            np.testing.assert_allclose(item["trans"], gt["hand_trans"][t], atol=1e-5)


def test_depth_is_lossless_millimetres(hoi4d_root):
    rec = [r for r in read_clip_records(hoi4d_root) if not r["corrupt"]][0]
    depth = read_video(hoi4d_root / rec["extra"]["depth_path"], gray16=True)
    assert depth.dtype == np.uint16 and depth.shape[0] == rec["num_frames"]
    assert np.all(depth == 600)  # the fake renders a flat 0.6 m scene


def test_objpose_projects_onto_the_object_box(hoi4d_root):
    """objpose/<frame>.json in HOI4D's layout; its 3-D box, projected with K, covers the true 2-D object
    box (the nearest visible frame's while the hand hides the object)."""
    from pipelines.stages.contact_frame import project_object_box, read_objpose
    from pipelines.synth.writers.common import filled_boxes

    checked = 0
    for rec in read_clip_records(hoi4d_root):
        folder = hoi4d_root / rec["video_id"] / "objpose"
        if not folder.is_dir():
            continue
        z = load_clip_arrays(hoi4d_root, rec["clip_id"])
        cam = rec["video_id"].split("/")[0]
        K = np.load(hoi4d_root / "camera_params" / cam / "intrin.npy")
        boxes = filled_boxes(z["object_boxes"])
        for f in sorted(folder.glob("*.json"), key=lambda p: int(p.stem))[::7]:
            raw = json.loads(f.read_text())["dataList"][0]
            assert set(raw) == {"label", "center", "rotation", "dimensions"} and set(raw["dimensions"]) == {"length", "width", "height"}
            proj = project_object_box(read_objpose(f)[0], K)
            true = boxes[int(f.stem) - rec["frame_offset"]]
            side = max(true[2] - true[0], true[3] - true[1])
            assert np.abs(proj - true).max() < 0.35 * side + 2, (rec["clip_id"], f.name, proj, true)
            checked += 1
    assert checked > 10


def test_filled_boxes_take_the_nearest_visible_frame():
    from pipelines.synth.writers.common import filled_boxes

    nan = [np.nan] * 4
    b = filled_boxes(np.array([nan, [0, 0, 2, 2], nan, nan, [5, 5, 9, 9]], float))
    assert np.array_equal(b, [[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 2, 2], [5, 5, 9, 9], [5, 5, 9, 9]])
    assert np.isnan(filled_boxes(np.array([nan], float))).all()


def test_2dseg_masks_colour_hand_and_object_as_hoi4d_does(hoi4d_root):
    """``2Dseg/mask/<frame:05d>.png`` for every frame, RGB in the PASCAL VOC palette: the right hand under
    label.csv's "Right Hand" (index 2, green), the grasped object under its part's index (Ball: 3, Drawer: 4,
    otherwise 1); a left hand is not labelled. Read with OpenCV as HOI4D's own scripts do."""
    import cv2

    colour = {1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128)}
    part = {"pick_grape": 3, "scoop_grape": 3, "squeeze_lemon": 3, "open_drawer": 4}
    checked = 0
    for rec in read_clip_records(hoi4d_root):
        folder = hoi4d_root / rec["video_id"] / "2Dseg" / "mask"
        if rec.get("corrupt") or not folder.is_dir():
            continue
        z = load_clip_arrays(hoi4d_root, rec["clip_id"])
        assert sorted(p.name for p in folder.glob("*.png")) == [f"{t:05d}.png" for t in range(rec["num_frames"])]
        t = rec["num_frames"] // 3
        img = cv2.imread(str(folder / f"{t:05d}.png"))[..., ::-1]
        hb, ob = z["hand_boxes"][t].astype(int), z["object_boxes"][t].astype(int)
        hand_px = tuple(img[(hb[1] + hb[3]) // 2, (hb[0] + hb[2]) // 2])
        assert hand_px == (colour[2] if rec["hand_side"] == "right" else (0, 0, 0)), rec["clip_id"]
        far = ob[2] - 1 if rec["hand_side"] == "right" else ob[0]  # the object's edge away from the hand
        obj_px = tuple(img[(ob[1] + ob[3]) // 2, far])
        assert obj_px == colour[part.get(rec["task"], 1)], (rec["clip_id"], rec["task"], obj_px)
        assert set(map(tuple, img.reshape(-1, 3))) <= {(0, 0, 0), *colour.values()}
        checked += 1
    assert checked >= 6
