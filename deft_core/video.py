"""Video encoding and decoding (PyAV), with exact frame counts and exact rational fps.

Shared by the synthetic-dataset writers (``pipelines.synth``) and the robot's episode videos
(``robot.episode.VideoRecorder``); it lives in ``deft_core`` because the robot process never imports
``pipelines``.

Colour video: H.264 (``libx264`` when the PyAV wheel has it, else MPEG-4 Part 2), ``yuv420p``, every
frame with ``pts = i`` in the codec's time base of ``1/fps``, so that ffprobe,
decord and PyAV all report ``T`` frames at the declared rate. NTSC rates are stored as the exact
rationals the cameras use (59.94 → 60000/1001, 29.97 → 30000/1001, 47.95 → 48000/1001, ...).

Depth video: lossless FFV1, pixel format ``gray16le`` (one 16-bit channel, **millimetres**, 0 = no
depth), in an AVI container — decodes bit-exactly back to the uint16 millimetre maps.

The same frames always give the same bytes (:data:`X264_REPRODUCIBLE`). With libx264's defaults they did
not: on the 2-core development machine 8 encodings of one clip gave up to 5 different files, with
decoded pixels up to 46 levels apart, so the rendered datasets — and the shards, the affordance model and
Table 2 downstream of them — differed between two runs of the same seed. Both of x264's sources of
variation are switched off: threading, and CPU-dependent assembly (``cpu-independent``; with threads
pinned to 1 alone, 1–3 of 30 encodings under load still differed). Cost: ~1 ms per frame, next to
~100 ms of rendering.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

#: libx264 settings that make the output a function of the input frames alone (see the module doc)
X264_REPRODUCIBLE = "threads=1:lookahead-threads=1:sliced-threads=0:cpu-independent=1"

#: NTSC-style rates: nominal fps → exact rational.
_NTSC = {23.976: Fraction(24000, 1001), 29.97: Fraction(30000, 1001), 47.95: Fraction(48000, 1001),
         59.94: Fraction(60000, 1001), 119.88: Fraction(120000, 1001)}


def fps_to_rational(fps: float | Fraction) -> Fraction:
    """Exact rational frame rate for a nominal ``fps`` (59.94 → 60000/1001, 50 → 50, 30 → 30)."""
    if isinstance(fps, Fraction):
        return fps
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    for nominal, exact in _NTSC.items():
        if abs(fps - nominal) < 0.006 or abs(fps - float(exact)) < 1e-6:
            return exact
    return Fraction(fps).limit_denominator(1001)


def pick_codec() -> str:
    """``libx264`` if this PyAV build can encode H.264, else ``mpeg4``."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int    #: decoded frame count
    fps: Fraction      #: stream average frame rate
    width: int
    height: int
    codec: str


