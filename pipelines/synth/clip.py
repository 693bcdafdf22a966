"""The hand-off between the synthetic renderer and the dataset-format writers.

A :class:`SynthClip` is one rendered action: the frames seen by the moving head camera and the exact
ground truth of everything the pipeline later estimates. All per-frame arrays have length ``T`` and are
indexed by 0-based clip frame; a writer maps these to each dataset's frame numbering (EPIC and Ego4D
frame numbers, HOI4D pickles) itself.

Units and frames: pixels are in the rendered image (x right, y down); the camera frame is OpenCV's
(x right, y down, z forward), metres; rotations are axis-angle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MASK_HAND, MASK_OBJECT = 1, 2  #: labels of :attr:`SynthClip.masks`


@dataclass
class SynthClip:
    clip_id: str                 #: unique within a generated dataset, e.g. "clip_0007"
    seed: int                    #: the seed this clip was rendered from (reproducible)
    fps: float                   #: frames per second the frames were rendered at
    frames: np.ndarray           #: (T, H, W, 3) uint8 RGB
    depth: np.ndarray | None     #: (T, H, W) float32 metres along the optical axis, or None
    K: np.ndarray                #: (3, 3) camera intrinsics for these frames
    # --- what happens
    task: str                    #: deft_core.tasks name ("pick_cup", ...) or "" for a non-task action
    verb: str                    #: narration verb, e.g. "pick up"
    noun: str                    #: grasped object's noun, e.g. "cup"
    narration: str               #: natural narration, e.g. "pick up the cup"
    object_kind: str             #: e.g. "cup"
    object_variant: str          #: e.g. "mug_red" (train/test variants of deft_core.world.objects)
    hand_side: str               #: "right" or "left" — the hand that acts
    has_contact: bool            #: False for clips where the hand never touches the object
    action_start: int            #: first frame of the annotated action
    action_end: int              #: last frame of the annotated action (inclusive)
    contact_frame: int | None    #: first frame where the acting hand touches the object (None if no contact)
    # --- per-frame ground truth (T rows); NaN rows where not visible / not applicable
    hand_boxes: np.ndarray       #: (T, 4) x1, y1, x2, y2 of the acting hand, px
    other_hand_boxes: np.ndarray  #: (T, 4) the other hand if visible, else NaN
    object_boxes: np.ndarray     #: (T, 4) the grasped object, px
    in_contact: np.ndarray       #: (T,) bool, acting hand touching the object
    contact_points: list         #: T entries, each (N_t, 2) px of true hand–object contact points (empty if none)
    mano_pose: np.ndarray        #: (T, 48): [0:3] wrist axis-angle in the camera frame, [3:48] 45-d MANO pose (flat-hand-mean), in the convention of the MANO model named by ``mano_pose_side``
    hand_trans: np.ndarray       #: (T, 3) wrist position in the camera frame, metres
    keypoints_2d: np.ndarray     #: (T, 21, 2) OpenPose-order hand keypoints, px
    camera_pose_world: np.ndarray  #: (T, 4, 4) T_world_camera (OpenCV camera axes)
    wrist_pose_world: np.ndarray   #: (T, 4, 4) T_world_wrist
    distractors: list = field(default_factory=list)  #: names of distractor objects in view
    extra: dict = field(default_factory=dict)         #: renderer-specific extras (lighting, textures, ...)
    #: (T, H, W) uint8 per-pixel labels from MuJoCo's segmentation render: 0 anything else, 1 the acting
    #: hand, 2 the target object (:data:`MASK_HAND`, :data:`MASK_OBJECT`); None where the renderer has none
    masks: np.ndarray | None = None

    @property
    def mano_pose_side(self) -> str:
        """Which MANO model (``"right"``/``"left"``) ``mano_pose`` is expressed in. The renderer poses a
        left hand with the left model (as HOI4D and FrankMocap report it) and says so in
        ``extra["mano_pose_side"]``; absent, the pose is in the right-hand convention.
        ``deft_core.mano.mirror_pose`` converts between the two."""
        return str(self.extra.get("mano_pose_side", "right"))

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])

    def validate(self) -> None:
        """Check shapes and internal consistency; raises ValueError naming the problem."""
        T = self.num_frames
        for name, shape in [("hand_boxes", (T, 4)), ("other_hand_boxes", (T, 4)), ("object_boxes", (T, 4)),
                            ("in_contact", (T,)), ("mano_pose", (T, 48)), ("hand_trans", (T, 3)),
                            ("keypoints_2d", (T, 21, 2)), ("camera_pose_world", (T, 4, 4)), ("wrist_pose_world", (T, 4, 4))]:
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"SynthClip {self.clip_id}: {name} has shape {np.shape(getattr(self, name))}, expected {shape}")
        if len(self.contact_points) != T:
            raise ValueError(f"SynthClip {self.clip_id}: contact_points has {len(self.contact_points)} entries for {T} frames")
        if self.depth is not None and self.depth.shape != self.frames.shape[:3]:
            raise ValueError(f"SynthClip {self.clip_id}: depth shape {self.depth.shape} != frames {self.frames.shape[:3]}")
        if self.masks is not None and self.masks.shape != self.frames.shape[:3]:
            raise ValueError(f"SynthClip {self.clip_id}: masks shape {self.masks.shape} != frames {self.frames.shape[:3]}")
        if not 0 <= self.action_start <= self.action_end < T:
            raise ValueError(f"SynthClip {self.clip_id}: action [{self.action_start}, {self.action_end}] outside 0..{T - 1}")
        if self.has_contact:
            if self.contact_frame is None or not self.action_start <= self.contact_frame <= self.action_end:
                raise ValueError(f"SynthClip {self.clip_id}: contact_frame {self.contact_frame} outside the action")
        elif self.contact_frame is not None:
            raise ValueError(f"SynthClip {self.clip_id}: has_contact is False but contact_frame is set")
        if self.hand_side not in ("right", "left"):
            raise ValueError(f"SynthClip {self.clip_id}: hand_side must be 'right' or 'left'")
