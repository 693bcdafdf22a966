"""A fast stand-in for ``pipelines.synth.render``: coloured rectangles, fully consistent ground truth.

Used only by the writer tests, so that format tests run in seconds without MuJoCo. A skin-coloured
"hand" rectangle moves towards an object rectangle, touches it at ``contact_frame`` and carries it;
every SynthClip field is filled and ``validate()`` passes.
"""

from __future__ import annotations

import numpy as np

from deft_core.tasks import get_task
from pipelines.synth.clip import MASK_HAND, MASK_OBJECT, SynthClip

_OBJ_COLOURS = {"train": [(200, 40, 40), (40, 160, 60)], "test": [(40, 60, 200), (200, 180, 40)]}


def fake_render_clip(*, clip_id: str, seed: int, fps: float, width: int, height: int, task: str,
                     hand_side: str = "right", has_contact: bool = True, with_depth: bool = False,
                     duration_s: float | None = None, object_split: str = "train") -> SynthClip:
    spec = get_task(task)
    rng = np.random.default_rng(seed)
    T = max(8, int(round((duration_s or 1.0) * fps)))
    W, H = width, height
    bg = rng.integers(90, 140, size=3)
    frames = np.empty((T, H, W, 3), np.uint8)
    frames[:] = bg.astype(np.uint8)
    masks = np.zeros((T, H, W), np.uint8)  # what each pixel shows, as the renderer's segmentation says
    ow, oh = 0.16 * W, 0.28 * H
    ox, oy = rng.uniform(0.45, 0.6) * W, rng.uniform(0.35, 0.5) * H
    hw, hh = 0.14 * W, 0.3 * H
    start = np.array([0.05 * W if hand_side == "right" else 0.8 * W, 0.65 * H])
    touch = np.array([ox - hw * 0.6, oy]) if hand_side == "right" else np.array([ox + ow - hw * 0.4, oy])
    action_start = T // 6
    contact = int(T * 0.45) if has_contact else None
    action_end = T - 2
    hand_boxes = np.zeros((T, 4))
    obj_boxes = np.zeros((T, 4))
    in_contact = np.zeros(T, bool)
    cps, mano, trans, kps = [], np.zeros((T, 48)), np.zeros((T, 3)), np.zeros((T, 21, 2))
    cam = np.tile(np.eye(4), (T, 1, 1))
    wrist = np.tile(np.eye(4), (T, 1, 1))
    colour = _OBJ_COLOURS[object_split][seed % 2]
    shift = rng.uniform(-0.3, 0.3)  # camera pan, px per frame
    for t in range(T):
        if contact is not None and t >= contact:
            lift = (t - contact) * 0.004 * H
            hp = touch - [0, lift]
            op = np.array([ox, oy - lift])
            in_contact[t] = True
        else:
            a = min(1.0, t / (contact if contact else T * 0.45)) * (1.0 if has_contact else 0.7)
            hp = start + (touch - start) * a
            op = np.array([ox, oy])
        pan = shift * t
        hb = np.array([hp[0] + pan, hp[1] - hh / 2, hp[0] + pan + hw, hp[1] + hh / 2])
        ob = np.array([op[0] + pan, op[1] - oh / 2, op[0] + pan + ow, op[1] + oh / 2])
        hand_boxes[t], obj_boxes[t] = np.clip(hb, 0, [W - 1, H - 1] * 2), np.clip(ob, 0, [W - 1, H - 1] * 2)
        x1, y1, x2, y2 = obj_boxes[t].astype(int)
        frames[t, y1:y2, x1:x2] = colour
        masks[t, y1:y2, x1:x2] = MASK_OBJECT
        x1, y1, x2, y2 = hand_boxes[t].astype(int)
        frames[t, y1:y2, x1:x2] = (224, 172, 138)
        masks[t, y1:y2, x1:x2] = MASK_HAND
        if in_contact[t]:
            edge = ob[0] if hand_side == "right" else ob[2]
            ys = np.linspace(ob[1] + 0.3 * oh, ob[1] + 0.7 * oh, 5)
            cps.append(np.stack([np.full(5, edge), ys], 1))
        else:
            cps.append(np.zeros((0, 2)))
        mano[t, :3] = [0.1 * np.sin(t / 10), 0.2, -0.1]
        mano[t, 3:] = np.linspace(0, 0.6, 45) * (1.0 if in_contact[t] else 0.3)
        trans[t] = [(hb[0] - W / 2) / W * 0.4, (hb[1] - H / 2) / H * 0.3, 0.45]
        kps[t] = np.stack([np.linspace(hb[0], hb[2], 21), np.linspace(hb[3], hb[1], 21)], 1)
        cam[t, 0, 3] = 0.001 * t
        wrist[t, :3, 3] = trans[t]
    depth = np.full((T, H, W), 0.6, np.float32) if with_depth else None
    K = np.array([[0.9 * W, 0, W / 2], [0, 0.9 * W, H / 2], [0, 0, 1.0]])
    clip = SynthClip(
        clip_id=clip_id, seed=seed, fps=fps, frames=frames, depth=depth, K=K, task=task, verb=spec.verb,
        noun=spec.noun, narration=spec.text, object_kind=spec.object_kind,
        object_variant=f"{spec.object_kind}_{object_split}_{seed % 2}", hand_side=hand_side,
        has_contact=has_contact, action_start=action_start, action_end=action_end, contact_frame=contact,
        hand_boxes=hand_boxes, other_hand_boxes=np.full((T, 4), np.nan), object_boxes=obj_boxes,
        in_contact=in_contact, contact_points=cps, mano_pose=mano, hand_trans=trans, keypoints_2d=kps,
        camera_pose_world=cam, wrist_pose_world=wrist, distractors=[], extra={"fake": True}, masks=masks)
    clip.validate()
    return clip


def fake_render_demo(task: str, *, seed: int, fps: float, width: int, height: int) -> SynthClip:
    return fake_render_clip(clip_id=f"demo_{task}", seed=seed, fps=fps, width=width, height=height, task=task,
                            duration_s=1.0)
