"""EPIC-KITCHENS-100 hand-object detections: the ``model.detections`` protobuf schema and pickle I/O.

The release (``epic-kitchens/epic-kitchens-100-hand-object-bboxes``) ships one pickle per video,
``PXX/hand-objects/PXX_YY.pkl``: a pickled ``list[bytes]``, each element a serialized
:class:`Detections` message for one RGB frame, in frame order. List index ``i`` holds
``frame_number == i + 1`` (1-based frame numbers, matching ``frame_{i+1:010d}.jpg``).

Coordinates are **normalised to [0, 1]** of the frame the detector ran on (456x256 in the release):
``left = x1 / W``, ``right = x2 / W``, ``top = y1 / H``, ``bottom = y2 / H`` (clipped to [0, 1]).
A hand's ``object_offset`` is the vector from the hand-box centre to the predicted object centre,
normalised the same way (``dx / W``, ``dy / H``), clipped to [-1, 1].

The message classes are built at import time from a ``FileDescriptorProto`` (no ``protoc`` needed).
The equivalent ``.proto`` text is :data:`PROTO_TEXT`.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Iterable, Sequence

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

#: The schema as in ``src/public_lib/epic_kitchens/hoa/types.proto`` (reference only; the classes
#: below are built from the equivalent descriptor).
PROTO_TEXT = """\
syntax = "proto3";
package model.detections;

