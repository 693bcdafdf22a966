"""HOI4D layout: one sequence folder per clip, hand-pose pickles, camera intrinsics, ``release.txt``.

``<root>/ZY2021080000<cam>/H<human>/C<category>/N<instance>/S<room>/s<layout>/T<task>/`` holds
``align_rgb/image.mp4`` (15 fps), ``objpose/<frame>.json`` (object pose fitted from depth, see
:meth:`HOI4DWriter._write_objpose`), ``align_depth/depth_video.avi`` (FFV1 gray16le, **millimetres**, 0 =
no depth, same frames as the RGB) and ``action/color.json``
(``{"info": {"duration": s, "url": ...}, "events": [{"event", "startTime", "endTime"}]}``, seconds;
frame ``f`` is at ``f / fps``, fps = frame count / duration). Per frame where the acting hand is
visible, ``handpose/refinehandpose_<side>/<seq>/<frame>.pickle`` (0-based, unpadded) holds
``poseCoeff`` (48: 3 global wrist axis-angle in the camera frame + 45 MANO pose, flat-hand-mean),
``beta`` (10), ``trans`` (3, wrist position in the camera frame, metres) and ``kps2D`` (21 x 2 px,
OpenPose order). Left-hand clips go to ``refinehandpose_left`` with the pose mirrored to the left-hand
MANO convention (y and z of every axis-angle negated). ``camera_params/ZY2021080000<cam>/intrin.npy``
is the 3 x 3 K shared by that camera's sequences. ``2Dseg/mask/<frame:05d>.png`` (every frame) is the
renderer's segmentation in HOI4D's motion-segmentation format (:mod:`pipelines.sources.hoi4d_masks`): the
grasped object under its part's index of ``label.csv`` (:data:`MASK_PART`), a right hand under index 2
("Right Hand"); a left hand stays unlabelled, as none of these categories names one.

Our tasks map to the closest real HOI4D category / task ids (``definitions/task/task_definitions.csv``):
see :data:`TASK_MAP`.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np

from pipelines.sources.hoi4d_masks import RIGHT_HAND, encode_labels, load_motion_labels
from pipelines.synth.clip import MASK_HAND, MASK_OBJECT, SynthClip
from deft_core.video import VideoWriter, depth_to_mm, write_depth_video
from pipelines.synth.writers.common import ClipPlan, DatasetWriter, Placement, box_xyxy_valid, filled_boxes

#: our task → (category id, task id, real category name, real task name, event name of the task phase)
TASK_MAP = {
    "pick_cup": (2, 1, "Mug", "Pick and place", "Pickup"),
    "pour_cup": (2, 5, "Mug", "Pour water into another mug", "Pour"),
    "open_drawer": (4, 1, "Storage Furniture", "Open and close the drawer", "Open"),
    "pick_spoon": (13, 1, "Knife", "Pick and place", "Pickup"),
    "scoop_grape": (7, 4, "Bowl", "Take the ball out of the bowl", "Scoop"),
    "stir_spoon": (13, 4, "Knife", "Cut apple", "Stir"),
    "pick_grape": (7, 6, "Bowl", "Pick and place (with ball)", "Pickup"),
    "flip_bagel": (11, 4, "Pliers", "Clamp something", "Flip"),
    "squeeze_lemon": (7, 5, "Bowl", "Put the ball in the bowl", "Squeeze"),
}
#: our task → the part name (``label.csv``) the grasped object is labelled with; others: the category's index 1
MASK_PART = {"open_drawer": "Drawer", "scoop_grape": "Ball", "pick_grape": "Ball", "squeeze_lemon": "Ball"}
CAMERAS = tuple(f"ZY2021080000{i}" for i in range(1, 5))
RELEASE_TXT = "release.txt"


def _mirror_pose(pose48: np.ndarray) -> np.ndarray:
    """Right-hand-convention MANO pose → left-hand convention (negate y, z of each axis-angle)."""
    p = np.asarray(pose48, np.float32).reshape(16, 3).copy()
    p[:, 1:] *= -1
    return p.reshape(48)


class HOI4DWriter(DatasetWriter):
    name = "hoi4d"

    def __init__(self, root: Path, *, seed: int):
        super().__init__(root, seed=seed)
        self.sequences: list[str] = []
        self._cameras: list[np.ndarray] = []
        self._instances: dict[tuple[int, str], int] = {}
        self._humans_beta = {h: self.rng.normal(0, 0.5, 10).astype(np.float32) for h in range(1, 10)}
        self._fps = 15.0

    def open_video(self, video_id: str, fps: float) -> None:
        self._fps = fps

    def _camera(self, K: np.ndarray) -> str:
        for i, k in enumerate(self._cameras):
            if np.allclose(k, K, atol=1e-6):
                return CAMERAS[i]
        if len(self._cameras) == len(CAMERAS):
            raise ValueError(f"more than {len(CAMERAS)} distinct camera intrinsics; HOI4D has 4 cameras")
        self._cameras.append(np.asarray(K, np.float64))
        cam = CAMERAS[len(self._cameras) - 1]
        path = self._track(self.root / "camera_params" / cam / "intrin.npy")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, self._cameras[-1])
        return cam

    def add_clip(self, clip: SynthClip, plan: ClipPlan) -> Placement:
        if clip.task not in TASK_MAP:
            raise ValueError(f"HOI4D: no category mapping for task {clip.task!r}")
        if clip.depth is None:
            raise ValueError(f"HOI4D: clip {clip.clip_id} has no depth (render with with_depth=True)")
        cat, task_id, _, _, event = TASK_MAP[clip.task]
        cam = self._camera(clip.K)
        inst = self._instances.setdefault((cat, clip.object_variant), len([k for k in self._instances if k[0] == cat]) + 1)
        human = 1 + int(self.rng.integers(0, 9))
        seq = f"{cam}/H{human}/C{cat}/N{inst}/S{int(self.rng.integers(1, 300))}/s{int(self.rng.integers(1, 6)):02d}/T{task_id}"
        while seq in self.sequences:  # extremely rare: a new room number
            seq = seq.replace("/S", f"/S{int(self.rng.integers(1, 9))}", 1)
        self.sequences.append(seq)
        base = self.root / seq
        fps = self._fps
        with VideoWriter(self._track(base / "align_rgb" / "image.mp4"), fps) as w:
            w.append(clip.frames)
        write_depth_video(self._track(base / "align_depth" / "depth_video.avi"), depth_to_mm(clip.depth), fps)
        T = clip.num_frames
        events = self._events(clip, event, fps)
        action = {"info": {"duration": round(T / fps, 6), "url": "align_rgb/image.mp4"}, "events": events}
        path = self._track(base / "action" / "color.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(action, indent=1))
        self._write_objpose(base / "objpose", clip)
        if clip.masks is not None:
            self._write_masks(base / "2Dseg" / "mask", clip, cat)
        hp_dir = f"handpose/refinehandpose_{clip.hand_side}/{seq}"
        (self.root / hp_dir).mkdir(parents=True, exist_ok=True)
        beta = self._humans_beta[human]
        # The renderer states which MANO model its poses are expressed in (SynthClip.mano_pose_side);
        # HOI4D stores each hand in its own model's convention, so mirror only on a mismatch.
        mirror = clip.mano_pose_side != clip.hand_side
        for t in range(T):
            if not box_xyxy_valid(clip.hand_boxes[t]):
                continue
            pose = clip.mano_pose[t].astype(np.float32)
            item = {"poseCoeff": _mirror_pose(pose) if mirror else pose, "beta": beta.copy(),
                    "trans": clip.hand_trans[t].astype(np.float32), "kps2D": clip.keypoints_2d[t].astype(np.float32)}
            with self._track(self.root / hp_dir / f"{t}.pickle").open("wb") as f:
                pickle.dump(item, f, protocol=pickle.HIGHEST_PROTOCOL)
        return Placement(video_id=seq, video_path=f"{seq}/align_rgb/image.mp4", annotation_id=seq, frame_offset=0,
                         extra={"handpose_dir": hp_dir, "category_id": cat, "task_id": task_id, "camera": cam,
                                "depth_path": f"{seq}/align_depth/depth_video.avi"})

    def _write_masks(self, folder: Path, clip: SynthClip, category: int) -> None:
        """``2Dseg/mask/<frame:05d>.png`` for every frame (see the module doc)."""
        names = load_motion_labels()[category]
        part = MASK_PART.get(clip.task)
        obj_index = names.index(part) + 1 if part else 1
        lut = np.zeros(256, np.uint8)
        lut[MASK_OBJECT] = obj_index
        if clip.hand_side == "right":
            lut[MASK_HAND] = names.index(RIGHT_HAND) + 1
        folder.mkdir(parents=True, exist_ok=True)
        for t in range(clip.num_frames):
            img = encode_labels(lut[clip.masks[t]])
            if not cv2.imwrite(str(self._track(folder / f"{t:05d}.png")), img[..., ::-1]):
                raise OSError(f"could not write {folder / f'{t:05d}.png'}")

    def _write_objpose(self, folder: Path, clip: SynthClip) -> None:
        """``objpose/<frame>.json`` in HOI4D's layout (``dataList`` of ``{label, center{x,y,z} (m, camera
        frame), rotation{x,y,z} (Euler XYZ, rad), dimensions{length,width,height} (m)}``), one per frame.

        The clip carries no 3-D object pose, so it is fitted from the rendered depth the way HOI4D's come
        from 3-D data: a camera-aligned box (rotation 0) whose front face is at the median depth of the
        object box's central half and matches the 2-D box, as deep as it is narrow. While the hand hides the
        object the nearest frame's box is used (a pose exists whether or not the object is visible)."""
        boxes = filled_boxes(clip.object_boxes)
        K = np.asarray(clip.K, float)
        folder.mkdir(parents=True, exist_ok=True)
        for t, box in enumerate(boxes):
            if not box_xyxy_valid(box):
                continue
            x1, y1, x2, y2 = (float(v) for v in box)
            qx, qy = (x2 - x1) / 4, (y2 - y1) / 4
            patch = clip.depth[t, int(y1 + qy):max(int(y1 + qy) + 1, int(np.ceil(y2 - qy))),
                               int(x1 + qx):max(int(x1 + qx) + 1, int(np.ceil(x2 - qx)))]
            patch = patch[np.isfinite(patch) & (patch > 0)]
            if patch.size == 0:
                continue
            z_front = float(np.median(patch))
            length, width = (x2 - x1) * z_front / K[0, 0], (y2 - y1) * z_front / K[1, 1]
            height = min(length, width)
            z = z_front + height / 2
            cx, cy = ((x1 + x2) / 2 - K[0, 2]) * z / K[0, 0], ((y1 + y2) / 2 - K[1, 2]) * z / K[1, 1]
            item = {"label": clip.object_kind, "center": {"x": round(cx, 6), "y": round(cy, 6), "z": round(z, 6)},
                    "rotation": {"x": 0.0, "y": 0.0, "z": 0.0},
                    "dimensions": {"length": round(length, 6), "width": round(width, 6), "height": round(height, 6)}}
            self._track(folder / f"{t}.json").write_text(json.dumps({"dataList": [item]}))

    @staticmethod
    def _events(clip: SynthClip, task_event: str, fps: float) -> list[dict]:
        t = lambda f: round(f / fps, 4)  # noqa: E731
        T = clip.num_frames
        ev = []
        if clip.action_start > 0:
            ev.append({"event": "Stop", "startTime": 0.0, "endTime": t(clip.action_start)})
        if clip.has_contact:
            c = clip.contact_frame
            grasp_end = min(clip.action_end, c + max(1, int(round(0.3 * fps))))
            ev.append({"event": "Reachout", "startTime": t(clip.action_start), "endTime": t(c)})
            ev.append({"event": "Grasp", "startTime": t(c), "endTime": t(grasp_end)})
            if grasp_end < clip.action_end:
                ev.append({"event": task_event, "startTime": t(grasp_end), "endTime": t(clip.action_end)})
        else:
            ev.append({"event": "Reachout", "startTime": t(clip.action_start), "endTime": t(clip.action_end)})
        if clip.action_end < T - 1:
            ev.append({"event": "Stop", "startTime": t(clip.action_end), "endTime": t(T - 1)})
        return ev

    def close_video(self) -> None:
        pass

    def finish(self) -> None:
        self._track(self.root / RELEASE_TXT).write_text("".join(s + "\n" for s in self.sequences))
