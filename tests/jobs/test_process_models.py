"""ClipProcessor with a model stage's output on the record: stored open-vocabulary boxes refine the
crop's object box; a recorded object-box failure becomes an ``object_boxes`` error row."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipelines.sources.base import open_source
from pipelines.sources.filters import apply_filters
from pipelines.stages.process import ClipProcessor, ExtractConfig
from tests.jobs.backends import FixedHandPose
from tests.jobs.conftest import _make


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    root = _make(tmp_path_factory, "ego4d")
    proc = ClipProcessor(ExtractConfig(dataset="ego4d", hand_pose_backend="fixed"), hand_pose=FixedHandPose())
    for rec in apply_filters(open_source("ego4d", str(root)).records()):
        out = proc.process(rec)
        if out.row is not None:
            return proc, rec, out.row
    pytest.fail("no clip of the tiny Ego4D dataset processed")


def test_stored_boxes_refine_the_crop(processed):
    proc, rec, row = processed
    big = [float(v) for v in row["crop_box"]]  # contains the object box: IoU with it well above 0.1
    refined = proc.process(dataclasses.replace(rec, contact={**rec.contact, "v1_object_boxes": {
        "query": rec.noun or "", "backend": "test", "boxes": [big + [0.9]]}}))
    assert refined.error is None, refined.error
    side = lambda b: b[2] - b[0]  # noqa: E731
    assert side(refined.row["crop_box"]) > side(row["crop_box"]) + 1.0  # squared around the bigger model box
    far = proc.process(dataclasses.replace(rec, contact={**rec.contact, "v1_object_boxes": {
        "query": "x", "backend": "test", "boxes": [[0.0, 0.0, 2.0, 2.0, 0.99]]}}))  # no overlap: prior kept
    assert np.allclose(far.row["crop_box"], row["crop_box"])


def test_recorded_object_box_failure_is_an_error_row(processed):
    proc, rec, _ = processed
    out = proc.process(dataclasses.replace(rec, contact={**rec.contact, "v1_object_boxes_error": "OSError: boom"}))
    assert out.row is None and out.error["stage"] == "object_boxes" and "boom" in out.error["error"]


def test_model_contact_detector_by_name():
    proc = ClipProcessor(ExtractConfig(dataset="ego4d", hand_pose_backend="fixed", contact_detector="model"),
                         hand_pose=FixedHandPose())
    assert type(proc.detector).__name__ == "ModelContact"
    with pytest.raises(ValueError, match="known: .*model"):
        ClipProcessor(ExtractConfig(dataset="ego4d", hand_pose_backend="fixed", contact_detector="nope"), hand_pose=FixedHandPose())
