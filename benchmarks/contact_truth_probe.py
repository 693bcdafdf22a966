"""How far can image cues locate the true first-touch contacts of the synthetic data? Prints JSON.

The probes behind the numbers of docs/extraction-jobs.md ("Would a later truth frame help?", "Motion cues,
tried and not kept", "HOI4D in 3-D"); none is part of extraction.

    python benchmarks/contact_truth_probe.py frames --shards OUT --truth ROOT
        The extracted samples' centroid error (% of the crop side, at v1, as ``deft data evaluate``) against
        three truths: the contacts of the true contact frame (the evaluator's), of the first later frame
        where the true hand pose and wrist stop moving (the held grasp), and all contacts between the two.
    python benchmarks/contact_truth_probe.py cues --truth ROOT
        At the true contact frame with the true hand and object boxes (no extraction; % of the object
        box's longer side + 40 px, VRB's padding): the grasp centre on skin colour, the mean of the true
        thumb, index and middle fingertips, the oracle (the true keypoints nearest each true contact), the
        hand's leading edge (skin pixels newly covered since k frames earlier, inside the object box), its
        average with the grasp centre, the two true keypoints that moved most towards the object centre,
        and the best fixed true-keypoint subsets chosen on the same clips (optimistic by construction).
    python benchmarks/contact_truth_probe.py hoi4d-3d --truth ROOT
        HOI4D only, at the true contact frame, from what the dataset ships (the MANO fit, the 2Dseg masks, the
        depth video): the hand's 21 joints (forward kinematics of the fit) within 5, 10 or 20 mm of the closest
        any joint comes to the object's back-projected depth pixels, as seen or with the hidden side completed
        by mirroring the visible surface behind itself (:func:`_mirror_hidden_side`); the centroid of the
        selected joints' projections, or of the midpoints between them and their nearest object points;
        against what extraction uses (``contact_points_from_masks``) and the oracle. Same units as ``cues``.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

TIPS = [4, 8, 12]  # OpenPose order: thumb, index, middle fingertips


def held_grasp_frame(z: dict, c: int) -> int:
    """First frame >= ``c`` after which the true hand pose and wrist no longer move."""
    g, T = c, len(z["hand_pose"])
    while g + 1 < T and not (np.allclose(z["hand_pose"][g], z["hand_pose"][g + 1], atol=1e-6)
                             and np.allclose(z["wrist_pose_world"][g], z["wrist_pose_world"][g + 1], atol=1e-9)):
        g += 1
    return g


def probe_frames(shards: str | Path, truth_root: str | Path) -> dict:
    from pipelines import quality as Q

    truth = Q.load_truth(truth_root)
    rows, _ = Q.load_samples(shards)

    def in_v1(rec, z, t, first_frame):
        pts = z["contact_points"][z["contact_points_frame"] == t]
        return Q.true_points_in_v1(dict(rec, contact_frame_clip=t), z, first_frame) if len(pts) else pts

    out = defaultdict(list)
    for r in rows:
        rec = truth.get(r["sample_id"])
        if rec is None or not Q.is_valid(rec):
            continue
        z = dict(np.load(rec["_npz"]))
        to_px, side = Q.crop_frame(r["crop_box"])
        pred = to_px(r["contact_points"])
        c = rec["contact_frame_clip"]
        g = held_grasp_frame(z, c)
        first = in_v1(rec, z, c, r["first_frame"])
        if not len(first):
            continue
        held = in_v1(rec, z, g, r["first_frame"])
        union = np.concatenate([p for t in range(c, g + 1) if len(p := in_v1(rec, z, t, r["first_frame"]))])
        out["first_touch"].append(Q._centroid_error(pred, first, side))
        out["held_grasp"].append(Q._centroid_error(pred, held if len(held) else first, side))
        out["first_to_held_union"].append(Q._centroid_error(pred, union, side))
        out["true_contacts_first"].append(int((z["contact_points_frame"] == c).sum()))
        out["true_contacts_held"].append(int((z["contact_points_frame"] == g).sum()))
        out["held_lag_frames"].append(g - c)
    return {"shards": str(shards), "truth": str(truth_root), **{k: Q._stats(v) for k, v in out.items()}}


def probe_cues(truth_root: str | Path, ks=(2, 4)) -> dict:
    from deft_core.video import read_video
    from pipelines import quality as Q
    from pipelines.stages.contact_points import _box_mask, grasp_centre_points, separate_from_object, skin_mask
    from pipelines.synth.writers.groundtruth import load_clip_arrays, read_clip_records

    root = Path(truth_root)
    out, items = defaultdict(list), defaultdict(list)
    for rec in read_clip_records(root):
        if not Q.is_valid(rec):
            continue
        z = load_clip_arrays(root, rec["clip_id"])
        c = rec["contact_frame_clip"]
        tp, hb, ob = z["contact_points_per_frame"][c], z["hand_boxes"][c], z["object_boxes"][c]
        if len(tp) == 0 or c < max(ks) or not (np.isfinite(hb).all() and np.isfinite(ob).all()):
            continue
        side = float(max(ob[2] - ob[0], ob[3] - ob[1]) + 40)
        tc = tp.mean(0)

        def err(p):
            return float(100 * np.linalg.norm(np.asarray(p) - tc) / side)

        wanted = [rec["contact_frame"] - k for k in ks] + [rec["contact_frame"]]
        frames = read_video(root / rec["video_path"], indices=wanted)
        skin = separate_from_object(frames[-1], skin_mask(frames[-1]), hb, ob)
        gc = grasp_centre_points(skin, hb, ob)
        if gc is None:
            continue
        kp = z["keypoints_2d"][c]
        near = np.linalg.norm(kp[:, None] - tp[None], axis=2).min(1)
        out["grasp_centre"].append(err(gc.mean(0)))
        out["true_fingertips_3"].append(err(kp[TIPS].mean(0)))
        out["oracle_nearest_keypoints"].append(err(kp[np.argsort(near)[:len(tp)]].mean(0)))
        items[rec["object_kind"]].append((kp, tc, side))
        hbox, obox = _box_mask(skin.shape, hb), _box_mask(skin.shape, ob, grow=3)  # the truth's boxes are whole px
        oc = (ob[:2] + ob[2:]) / 2
        for k, prev in zip(ks, frames[:-1]):
            ys, xs = np.nonzero(skin & ~skin_mask(prev) & hbox & obox)
            lead = np.array([xs.mean(), ys.mean()]) if len(xs) >= 5 else None
            out[f"leading_edge_{k}"].append(None if lead is None else err(lead))
            mixed = gc.mean(0) if lead is None else (gc.mean(0) + lead) / 2
            out[f"leading_edge_{k}_with_grasp_centre"].append(err(mixed))
            gain = np.linalg.norm(z["keypoints_2d"][c - k] - oc, axis=1) - np.linalg.norm(kp - oc, axis=1)
            out[f"true_keypoints_moving_in_{k}"].append(err(kp[np.argsort(-gain)[:2]].mean(0)))

    def best(group, sizes):
        def score(sub):
            return float(np.median([100 * np.linalg.norm(kp[list(sub)].mean(0) - tc) / side for kp, tc, side in group]))

        scored = [(score(s), s) for r in sizes for s in itertools.combinations(range(21), r)]
        m, s = min(scored)
        return {"n": len(group), "median": m, "keypoints": list(s)}

    everything = [x for g in items.values() for x in g]
    return {"truth": str(root), **{k: Q._stats(v) for k, v in out.items()},
            "best_fixed_true_keypoints_all_kinds": best(everything, (1, 2, 3)) if everything else {"n": 0},
            "best_fixed_true_keypoints_per_kind": {kind: best(g, (1, 2)) for kind, g in sorted(items.items())}}


def _mirror_hidden_side(P: np.ndarray) -> np.ndarray:
    """The visible object points and their mirror images: reflected across the plane normal to the viewing
    ray that lies half an assumed object depth behind their centroid. The depth is 4 × the cloud's smaller
    standard deviation across the ray (about the visible width along that axis for an evenly seen surface)."""
    cv = P.mean(0)
    v = cv / np.linalg.norm(cv)
    Q = (P - cv) - np.outer((P - cv) @ v, v)
    ev = np.sqrt(np.clip(np.linalg.eigvalsh(np.cov(Q.T)), 0, None))
    ev = ev[ev > 1e-6]
    depth = 4 * ev.min() if ev.size else 0.02
    return np.vstack([P, P + 2 * np.outer((cv + v * depth / 2 - P) @ v, v)])


def probe_hoi4d_3d(truth_root: str | Path, tolerances=(0.005, 0.01, 0.02)) -> dict:
    from scipy.spatial import cKDTree

    from deft_core.geometry import deproject_pixel, project_points
    from deft_core.mano import mano_joint_positions
    from pipelines import quality as Q
    from pipelines.sources.base import open_source
    from pipelines.stages.contact_points import contact_points_from_masks
    from pipelines.stages.frame_masks import frame_masks

    truth = Q.load_truth(truth_root)
    out, skipped = defaultdict(list), defaultdict(int)
    for rec in open_source("hoi4d", str(truth_root)).records():
        t = truth.get(rec.sample_id)
        if t is None or not Q.is_valid(t):
            continue
        z = dict(np.load(t["_npz"]))
        c = t["contact_frame_clip"]
        tp = z["contact_points"][z["contact_points_frame"] == c]
        hb, ob = z["hand_boxes"][c], z["object_boxes"][c]
        if len(tp) == 0 or not (np.isfinite(ob).all() and np.isfinite(hb).all()):
            skipped["no true contact or box"] += 1
            continue
        m, why = frame_masks(rec, t["contact_frame"], (t["width"], t["height"]))
        if m is None or m.object is None or m.depth_m is None:
            skipped[why or m.note or "no object pixels"] += 1
            continue
        ys, xs = np.nonzero(m.object & (m.depth_m > 0))
        if len(xs) < 10:
            skipped["fewer than 10 object depth pixels"] += 1
            continue
        side = float(max(ob[2] - ob[0], ob[3] - ob[1]) + 40)
        tc = tp.mean(0)
        K = z["K"]

        def err(p):
            return float(100 * np.linalg.norm(np.asarray(p) - tc) / side)

        J = mano_joint_positions(np.concatenate([z["wrist_rotation"][c], z["hand_pose"][c]]).astype(float),
                                 z["hand_trans"][c].astype(float))
        uvJ = project_points(J, K)
        pts, how = contact_points_from_masks(m.hand, m.object, hb, ob, m.depth_m, m.K)
        out[f"extraction_{how}"].append(None if pts is None else err(pts.mean(0)))
        near = np.linalg.norm(uvJ[:, None] - tp[None], axis=2).min(1)
        out["oracle_nearest_joints"].append(err(uvJ[np.argsort(near)[:len(tp)]].mean(0)))
        P = deproject_pixel(np.stack([xs, ys], 1).astype(float), m.depth_m[ys, xs], K)
        for name, cloud in (("visible", P), ("mirrored", _mirror_hidden_side(P))):
            d, idx = cKDTree(cloud).query(J)
            for tol in tolerances:
                sel = d <= d.min() + tol
                mm = f"{round(tol * 1000)}mm"
                out[f"{name}_joints_{mm}"].append(err(uvJ[sel].mean(0)))
                out[f"{name}_midpoints_{mm}"].append(err(project_points((J[sel] + cloud[idx[sel]]) / 2, K).mean(0)))
    return {"truth": str(truth_root), "skipped": dict(skipped), **{k: Q._stats(v) for k, v in out.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="probe", required=True)
    f = sub.add_parser("frames", help="extracted samples against the first-touch, held-grasp and union truths")
    f.add_argument("--shards", required=True)
    f.add_argument("--truth", required=True)
    c = sub.add_parser("cues", help="image and keypoint cues at the true contact frame")
    c.add_argument("--truth", required=True)
    c.add_argument("--k", type=int, nargs="+", default=[2, 4], help="frames back for the motion cues")
    h = sub.add_parser("hoi4d-3d", help="HOI4D: the MANO fit's joints against the object's depth surface")
    h.add_argument("--truth", required=True)
    args = ap.parse_args(argv)
    if args.probe == "frames":
        res = probe_frames(args.shards, args.truth)
    elif args.probe == "cues":
        res = probe_cues(args.truth, tuple(args.k))
    else:
        res = probe_hoi4d_3d(args.truth)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
