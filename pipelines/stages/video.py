"""Frame decoding: a few frames of a video by 0-based index, as RGB uint8 arrays.

Uses ``decord`` (package ``decord2``) for random access; falls back to PyAV (``av``) when decord is
not installed or cannot open the file. A missing file, an unreadable container or an index past the
decodable end (a truncated video) raises :class:`VideoError` naming the file and the index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


class VideoError(RuntimeError):
    """A video that cannot be decoded at the requested frames (message names file and frame)."""


def _read_decord(path: str, indices: list[int]) -> np.ndarray:
    import decord

    vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    n = len(vr)
    bad = [i for i in indices if i >= n]
    if bad:
        raise VideoError(f"{path}: frame index {bad[0]} is past the end of the video ({n} frames; truncated?)")
    return vr.get_batch(indices).asnumpy()


def _read_av(path: str, indices: list[int]) -> np.ndarray:
    import av

    wanted = set(indices)
    got: dict[int, np.ndarray] = {}
    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                got[i] = frame.to_ndarray(format="rgb24")
            if len(got) == len(wanted) or i >= max(wanted):
                break
    missing = sorted(wanted - set(got))
    if missing:
        raise VideoError(f"{path}: frame index {missing[0]} could not be decoded (video ends at {len(got)} wanted frames; truncated?)")
    return np.stack([got[i] for i in indices])


def read_frames(path: str | Path, indices: Sequence[int]) -> np.ndarray:
    """Decode frames ``indices`` (0-based) of ``path`` → (N, H, W, 3) uint8 RGB, in the order asked."""
    path = str(path)
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("read_frames needs at least one frame index")
    if min(indices) < 0:
        raise VideoError(f"{path}: negative frame index {min(indices)}")
    if not Path(path).is_file():
        raise VideoError(f"video file not found: {path}")
    decord_error: Exception | None = None
    try:
        return _read_decord(path, indices)
    except VideoError:
        raise
    except ImportError:
        pass
    except Exception as exc:  # decord could not open or decode: try PyAV before giving up
        decord_error = exc
    try:
        return _read_av(path, indices)
    except VideoError:
        raise
    except Exception as exc:
        raise VideoError(f"{path}: cannot decode ({type(exc).__name__}: {exc}; decord: {decord_error})") from exc
