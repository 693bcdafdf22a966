"""Hand-object backends (hands23, detic) → the EPIC detection structure, and model-based contact frames."""

import builtins

import numpy as np
import pytest

from pipelines.formats.epic_hoa import HandSide, HandState, read_hand_object_pickle
from pipelines.models.base import HAND_OBJECT_BACKENDS, make_hand_object_detector
from pipelines.models.contact import ModelContact, clip_frames, detect_clip_hand_objects
from pipelines.models.hand_object import Hands23Detector, detic_to_detections, hands23_to_detections
from pipelines.models.open_vocab import DeticBoxes
from pipelines.sources.base import ClipRecord
from pipelines.stages.contact_frame import ContactError
from tests.scale.fake_detectron2 import FakeDeticPredictor, FakeHands23Predictor, hands23_instances
from tests.scale.tiny_models import write_video

W, H = 200, 100
HAND = [100, 40, 140, 80]
CUP = [130, 30, 170, 70]


def test_hands23_right_hand_holding_a_cup():
    rows = [dict(box=HAND, score=0.9, cls=0, link=1, side=1, contact=3),
            dict(box=CUP, score=0.8, cls=1, touch=1),                    # tool, held
            dict(box=[0, 0, 30, 30], score=0.95, cls=0, side=0, contact=2),  # left hand, self contact
            dict(box=[10, 10, 20, 20], score=0.5, cls=0, side=1, contact=3)]  # below the hand threshold
    det = hands23_to_detections(hands23_instances(H, W, rows), W, H, frame_number=7)
    assert det.frame_number == 7 and len(det.hands) == 2 and len(det.objects) == 1
    right = [h for h in det.hands if h.side == HandSide.RIGHT][0]
    assert right.state == HandState.PORTABLE_OBJECT
    assert [right.bbox.left, right.bbox.top, right.bbox.right, right.bbox.bottom] == pytest.approx([0.5, 0.4, 0.7, 0.8])
    # offset = (cup centre - hand centre) / (W, H) = ((150 - 120) / 200, (50 - 60) / 100)
    assert (right.object_offset.x, right.object_offset.y) == pytest.approx((0.15, -0.1))
    left = [h for h in det.hands if h.side == HandSide.LEFT][0]
    assert left.state == HandState.SELF_CONTACT and left.object_offset.x == 0
    assert det.objects[0].score == pytest.approx(0.8)


def test_hands23_contact_states():
    def state(contact, touch=1, linked=True):
        rows = [dict(box=HAND, score=0.9, cls=0, link=1 if linked else -1, side=1, contact=contact),
                dict(box=CUP, score=0.8, cls=1, touch=touch)]
        return hands23_to_detections(hands23_instances(H, W, rows), W, H).hands[0].state

    assert state(3, touch=5) == HandState.STATIONARY_OBJECT  # "neither, touched": a counter
    assert state(3, touch=3) == HandState.PORTABLE_OBJECT    # container, touched
    assert state(3, linked=False) == HandState.PORTABLE_OBJECT
    assert state(0) == HandState.NO_CONTACT
    assert state(1) == HandState.ANOTHER_PERSON


def test_hands23_bad_output_is_named():
    inst = hands23_instances(H, W, [dict(box=HAND, score=0.9, cls=0)])
    inst.pred_dz = inst.pred_dz[:, :5]
    with pytest.raises(ValueError, match="pred_dz"):
        hands23_to_detections(inst, W, H)


def test_hands23_detector_feeds_bgr_and_numbers_frames():
    fake = FakeHands23Predictor(lambda bgr: [dict(box=HAND, score=0.9, cls=0, side=1, contact=0)])
    det = make_hand_object_detector("hands23", predictor=fake)
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = 255  # red in RGB
    out = det.detect([img, img])
    assert [d.frame_number for d in out] == [1, 2]
    assert fake.seen[0][0, 0].tolist() == [0, 0, 255]  # detectron2 predictors take BGR