class VideoWriter:
    """Streaming RGB encoder: ``with VideoWriter(path, fps) as w: w.append(frames)`` (see module doc).

    Frames are (H, W, 3) uint8 RGB; width and height must be even (yuv420p). Several clips can be
    appended one after another to build one long video.
    """

    def __init__(self, path: str | Path, fps: float | Fraction, *, codec: str | None = None, crf: int = 20):
        import av

        self.path = Path(path)
        self.rate = fps_to_rational(fps)
        self.codec = codec or pick_codec()
        self.crf = crf
        self.num_frames = 0
        self.width = self.height = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        self._stream = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the block failed: close what can be closed, and let the block's error be the one reported
            self.close()
        except Exception:  # noqa: BLE001 - e.g. "no frames to write" when the first append failed
            pass

    def _open_stream(self, height: int, width: int) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"{self.path}: width and height must be even for yuv420p, got {width}x{height}")
        stream = self._container.add_stream(self.codec, rate=self.rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if self.codec == "libx264":
            stream.options = {"crf": str(self.crf), "preset": "veryfast", "threads": "1",
                              "x264-params": X264_REPRODUCIBLE}
        else:
            stream.bit_rate = max(400_000, int(width * height * float(self.rate) * 0.25))
            stream.options = {"threads": "1"}
        self._stream, self.width, self.height = stream, width, height

    def append(self, frames: np.ndarray | Iterable[np.ndarray]) -> None:
        """Append one (H, W, 3) frame or a (T, H, W, 3) stack / iterable of frames."""
        import av

        arr = frames if not isinstance(frames, np.ndarray) or frames.ndim == 4 else frames[None]
        for frame in arr:
            frame = np.asarray(frame)
            n = self.num_frames
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"{self.path}: frame {n} must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
            if self._stream is None:
                self._open_stream(*frame.shape[:2])
            elif frame.shape[:2] != (self.height, self.width):
                raise ValueError(f"{self.path}: frame {n} is {frame.shape[1]}x{frame.shape[0]}, "
                                 f"first frame was {self.width}x{self.height}")
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts = n
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
            self.num_frames += 1

    def close(self) -> VideoInfo:
        """Flush and close (idempotent); raises if no frame was appended."""
        if self._container is not None:
            try:
                if self._stream is None:
                    raise ValueError(f"{self.path}: no frames to write")
                for packet in self._stream.encode():
                    self._container.mux(packet)
            finally:
                self._container.close()
                self._container = None
        return VideoInfo(self.num_frames, self.rate, self.width, self.height, self.codec)


def write_video(path: str | Path, frames: np.ndarray | Iterable[np.ndarray], fps: float | Fraction, *,
                codec: str | None = None, crf: int = 20) -> VideoInfo:
    """Encode RGB ``frames`` ((T, H, W, 3) uint8, or an iterable of (H, W, 3)) to ``path`` at ``fps``."""
    writer = VideoWriter(path, fps, codec=codec, crf=crf)
    try:
        writer.append(frames)
    except BaseException:
        try:
            writer.close()
        except ValueError:
            pass  # nothing was written; the original error is the one to report
        raise
    return writer.close()


def write_depth_video(path: str | Path, depth_mm: np.ndarray, fps: float | Fraction) -> VideoInfo:
    """Encode (T, H, W) uint16 depth in millimetres losslessly (FFV1 gray16le, AVI container)."""
    import av

    path = Path(path)
    depth_mm = np.asarray(depth_mm)
    if depth_mm.dtype != np.uint16 or depth_mm.ndim != 3:
        raise ValueError(f"{path}: depth must be (T, H, W) uint16 millimetres, got {depth_mm.shape} {depth_mm.dtype}")
    rate = fps_to_rational(fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    T, H, W = depth_mm.shape
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("ffv1", rate=rate)
        stream.width, stream.height, stream.pix_fmt = W, H, "gray16le"
        stream.options = {"threads": "1"}
        for i in range(T):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(depth_mm[i]), format="gray16le")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return VideoInfo(T, rate, W, H, "ffv1")


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """Metres (float, NaN/inf/≤0 = no depth) → uint16 millimetres (0 = no depth, saturates at 65535)."""
    d = np.asarray(depth_m, dtype=np.float64)
    mm = np.where(np.isfinite(d) & (d > 0), np.round(d * 1000.0), 0)
    return np.clip(mm, 0, 65535).astype(np.uint16)


def read_video(path: str | Path, *, indices: Iterable[int] | None = None, gray16: bool = False) -> np.ndarray:
    """Decode a video (all frames, or the 0-based ``indices``) → (N, H, W, 3) uint8 RGB, or (N, H, W) uint16.

    With ``indices`` the decoder first seeks to the keyframe before the first one wanted (decoding a
    1080p gray16 depth video from its start costs ~0.1 s per frame here, so a contact frame at 150 cost
    seconds per clip); where the stream's timestamps cannot place the frames it decodes from the start."""
    import av

    fmt = "gray16le" if gray16 else "rgb24"
    wanted = None if indices is None else sorted(set(int(i) for i in indices))
    if wanted and wanted[0] > 0:
        try:
            got = _read_seeking(path, wanted, fmt)
        except av.error.FFmpegError:
            got = None  # not seekable: decode from the start below, which reports a broken file properly
        if got is not None:
            return got
    out: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if wanted is None or i in wanted:
                out[i] = frame.to_ndarray(format=fmt)
            if wanted is not None and i >= wanted[-1]:
                break
    keys = wanted if wanted is not None else sorted(out)
    missing = [i for i in keys if i not in out]
    if missing:
        raise ValueError(f"{path}: frames {missing[:5]} not in the video ({len(out)} decoded)")
    return np.stack([out[i] for i in keys])


def _read_seeking(path: str | Path, wanted: list[int], fmt: str) -> np.ndarray | None:
    """The sorted ``wanted`` frames, decoded from the keyframe before the first; ``None`` when the stream
    has no rate or timestamps, or the seek lands past the first wanted frame (the caller then decodes all)."""
    import av

    with av.open(str(path)) as container:
        s = container.streams.video[0]
        rate, tb = s.average_rate or s.guessed_rate, s.time_base
        if not rate or not tb:
            return None
        start = s.start_time or 0
        container.seek(start + int(wanted[0] / (rate * tb)), stream=s, backward=True, any_frame=False)
        out: dict[int, np.ndarray] = {}
        first = True
        for frame in container.decode(s):
            if frame.pts is None:
                return None
            i = round(float((frame.pts - start) * tb * rate))  # the frame's 0-based index
            if first and i > wanted[0]:
                return None
            first = False
            if i in wanted:
                out[i] = frame.to_ndarray(format=fmt)
            if i >= wanted[-1]:
                break
    return np.stack([out[i] for i in wanted]) if len(out) == len(wanted) else None


def video_length(path: str | Path) -> tuple[int, float]:
    """(frame count, fps) of a video from its container header (PyAV), counting decoded frames only when
    the header has no count; fps 0 when the stream states no rate. Raises on an unreadable file."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or s.guessed_rate or 0)
        n = s.frames or sum(1 for _ in c.decode(video=0))
    return int(n), fps


def probe_video(path: str | Path) -> VideoInfo:
    """Count decoded frames and read the stream's average rate with PyAV (raises on unreadable files)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate) if stream.average_rate else Fraction(0)
        n = sum(1 for _ in container.decode(video=0))
        return VideoInfo(n, rate, stream.codec_context.width, stream.codec_context.height, stream.codec_context.name)
