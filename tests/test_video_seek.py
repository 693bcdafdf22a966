"""deft_core.video.read_video with indices seeks to the keyframe before the first wanted frame instead of
decoding from the start; the frames it returns must be exactly those a full decode gives."""

import numpy as np
import pytest

from deft_core import video


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("seek")
    rng = np.random.default_rng(0)
    t = 60
    # every frame distinct (its index is written into a corner), depth with its index as the value
    depth = rng.integers(300, 3000, (t, 48, 64)).astype(np.uint16)
    depth[:, 0, 0] = np.arange(t)
    rgb = np.zeros((t, 48, 64, 3), np.uint8)
    for i in range(t):
        rgb[i, :, : (i % 64) + 1] = 200
        rgb[i, 40:, :, 1] = i * 4
    video.write_depth_video(d / "depth.avi", depth, 15)
    video.write_video(d / "rgb.mp4", rgb, 30)
    return d, depth


@pytest.mark.parametrize("indices", [[0], [1], [37], [59], [5, 20, 58], [12, 12, 3]])
def test_indexed_reads_equal_the_full_decode(clips, indices):
    d, depth = clips
    got = video.read_video(d / "depth.avi", indices=indices, gray16=True)
    assert np.array_equal(got, depth[sorted(set(indices))])  # lossless: the written millimetres, frame for frame
    full = video.read_video(d / "rgb.mp4")
    assert np.array_equal(video.read_video(d / "rgb.mp4", indices=indices), full[sorted(set(indices))])


def test_the_seek_is_used_and_a_missing_frame_is_still_an_error(clips, monkeypatch):
    d, _ = clips
    calls = []
    real = video._read_seeking
    monkeypatch.setattr(video, "_read_seeking", lambda *a: calls.append(a) or real(*a))
    video.read_video(d / "depth.avi", indices=[40], gray16=True)
    assert calls and real(d / "depth.avi", [40], "gray16le") is not None  # it placed the frame by its timestamp
    with pytest.raises(ValueError, match="not in the video"):
        video.read_video(d / "depth.avi", indices=[60], gray16=True)
