"""Draw a contact sheet of a generated (or real) dataset's clips with their annotations.

Example::

    deft data show data/synth/epic --out sheet.png --clips 4

The dataset type is detected from the layout and read back from its native files. Each row is one
clip: frames before, at and after the annotated contact frame, with hand boxes (green), object boxes
(red), HOI4D hand keypoints (cyan) and, when the ground-truth sidecar is present, the true contact
points (yellow). The contact frame has a magenta border.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deft_core.cli_util import CommandError

HELP = "draw a contact sheet of clips with their annotations"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="dataset root written by 'deft data synth'")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--clips", type=int, default=4, help="number of clips (rows), default 4")
    parser.add_argument("--step", type=_positive_seconds, default=0.3, help="seconds between columns, default 0.3")


def _positive_seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not v > 0 or v != v:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return v


def _truth_points(root: Path, actions) -> dict[str, tuple[int, list]]:
    """annotation_id → (frame offset, per-clip-frame true contact points) from the sidecar, if present."""
    from pipelines.synth.writers.groundtruth import SIDECAR_DIR, load_clip_arrays, read_clip_records

    if not (root / SIDECAR_DIR / "clips.jsonl").is_file():
        return {}
    recs = {r["annotation_id"]: r for r in read_clip_records(root)}
    out = {}
    for a in actions:
        r = recs.get(a.annotation_id)
        if r is not None:
            # dataset frame number → 0-based video index: EPIC numbers frames from 1
            base = r["frame_offset"] - (1 if r["dataset"] == "epic_kitchens" else 0)
            out[a.annotation_id] = (base, load_clip_arrays(root, r["clip_id"])["contact_points_per_frame"])
    return out


def _draw(img: np.ndarray, action, idx: int, truth, is_contact: bool) -> np.ndarray:
    import cv2

    img = np.ascontiguousarray(img[:, :, ::-1])  # BGR for OpenCV
    for x1, y1, x2, y2, label in action.hands.get(idx, []):
        cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), (0, 220, 0), 1)
        cv2.putText(img, str(label), (int(x1), max(8, int(y1) - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 220, 0), 1)
    for x1, y1, x2, y2, label in action.objects.get(idx, []):
        cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), (0, 0, 230), 1)
        cv2.putText(img, str(label), (int(x1), max(8, int(y1) - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 230), 1)
    if idx in action.keypoints:
        for x, y in action.keypoints[idx]:
            cv2.circle(img, (int(x), int(y)), 1, (255, 255, 0), -1)
    if truth is not None:
        base, pts = truth
        t = idx - base
        if 0 <= t < len(pts):
            for x, y in pts[t]:
                cv2.circle(img, (int(x), int(y)), 2, (0, 255, 255), -1)
    if is_contact:
        cv2.rectangle(img, (0, 0), (img.shape[1] - 1, img.shape[0] - 1), (255, 0, 255), 3)
    cv2.putText(img, f"f{idx}{' CONTACT' if is_contact else ''}", (4, img.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX,
                0.4, (255, 255, 255), 1)
    return img


def run(args: argparse.Namespace) -> int:
    if Path(args.out).suffix.lower() not in (".png", ".jpg", ".jpeg"):  # cv2 picks the format from it
        raise CommandError(f"--out {args.out}: give an image file name ending in .png or .jpg")
    import cv2

    from deft_core.video import read_video
    from pipelines.synth.writers.readback import ReadbackError, detect_dataset, read_actions

    root = Path(args.root)
    if not root.is_dir():
        raise CommandError(f"{root} is not a directory")
    if args.clips < 1:
        raise CommandError(f"--clips must be at least 1, got {args.clips}")
    try:
        dataset = detect_dataset(root)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    problems: list[str] = []
    try:
        actions = read_actions(root, problems)
    except ReadbackError as exc:
        raise CommandError(str(exc)) from None
    truth = _truth_points(root, actions)
    rows = []
    for a in actions:
        if len(rows) == args.clips:
            break
        d = max(1, int(round(args.step * a.fps)))
        idxs = [a.contact_index + k * d for k in (-2, -1, 0, 1)]
        if a.dataset == "ego4d":  # boxes exist only at the critical frames
            idxs = sorted(set(a.hands) | set(a.objects))[-5:] or idxs
        try:
            frames = read_video(a.video, indices=[max(0, i) for i in idxs])
        except Exception as exc:  # noqa: BLE001 - broken inputs are reported, not fatal
            problems.append(f"{a.video}: {type(exc).__name__}: {exc}")
            continue
        tiles = [_draw(f, a, max(0, i), truth.get(a.annotation_id), max(0, i) == a.contact_index) for f, i in zip(frames, idxs)]
        while len(tiles) < 5:
            tiles.append(np.zeros_like(tiles[0]))
        row = np.concatenate(tiles[:5], axis=1)
        label = np.zeros((18, row.shape[1], 3), np.uint8)
        cv2.putText(label, f"{a.annotation_id}: {a.text}"[:120], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        rows.append(np.concatenate([label, row], axis=0))
    if not rows:
        raise CommandError(f"{root}: no readable clip with a contact frame ({len(problems)} problems: {problems[:3]})")
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), sheet):
        raise CommandError(f"could not write {out}")
    print(f"{dataset}: {len(rows)} clips drawn to {out} ({len(actions)} readable actions, {len(problems)} problems)")
    for p in problems[:10]:
        print(f"  problem: {p}")
    return 0
