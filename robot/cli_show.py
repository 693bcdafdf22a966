"""``deft-robot show``: a contact sheet of a fine-tuning run's episodes — each one's initial and final
image, reward, outcome and controller error, the elites framed in gold — or of an evaluation's trials
(deft_core.finetune.sheet).

Examples::

    deft-robot show --task pick_cup                                  # the task's DEFT run under runs/
    deft-robot show --task pick_cup --prior real-world-only --sort reward
    deft-robot show --task pick_cup --run runs/lab/pick_cup/affordance --png /tmp/pick_cup.png
    deft-robot show --task pick_cup --eval deft --objects test       # the DEFT policy's test trials
    deft-robot show --task pick_cup --eval affordance --objects test # the prior alone: the same scenes

``deft-robot finetune`` writes the run's sheet to ``<run>/episodes.png`` when a run finishes; ``show``
draws it for any run, a partial one (still running, or killed) included, with another order or size.
An evaluation's sheet goes to ``<run>/eval/<policy>_<objects>.png``, which ``deft-robot eval`` also
writes when it finishes; an evaluation stopped part-way or still running is drawn with its trials so far.
Trial images are kept since 2026-11-27: an evaluation made before has none (run it again — in simulation
it replays the same scenes — to see its trials).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "a contact sheet of a fine-tuning run's episodes or an evaluation's trials: images, rewards, outcomes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from deft_core.cli_util import int_at_least
    from deft_core.finetune.sheet import SORTS
    from robot.evaluation import EVAL_POLICIES

    parser.add_argument("--task", required=True, help="task name")
    parser.add_argument("--run", help="run directory (default: the task's only DEFT run under --out; with --eval "
                                      "real-world-only, that run)")
    parser.add_argument("--prior", help="pick the run by its name under OUT/<task>/ (e.g. real-world-only, oracle)")
    parser.add_argument("--out", default="runs", help="runs root (default runs/)")
    parser.add_argument("--eval", choices=EVAL_POLICIES, metavar="POLICY",
                        help="show this policy's evaluation trials instead of the fine-tuning episodes "
                             f"({', '.join(EVAL_POLICIES)})")
    parser.add_argument("--objects", choices=("train", "test"), default="train",
                        help="with --eval: which split's evaluation (default train)")
    parser.add_argument("--png", metavar="FILE", help="where to write the sheet (default <run>/episodes.png, or "
                                                      "<run>/eval/<policy>_<objects>.png; with --sort reward, "
                                                      "--max, --columns or --thumb: e.g. episodes-reward-max5.png)")
    parser.add_argument("--sort", choices=SORTS, default="episode",
                        help="episode: as run (default); reward: best first, CEM's order (void attempts last)")
    parser.add_argument("--columns", type=int_at_least(1),
                        help="tiles per row (default 5, or 4 when the tiles have the zoom around μ)")
    parser.add_argument("--thumb", type=int_at_least(16), default=150,
                        help="width of each image in pixels (default 150)")
    parser.add_argument("--max", type=int_at_least(1), dest="max_tiles",
                        help="draw only the first N tiles of the chosen order")


def run(args: argparse.Namespace) -> int:
    from deft_core.cli_util import CommandError
    from deft_core.finetune.sheet import SheetLayout
    from robot.cli_finetune import _check_task

    _check_task(args.task)
    if args.png and Path(args.png).suffix.lower() != ".png":
        raise CommandError(f"--png {args.png}: the sheet is written as PNG; give a file name ending in .png")
    layout = SheetLayout(thumb=args.thumb, columns=args.columns)
    png, counts, unreadable = (_show_trials if args.eval else _show_episodes)(args, layout)
    print(counts)
    if unreadable:
        shown = "; ".join(unreadable[:3]) + (f"; and {len(unreadable) - 3} more" if len(unreadable) > 3 else "")
        print(f"warning: {len(unreadable)} image(s) drawn grey — {shown}")
    print(f"wrote {png}")
    return 0


def _show_episodes(args, layout):
    from deft_core.cli_util import CommandError
    from deft_core.finetune.sheet import write_sheet
    from robot.runs import RunError, open_run_episodes

    try:
        rd, meta, records = open_run_episodes(args.out, args.task, args.run, args.prior)
    except RunError as exc:
        raise CommandError(str(exc)) from None
    if not records:
        raise CommandError(f"{rd.finetune_dir} has no episodes yet; nothing to show")
    png = Path(args.png) if args.png else _default_png(rd.sheet_png, args)
    unreadable = write_sheet(rd.finetune_dir, records, meta.elites, png, sort=args.sort, layout=layout,
                             max_tiles=args.max_tiles, title=f"{meta.task}: {rd.path.name} (seed {meta.seed})")
    ok = sum(r.status == "ok" for r in records)
    counts = f"{meta.task}: {ok} of {meta.episodes} episodes" + (
        f", {len(records) - ok} void attempt(s)" if len(records) > ok else "")
    return png, counts, unreadable


def _show_trials(args, layout):
    from deft_core.cli_util import CommandError
    from deft_core.finetune.sheet import save_sheet
    from robot.evaluation import load_eval, partial_path, partial_trials
    from robot.runs import RunError, resolve_run

    prior = args.prior or ("real-world-only" if args.eval == "real-world-only" and not args.run else None)
    try:
        rd = resolve_run(args.out, args.task, args.run, prior)
    except RunError as exc:
        raise CommandError(str(exc)) from None
    path = rd.eval_path(args.eval, args.objects)
    partial = partial_trials(path)
    if partial is not None:  # stopped part-way, or still running (a lab evaluation): the trials so far
        trials, total = partial
        if not trials:
            raise CommandError(f"the {args.eval} evaluation on {args.objects} objects has started but no trial has "
                               f"finished yet ({partial_path(path)})")
        doc = {"task": args.task, "policy": args.eval, "objects": args.objects, "per_trial": trials,
               "trials": len(trials), "successes": sum(bool(t.get("success")) for t in trials), "partial_of": total}
        print(f"the evaluation is not finished ({len(trials)} of {total or '?'} trials in {partial_path(path)}; "
              "the same 'deft-robot eval' command resumes it): showing the trials so far")
    elif not path.is_file():
        present = sorted(p.stem for p in (rd.path / "eval").glob("*.json"))
        raise CommandError(f"no evaluation {path}; evaluations in {rd.path}: {', '.join(present) or 'none'} "
                           f"(run 'deft-robot eval --task {args.task} --policy {args.eval} --objects {args.objects}')")
    else:
        try:
            doc = load_eval(path)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    trials = doc.get("per_trial") or []
    if not any(t.get("images") for t in trials):
        raise CommandError(f"{path} kept no trial images (evaluations made before 2026-11-27 did not); run its "
                           f"'deft-robot eval' command again to keep them (in simulation: the same scenes, the same "
                           f"results)")
    png = Path(args.png) if args.png else _default_png(path.with_suffix(".png"), args)
    try:
        sheet = trial_sheet(doc, path, sort=args.sort, layout=layout, max_tiles=args.max_tiles)
    except (KeyError, TypeError, ValueError) as exc:
        raise CommandError(f"{path}: a trial record is malformed ({exc!r})") from None
    counts = f"{args.task} {args.eval} [{args.objects}]: {doc['successes']} of {doc['trials']} trials succeeded"
    return png, counts, save_sheet(sheet, png)


def _default_png(standard: Path, args) -> Path:
    """``standard`` (the sheet finetune/eval write) for the default view; another view gets its own name
    (``episodes-reward-max5.png``), so the standard sheet — the one the report lists — is never replaced by a
    partial or reordered one."""
    parts = (["reward"] if args.sort != "episode" else []) + [f"{name}{value}" for name, value in (
        ("max", args.max_tiles), ("cols", args.columns), ("thumb", None if args.thumb == 150 else args.thumb)) if value]
    return standard.with_name(f"{standard.stem}-{'-'.join(parts)}.png") if parts else standard


def trial_sheet(doc: dict, path: Path, **kwargs):
    """The contact sheet (:class:`deft_core.finetune.sheet.Sheet`) of the evaluation ``doc`` read from
    ``path`` (``<run>/eval/<policy>_<objects>.json``); ``kwargs`` go to ``render_trials``."""
    from deft_core.finetune.sheet import render_trials

    so_far = f", {doc['trials']} of {doc['partial_of'] or '?'} trials so far" if "partial_of" in doc else ""
    title = (f"{doc['task']}: {doc['policy']} on {doc['objects']} objects ({Path(path).parent.parent.name}"
             + (f", eval seed {doc['eval_seed']}" if "eval_seed" in doc else "") + f"{so_far})")
    return render_trials(Path(path).parent, doc.get("per_trial") or [], title=title, **kwargs)
