"""HOI4D's 2Dseg masks (format, reading, the touched part) and the contact points found from masks and depth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.sources import hoi4d_masks as hm
from pipelines.stages import contact_points as cp


def test_palette_is_pascal_voc():
    pal = hm.voc_palette(6)
    assert pal.tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128]]
    assert len({tuple(c) for c in hm.voc_palette(256)}) == 256  # every index its own colour


def test_shipped_labels_name_the_right_hand_index_2_of_every_category():
    labels = hm.load_motion_labels()
    assert labels[2] == ["Mug", "Right Hand", "Mug"]
    assert labels[4][3] == "Drawer" and labels[7] == ["Bowl", "Right Hand", "Ball"]
    assert len(labels) == 16 and all(names[1] == hm.RIGHT_HAND for names in labels.values())


def test_encode_decode_round_trip_and_unknown_colours():
    labels = np.random.default_rng(0).integers(0, 6, (20, 30)).astype(np.uint8)
    rgb = hm.encode_labels(labels)
    back, unknown = hm.decode_labels(rgb)
    assert np.array_equal(back, labels) and unknown == 0
    rgb[0, :5] = (1, 2, 3)
    back, unknown = hm.decode_labels(rgb)
    assert unknown == 5 and np.all(back[0, :5] == 0)
    with pytest.raises(hm.MaskError, match="RGB"):
        hm.decode_labels(labels)


def test_read_mask_as_written_by_opencv_resized_and_refused(tmp_path):
    labels = np.zeros((40, 60), np.uint8)
    labels[10:20, 10:30], labels[10:20, 30:50] = 2, 1
    path = tmp_path / "00007.png"
    cv2.imwrite(str(path), hm.encode_labels(labels)[..., ::-1])  # OpenCV writes BGR: the file holds RGB colours
    assert hm.mask_path(tmp_path, 7) == path and hm.mask_path(tmp_path, 8) is None
    assert np.array_equal(hm.read_mask(path), labels)
    big = hm.read_mask(path, size=(120, 80))
    assert big.shape == (80, 120) and np.array_equal(big[::2, ::2], labels)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(hm.MaskError, match="not a readable image"):
        hm.read_mask(tmp_path / "broken.png")
    cv2.imwrite(str(tmp_path / "photo.png"), np.full((40, 60, 3), 77, np.uint8))
    with pytest.raises(hm.MaskError, match="outside HOI4D's label palette"):
        hm.read_mask(tmp_path / "photo.png")


def test_the_object_is_the_part_touching_the_hand():
    names = ["Door", "Right Hand", "Body of the Cabinet", "Drawer", "Bottle"]  # C4
    labels = np.zeros((50, 80), np.uint8)
    labels[5:45, 0:20] = 3          # the cabinet: the largest part, away from the hand
    labels[20:30, 40:50] = 2        # the hand
    labels[20:30, 50:60] = 4        # the drawer it holds
    labels[40:45, 70:75] = 5        # a bottle
    hand, obj = hm.hand_and_object_masks(labels, names)
    assert np.array_equal(hand, labels == 2) and np.array_equal(obj, labels == 4)
    labels[20:30, 50:60] = 0        # nothing touches: the largest part
    assert np.array_equal(hm.hand_and_object_masks(labels, names)[1], labels == 3)
    with pytest.raises(hm.MaskError, match="no right-hand"):
        hm.hand_and_object_masks(np.where(labels == 2, 0, labels), names)
    hand_only = np.where(labels == 2, 2, 0).astype(np.uint8)  # the hand hides the whole object
    assert hm.hand_and_object_masks(hand_only, names)[1] is None


def _scene():
    """A hand (x 10-29) whose two right-most columns touch an object (x 30-49) at 0.5 m; the rest of the
    hand is 10 cm nearer the camera."""
    h, w = 40, 60
    hand, obj = np.zeros((h, w), bool), np.zeros((h, w), bool)
    hand[10:30, 10:30], obj[10:30, 30:50] = True, True
    depth = np.zeros((h, w), np.float32)
    depth[hand] = 0.40
    depth[10:30, 28:30] = 0.50
    depth[obj] = 0.50
    K = np.array([[50.0, 0, 30], [0, 50.0, 20], [0, 0, 1]])
    return hand, obj, depth, K


def test_touch_points_lie_where_hand_and_object_depths_meet():
    hand, obj, depth, K = _scene()
    pts = cp.touch_points(hand, obj, depth, K, num_points=5)
    assert pts.shape == (5, 2) and np.all((pts[:, 0] >= 28) & (pts[:, 0] <= 29))
    assert cp.touch_points(hand, obj, np.zeros_like(depth), K) is None  # no depth anywhere


def test_contact_points_from_masks_with_and_without_depth():
    hand, obj, depth, K = _scene()
    hb, ob = [10, 10, 30, 30], [30, 10, 50, 30]
    pts, how = cp.contact_points_from_masks(hand, obj, hb, ob)
    assert how == "hand_mask" and np.array_equal(pts, cp.grasp_centre_points(hand, hb, ob))
    both, how = cp.contact_points_from_masks(hand, obj, hb, ob, depth, K)
    touch = cp.touch_points(hand, obj, depth, K)
    assert how == "hand_mask_depth" and len(both) == 10
    assert np.allclose(both.mean(0), (pts.mean(0) + touch.mean(0)) / 2)  # halfway between the two estimates
    few = np.zeros_like(hand)
    few[12, 12:15] = True  # 3 hand pixels in the hand box: mask and box disagree, the caller uses skin colour
    pts, why = cp.contact_points_from_masks(few, obj, hb, ob, depth, K)
    assert pts is None and "fewer than 5" in why
    assert cp.contact_points_from_masks(hand, None, hb, ob, depth, K)[1] == "hand_mask"  # no object visible


def test_one_touch_pixel_is_repeated_so_the_centroid_stays_the_midpoint():
    hand, obj, depth, K = _scene()
    hb, ob = [10, 10, 30, 30], [30, 10, 50, 30]
    lone = depth.copy()
    lone[hand] = 0
    lone[15, 29] = depth[15, 29]  # one hand pixel with depth, next to the object
    gc = cp.grasp_centre_points(hand, hb, ob)
    pts, how = cp.contact_points_from_masks(hand, obj, hb, ob, lone, K)
    assert how == "hand_mask_depth" and len(pts) == 2 * len(gc)
    assert np.allclose(pts.mean(0), (gc.mean(0) + [29, 15]) / 2)


def test_hoi4d_clips_take_their_points_from_the_masks_and_fall_back_clip_by_clip(hoi4d_fake, tmp_path, caplog):
    """With 2Dseg masks and depth the points come from both (``hand_mask_depth``); with a depth video that does
    not fit the RGB, from the hand mask alone; with the contact frame's mask damaged, from skin colour, as for other datasets;
    ``use_masks=False`` ignores the masks. No clip is lost on the way."""
    import shutil

    from pipelines.sources.hoi4d import HOI4DSource
    from pipelines.stages.process import ClipProcessor, ExtractConfig

    root = tmp_path / "ds"
    shutil.copytree(hoi4d_fake, root)
    recs = [r for r in HOI4DSource(root).records() if r.hand_hint == "right"]
    assert len(recs) >= 2 and all(r.contact["mask_dir"] and r.contact["depth_path"] for r in recs)
    proc = ClipProcessor(ExtractConfig(dataset="hoi4d"))
    first = [proc.process(r) for r in recs]
    assert [o.row["contact_points_source"] for o in first] == ["hand_mask_depth"] * len(recs), [o.error for o in first]
    from deft_core.video import write_depth_video

    n = len(list(Path(recs[0].contact["mask_dir"]).glob("*.png")))  # a depth video of another size than the RGB
    write_depth_video(recs[0].contact["depth_path"], np.full((n, 48, 64), 600, np.uint16), 15.0)
    frame = first[1].row["contact_frame"]
    (Path(recs[1].contact["mask_dir"]) / f"{frame:05d}.png").write_bytes(b"not a png")
    again = [proc.process(r) for r in HOI4DSource(root).records() if r.hand_hint == "right"]
    assert [o.row["contact_points_source"] for o in again[:2]] == ["hand_mask", "grasp_centre"], [o.error for o in again]
    assert f"{frame:05d}.png: not a readable image" in caplog.text  # each fallback is named, with its reason
    assert "without depth: depth unusable: ValueError: depth frame is 64x48, the video 192x112" in caplog.text
    # the same view at half the resolution is resized to the RGB's (nearest), not refused
    write_depth_video(recs[0].contact["depth_path"], np.full((n, 56, 96), 600, np.uint16), 15.0)
    from pipelines.stages.frame_masks import frame_masks

    masks, _ = frame_masks(recs[0], first[0].row["contact_frame"], (192, 112))
    assert masks.depth_m.shape == (112, 192) and np.all(masks.depth_m == 0.6)
    plain = ClipProcessor(ExtractConfig(dataset="hoi4d", use_masks=False)).process(recs[2] if len(recs) > 2 else recs[0])
    assert plain.row["contact_points_source"] == "grasp_centre"


def test_left_hand_clips_do_not_take_the_right_hand_from_the_masks(hoi4d_fake):
    from pipelines.sources.hoi4d import HOI4DSource
    from pipelines.stages.frame_masks import frame_masks

    rec = next(r for r in HOI4DSource(hoi4d_fake).records() if r.hand_hint == "right")
    assert frame_masks(rec, 3, (192, 112))[0] is not None
    rec.hand_hint = "left"
    masks, why = frame_masks(rec, 3, (192, 112))
    assert masks is None and "left-hand" in why


def test_masks_are_found_in_the_alternative_folders_in_order(hoi4d_fake, tmp_path):
    import shutil

    from pipelines.sources.hoi4d import HOI4DSource

    root = tmp_path / "ds"
    shutil.copytree(hoi4d_fake, root)
    rec = next(iter(HOI4DSource(root).records()))
    mask_dir = Path(rec.contact["mask_dir"])
    seq = mask_dir.parent.parent
    assert mask_dir == seq / "2Dseg" / "mask"
    for sub in ("refine_2Dseg/mask", "2Dseg/shift_mask"):
        (seq / sub).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(mask_dir), str(seq / sub))
        again = next(r for r in HOI4DSource(root).records() if r.sample_id == rec.sample_id)
        assert Path(again.contact["mask_dir"]) == seq / sub
        mask_dir = seq / sub
