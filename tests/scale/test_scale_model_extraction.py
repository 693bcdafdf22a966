"""End to end without Ray: a hand-object model stage (HandObjectActor) feeds ModelContact, and the
extraction's real CPU stages (ClipProcessor) turn the clip into a schema-valid affordance row."""

import json

import av
import numpy as np
import pandas as pd
import pytest

from pipelines.formats.epic_hoa import Detections, HandSide, HandState, normalise_box
from pipelines.models.actors import HandObjectActor
from pipelines.models.contact import ModelContact
from pipelines.sources.base import ClipRecord
from pipelines.stages.contact_points import skin_mask
from pipelines.stages.process import ClipProcessor, ExtractConfig
from tests.pipeline.frames import scene

W, H = 456, 256
OBJECT = (200, 100, 280, 180)
CENTRES = [(100 + 9 * i, 140) for i in range(12)]  # the hand reaches the object's left edge at frame ~8


class SkinColourDetector:
    """A pixel-level stand-in for a hand-object model: the hand is the skin-coloured blob (its box from
    the skin mask), the object a fixed box; contact when the two boxes touch."""

    name = "skin-colour"

    def detect(self, images):
        out = []
        for im in images:
            d = Detections()
            ys, xs = np.nonzero(skin_mask(im))
            d.objects.add(bbox=normalise_box(*OBJECT, W, H), score=0.9)
            if xs.size:
                hb = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
                touching = hb[2] >= OBJECT[0] - 2
                d.hands.add(bbox=normalise_box(*hb, W, H), score=0.95, side=HandSide.RIGHT,
                            state=HandState.PORTABLE_OBJECT if touching else HandState.NO_CONTACT)
            out.append(d)
        return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("reach") / "P01_01.MP4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt, s.bit_rate = W, H, "yuv420p", 4_000_000
        for c in CENTRES:
            img, _, _ = scene(W, H, seed=0, obj=OBJECT, hand_centre=c)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return ClipRecord(dataset="epic_kitchens", video_id="P01_01", action_id="P01_01_7", video_path=str(path), fps=10.0,
                      first_frame=1, last_frame=12, frame_base=1, text="pick up cup", verb="pick-up", noun="cup")


class _Pose:
    name = "test-pose"

    def estimate(self, record, frame_rgb, contact):
        from pipelines.stages.hand_pose import HandPose

        return HandPose(np.zeros(3), np.zeros(45), self.name)


def test_model_stage_then_cpu_stages_make_a_valid_row(clip, tmp_path):
    rows = HandObjectActor("hands23", str(tmp_path), detector=SkinColourDetector())(pd.DataFrame([clip.to_row()]))
    info = json.loads(rows["contact"].iloc[0])["model_detections"]
    assert info["backend"] == "skin-colour" and info["frames"] == list(range(1, 13))
    processor = ClipProcessor(ExtractConfig(dataset="epic_kitchens", hand_pose_backend="test-pose"),
                              detector=ModelContact(), hand_pose=_Pose())
    outcome = processor.process(rows.iloc[0].to_dict())
    assert outcome.error is None, outcome.error
    row = outcome.row
    # the hand's right edge (centre + 30 px axis) reaches the object's left edge (x = 200) at centre x >= 170:
    # frame index 8 (x = 172), native EPIC frame 9; blob edges blur a little in the video
    assert row["contact_frame"] in (8, 9, 10)
    x1, y1, x2, y2 = row["crop_box"]
    assert x1 <= OBJECT[0] and x2 >= OBJECT[2] and y1 <= OBJECT[1] and y2 >= OBJECT[3]  # the crop holds the object
    pts = np.asarray(row["contact_points"])
    assert pts.shape[1] == 2 and np.all((pts >= 0) & (pts <= 1))
    px = x1 + pts[:, 0] * (x2 - x1)  # back to v1 pixels: the hand touches the object's left edge (x = 200)
    assert np.all(np.abs(px - OBJECT[0]) < 12), px