message FloatVector { float x = 1; float y = 2; }
message BBox { float left = 1; float top = 2; float right = 3; float bottom = 4; }
message HandDetection {
  enum HandState { NO_CONTACT = 0; SELF_CONTACT = 1; ANOTHER_PERSON = 2; PORTABLE_OBJECT = 3; STATIONARY_OBJECT = 4; }
  enum HandSide { LEFT = 0; RIGHT = 1; }
  BBox bbox = 1;
  float score = 2;
  HandState state = 3;
  FloatVector object_offset = 4;
  HandSide side = 5;
}
message ObjectDetection { BBox bbox = 1; float score = 2; }
message Detections {
  string video_id = 1;
  int32 frame_number = 2;
  repeated HandDetection hands = 3;
  repeated ObjectDetection objects = 4;
}
"""

PACKAGE = "model.detections"
_F = descriptor_pb2.FieldDescriptorProto


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name="deft/epic_hoa_types.proto", package=PACKAGE, syntax="proto3")

    def message(name: str, fields: Sequence[tuple], enums: Sequence[tuple] = ()) -> None:
        m = fd.message_type.add(name=name)
        for enum_name, values in enums:
            e = m.enum_type.add(name=enum_name)
            for number, value_name in enumerate(values):
                e.value.add(name=value_name, number=number)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name

    opt, rep = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    message("FloatVector", [("x", 1, _F.TYPE_FLOAT, opt, None), ("y", 2, _F.TYPE_FLOAT, opt, None)])
    message("BBox", [("left", 1, _F.TYPE_FLOAT, opt, None), ("top", 2, _F.TYPE_FLOAT, opt, None),
                     ("right", 3, _F.TYPE_FLOAT, opt, None), ("bottom", 4, _F.TYPE_FLOAT, opt, None)])
    message("HandDetection",
            [("bbox", 1, _F.TYPE_MESSAGE, opt, f".{PACKAGE}.BBox"),
             ("score", 2, _F.TYPE_FLOAT, opt, None),
             ("state", 3, _F.TYPE_ENUM, opt, f".{PACKAGE}.HandDetection.HandState"),
             ("object_offset", 4, _F.TYPE_MESSAGE, opt, f".{PACKAGE}.FloatVector"),
             ("side", 5, _F.TYPE_ENUM, opt, f".{PACKAGE}.HandDetection.HandSide")],
            enums=[("HandState", ["NO_CONTACT", "SELF_CONTACT", "ANOTHER_PERSON", "PORTABLE_OBJECT", "STATIONARY_OBJECT"]),
                   ("HandSide", ["LEFT", "RIGHT"])])
    message("ObjectDetection", [("bbox", 1, _F.TYPE_MESSAGE, opt, f".{PACKAGE}.BBox"),
                                ("score", 2, _F.TYPE_FLOAT, opt, None)])
    message("Detections",
            [("video_id", 1, _F.TYPE_STRING, opt, None),
             ("frame_number", 2, _F.TYPE_INT32, opt, None),
             ("hands", 3, _F.TYPE_MESSAGE, rep, f".{PACKAGE}.HandDetection"),
             ("objects", 4, _F.TYPE_MESSAGE, rep, f".{PACKAGE}.ObjectDetection")])
    return fd


# A private pool so that another module defining the same package cannot clash with ours.
_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_build_file())


def _cls(name: str):
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))


FloatVector = _cls("FloatVector")
BBox = _cls("BBox")
HandDetection = _cls("HandDetection")
ObjectDetection = _cls("ObjectDetection")
Detections = _cls("Detections")

#: Enum values (ints) for convenience: ``HandState.PORTABLE_OBJECT == 3``, ``HandSide.RIGHT == 1``.
class HandState:
    NO_CONTACT = 0
    SELF_CONTACT = 1
    ANOTHER_PERSON = 2
    PORTABLE_OBJECT = 3
    STATIONARY_OBJECT = 4


class HandSide:
    LEFT = 0
    RIGHT = 1


class HandObjectFormatError(ValueError):
    """A hand-object pickle that does not follow the release format (names the file and frame)."""


def read_hand_object_pickle(path: str | Path) -> list:
    """Read ``PXX/hand-objects/PXX_YY.pkl`` → list of :class:`Detections`, index ``i`` = frame ``i + 1``.

    Raises :class:`HandObjectFormatError` naming the file (and the list index) when the pickle is not a
    list of bytes or an element does not parse. Coordinates are returned as stored (normalised [0, 1]).
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = pickle.load(f)
    except FileNotFoundError:
        raise
    except Exception as exc:  # truncated / not a pickle
        raise HandObjectFormatError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, list):
        raise HandObjectFormatError(f"{path}: expected a pickled list of serialized Detections, got {type(raw).__name__}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, (bytes, bytearray)):
            raise HandObjectFormatError(f"{path}: element {i} is {type(item).__name__}, expected bytes")
        msg = Detections()
        try:
            msg.ParseFromString(bytes(item))
        except DecodeError as exc:
            raise HandObjectFormatError(f"{path}: element {i} (frame {i + 1}) does not parse as Detections: {exc}") from exc
        out.append(msg)
    return out


def write_hand_object_pickle(path: str | Path, detections: Iterable) -> int:
    """Write ``detections`` (``Detections`` messages in frame order) as the release's pickled ``list[bytes]``.

    Checks that ``frame_number`` is 1-based and consecutive (element ``i`` → ``i + 1``); returns the
    number of frames written. Parent folders are created.
    """
    path = Path(path)
    blobs = []
    for i, det in enumerate(detections):
        if det.frame_number != i + 1:
            raise ValueError(f"{path}: detection {i} has frame_number {det.frame_number}, expected {i + 1} (1-based, consecutive)")
        blobs.append(det.SerializeToString())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(blobs, f, protocol=pickle.HIGHEST_PROTOCOL)
    return len(blobs)


def to_pixels(box, width: float, height: float) -> tuple[float, float, float, float]:
    """A normalised :class:`BBox` → ``(x1, y1, x2, y2)`` in pixels of a ``width`` x ``height`` frame."""
    return box.left * width, box.top * height, box.right * width, box.bottom * height


def normalise_box(x1: float, y1: float, x2: float, y2: float, width: float, height: float):
    """Pixel box → :class:`BBox` normalised to [0, 1] (clipped), as the release does."""
    c = lambda v: min(1.0, max(0.0, float(v)))  # noqa: E731
    return BBox(left=c(x1 / width), top=c(y1 / height), right=c(x2 / width), bottom=c(y2 / height))