def test_detectron2_missing_names_the_source_install(tmp_path, monkeypatch):
    (tmp_path / "hodetector").mkdir()
    weights = tmp_path / "model_hands23.pth"
    weights.write_bytes(b"x")
    (tmp_path / "faster_rcnn_X_101_32x8d_FPN_3x_Hands23.yaml").write_text("{}")
    real_import = builtins.__import__

    def no_detectron2(name, *a, **k):
        if name.startswith("detectron2"):
            raise ImportError("No module named 'detectron2'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_detectron2)
    with pytest.raises(ImportError, match="facebookresearch/detectron2"):
        Hands23Detector(weights=weights, hands23_root=tmp_path, device="cpu")


def test_missing_weight_files_are_named(tmp_path):
    (tmp_path / "hodetector").mkdir()
    with pytest.raises(FileNotFoundError, match="model_hands23.pth"):
        Hands23Detector(weights=tmp_path / "model_hands23.pth", hands23_root=tmp_path)
    with pytest.raises(FileNotFoundError, match="Detic checkout"):
        make_hand_object_detector("detic", weights=tmp_path / "detic.pth", detic_root=tmp_path / "Detic")
    assert set(HAND_OBJECT_BACKENDS) == {"hands23", "detic"}


def test_detic_hand_object_heuristic_and_boxes():
    dets = [(HAND, 0.9, "right hand"), (CUP, 0.7, "cup"), ([0, 0, 20, 20], 0.8, "left hand")]
    args = (np.array([x[0] for x in dets], float), np.array([x[1] for x in dets]), np.array([0, 2, 1]),
            ["right hand", "left hand", "cup"], W, H)
    d = detic_to_detections(*args, min_overlap=0.15)  # the cup covers 300 / 1600 = 18.75 % of the hand box
    right = [h for h in d.hands if h.side == HandSide.RIGHT][0]
    left = [h for h in d.hands if h.side == HandSide.LEFT][0]
    assert right.state == HandState.PORTABLE_OBJECT and left.state == HandState.NO_CONTACT
    assert (right.object_offset.x, right.object_offset.y) == pytest.approx((0.15, -0.1))
    assert detic_to_detections(*args, min_overlap=0.2).hands[0].state == HandState.NO_CONTACT
    assert len(d.objects) == 1
    detector = make_hand_object_detector("detic", predictor=FakeDeticPredictor(dets))
    out = detector.detect([np.zeros((H, W, 3), np.uint8)])[0]
    assert len(out.hands) == 2 and len(out.objects) == 1
    boxes = DeticBoxes(predictor=FakeDeticPredictor(dets)).detect([np.zeros((H, W, 3), np.uint8)], [["cup"]])[0]
    assert [b.label for b in boxes] == ["cup"] and boxes[0].box.tolist() == CUP


class ScriptedDetector:
    """Right hand in portable contact with a cup from the frame whose bright bar row says frame >= onset."""

    name = "scripted"

    def __init__(self, onset):
        self.onset, self.calls = onset, 0

    def detect(self, images):
        from pipelines.formats.epic_hoa import Detections, FloatVector
        from pipelines.formats.epic_hoa import normalise_box as nb

        out = []
        for im in images:
            self.calls += 1
            i = int(np.argmax(im.mean(axis=(1, 2)))) // 2  # write_video draws frame i's bar at row 2 i
            d = Detections()
            if i >= self.onset:
                d.hands.add(bbox=nb(20, 10, 40, 30, 64, 48), score=0.9, state=HandState.PORTABLE_OBJECT,
                            object_offset=FloatVector(x=0.1, y=0.0), side=HandSide.RIGHT)
                d.objects.add(bbox=nb(30, 12, 50, 32, 64, 48), score=0.8)
            out.append(d)
        return out


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4", n_frames=16)


def _record(video, first=1, last=16):
    return ClipRecord(dataset="epic_kitchens", video_id="P01_01", action_id="P01_01_0", video_path=str(video), fps=10.0,
                      first_frame=first, last_frame=last, frame_base=1, noun="cup")


def test_model_contact_finds_the_onset_in_native_frames(video, tmp_path):
    rec = _record(video, first=3, last=16)  # EPIC numbering: native frame f is decoded index f - 1
    det = ScriptedDetector(onset=8)         # decoded index 8 = native frame 9
    info = detect_clip_hand_objects(rec, det, tmp_path, stride=1)
    assert info["frames"] == list(range(3, 17))
    dets = read_hand_object_pickle(info["path"])  # the EPIC release format, numbered 1..M
    assert [d.frame_number for d in dets] == list(range(1, 15))
    rec.contact["model_detections"] = info
    res = ModelContact().detect(rec, (64, 48))
    assert res.frame == 9
    assert res.hand_box.tolist() == pytest.approx([20, 10, 40, 30], abs=1e-3)
    # stride 2: frames 3, 5, 7, 9, ...; the first sampled contact frame is 9 again
    res2 = ModelContact(detector=ScriptedDetector(onset=8), out_dir=tmp_path / "s2", stride=2).detect(_record(video, 3, 16), (64, 48))
    assert res2.frame == 9


def test_model_detections_are_reused_and_missing_ones_fail_cleanly(video, tmp_path):
    det = ScriptedDetector(onset=4)
    detect_clip_hand_objects(_record(video), det, tmp_path)
    n = det.calls
    detect_clip_hand_objects(_record(video), det, tmp_path)
    assert det.calls == n  # second call reused the finished pickle
    with pytest.raises(ContactError, match="hand-object model stage"):
        ModelContact().detect(_record(video), (64, 48))
    failed = _record(video)
    failed.contact["model_detections_error"] = "RuntimeError: CUDA out of memory"
    with pytest.raises(ContactError, match="model failed: RuntimeError: CUDA out of memory"):
        ModelContact().detect(failed, (64, 48))
    with pytest.raises(ContactError, match="no right-hand"):
        ModelContact(detector=ScriptedDetector(onset=99), out_dir=tmp_path / "none").detect(_record(video), (64, 48))


def test_clip_frames_thinning():
    rec = ClipRecord(dataset="ego4d", video_id="v", action_id="a", video_path="x.mp4", fps=30.0, first_frame=0, last_frame=99)
    assert clip_frames(rec, stride=10) == list(range(0, 100, 10))
    f = clip_frames(rec, max_frames=5)
    assert len(f) == 5 and f[0] == 0 and f[-1] == 99
    with pytest.raises(ValueError, match="stride"):
        clip_frames(rec, stride=0)
