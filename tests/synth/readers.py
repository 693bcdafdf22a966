"""Independent readers of the native formats, written from the format descriptions
(/work/shared/reference/datasets-and-formats.md), used only by tests. They deliberately share no code
with the writers: the protobuf wire format is decoded by hand from the field numbers, videos are
probed with the ffprobe binary.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

# ---- protobuf wire format -------------------------------------------------------------------

def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes):
    """Yield (field number, wire type, value) of one message; value is int, float bytes or bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield number, wt, v


def _f32(v: bytes) -> float:
    return struct.unpack("<f", v)[0]


def _vector(buf, names):
    out = {n: 0.0 for n in names}
    for num, wt, v in _fields(buf):
        assert wt == 5, f"float field {num} has wire type {wt}"
        out[names[num - 1]] = _f32(v)
    return out


def decode_detections(buf: bytes) -> dict:
    """model.detections.Detections → {video_id, frame_number, hands:[...], objects:[...]} (field numbers:
    Detections{1 video_id, 2 frame_number, 3 hands, 4 objects}; HandDetection{1 bbox, 2 score, 3 state,
    4 object_offset, 5 side}; ObjectDetection{1 bbox, 2 score}; BBox{left, top, right, bottom};
    FloatVector{x, y}). Proto3 defaults (0) apply to absent fields."""
    d = {"video_id": "", "frame_number": 0, "hands": [], "objects": []}
    for num, wt, v in _fields(buf):
        if num == 1:
            d["video_id"] = v.decode()
        elif num == 2:
            d["frame_number"] = v
        elif num == 3:
            h = {"bbox": None, "score": 0.0, "state": 0, "object_offset": {"x": 0.0, "y": 0.0}, "side": 0}
            for n2, w2, v2 in _fields(v):
                if n2 == 1:
                    h["bbox"] = _vector(v2, ("left", "top", "right", "bottom"))
                elif n2 == 2:
                    h["score"] = _f32(v2)
                elif n2 == 3:
                    h["state"] = v2
                elif n2 == 4:
                    h["object_offset"] = _vector(v2, ("x", "y"))
                elif n2 == 5:
                    h["side"] = v2
            d["hands"].append(h)
        elif num == 4:
            o = {"bbox": None, "score": 0.0}
            for n2, w2, v2 in _fields(v):
                if n2 == 1:
                    o["bbox"] = _vector(v2, ("left", "top", "right", "bottom"))
                elif n2 == 2:
                    o["score"] = _f32(v2)
            d["objects"].append(o)
    return d


def read_epic_hand_objects(path: Path) -> list[dict]:
    with open(path, "rb") as f:
        raw = pickle.load(f)
    assert isinstance(raw, list) and all(isinstance(b, bytes) for b in raw), f"{path}: not a list of bytes"
    return [decode_detections(b) for b in raw]


# ---- EPIC CSV ---------------------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"
NARRATION_TS = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3}$")
START_STOP_TS = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{2}$")
LIST_STR = re.compile(r"^\['[^']+'(, '[^']+')*\]$")
LIST_INT = re.compile(r"^\[\d+(, \d+)*\]$")


def real_epic_header() -> list[str]:
    return (FIXTURES / "EPIC_100_validation_head.csv").read_text().splitlines()[0].split(",")


def ts_seconds(ts: str) -> float:
    h, m, s = ts.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


# ---- video ------------------------------------------------------------------------------------

def ffprobe(path: Path) -> dict:
    """{'frames': decoded frame count, 'fps': Fraction avg_frame_rate, 'width', 'height', 'codec', 'pix_fmt'}."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                          "stream=nb_read_frames,avg_frame_rate,width,height,codec_name,pix_fmt", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    s = json.loads(out.stdout)["streams"][0]
    return {"frames": int(s["nb_read_frames"]), "fps": Fraction(s["avg_frame_rate"]), "width": s["width"],
            "height": s["height"], "codec": s["codec_name"], "pix_fmt": s["pix_fmt"]}


def ffprobe_ok(path: Path) -> bool:
    try:
        return ffprobe(path)["frames"] > 0
    except (subprocess.CalledProcessError, KeyError, IndexError, ValueError):
        return False


# ---- HOI4D ------------------------------------------------------------------------------------

def hoi4d_task_ids() -> dict[tuple[int, int], str]:
    """(category number, task number) → task name, for tasks that exist (not N/A) in the real CSV."""
    import csv

    out = {}
    with (FIXTURES / "hoi4d_task_definitions.csv").open() as f:
        for row in csv.DictReader(f):
            c = int(row["Category ID"].lstrip("C"))
            for k, v in row.items():
                if k.startswith("T") and v and v != "N/A":
                    out[(c, int(k[1:]))] = v
    return out


HOI4D_SEQ = re.compile(r"^ZY2021080000\d/H\d+/C\d+/N\d+/S\d+/s\d{2}/T\d+$")
