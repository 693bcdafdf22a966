"""Terminal side of the lab robot for ``deft-robot finetune --robot CONFIG.yaml``: the operator's prompts
(:class:`robot.real_env.Operator` callbacks) and the object locator chosen on the command line.

CLI code (prints and reads stdin); library code gets these only as callbacks.
"""

from __future__ import annotations

import sys
from pathlib import Path

from deft_core.cli_util import CommandError

SEGMENTERS = ("text", "point", "operator")


def add_robot_arguments(parser) -> None:
    """Options that only matter with ``--robot CONFIG.yaml``."""
    g = parser.add_argument_group("lab robot (--robot CONFIG.yaml)")
    g.add_argument("--segmenter", choices=SEGMENTERS, default=None,
                   help="object box in I0: text (the default: OWL-ViT/OWLv2 from --object-prompt, optionally refined by "
                        "SAM), point (SAM at --box-point), operator (typed box). The operator's box is always the fallback")
    g.add_argument("--detector-weights", help="OWL-ViT/OWLv2 save_pretrained directory or cached hub id "
                                              "(default google/owlv2-base-patch16-ensemble from the HF cache)")
    g.add_argument("--sam-weights", help="Segment-Anything directory or cached hub id (point: required unless "
                                         "facebook/sam-vit-base is cached; text: optional box refinement)")
    g.add_argument("--object-prompt", help="text the detector looks for (default: the task's object, e.g. 'cup')")
    g.add_argument("--box-point", help="point segmenter's prompt pixel 'X,Y' in I0 (default: image centre)")


def warn_unused_robot_arguments(args) -> None:
    """In simulation the object box comes from the simulator's segmentation: say so when the lab-robot
    options were given (they used to be ignored without a word)."""
    given = [f"--{name.replace('_', '-')}" for name in ("segmenter", "detector_weights", "sam_weights", "object_prompt",
                                                        "box_point") if getattr(args, name, None)]
    if given:
        print(f"warning: {', '.join(given)} only matter on a lab robot (--robot CONFIG.yaml); ignored here",
              file=sys.stderr, flush=True)


def make_locator(args):
    """The :class:`robot.locate.ObjectLocator` of ``--segmenter`` (None for ``operator``)."""
    from deft_core.cli_util import CommandError

    segmenter = args.segmenter or "text"
    if segmenter == "operator":
        return None
    from robot.locate import make_locator as _make

    opts = {}
    if segmenter == "text":
        opts = {"weights": args.detector_weights, "sam_weights": args.sam_weights}
    else:
        opts = {"sam_weights": args.sam_weights}
        if args.box_point:
            try:
                opts["point"] = [float(v) for v in args.box_point.split(",")]
                if len(opts["point"]) != 2:
                    raise ValueError
            except ValueError:
                raise CommandError(f"--box-point must look like 320,240 (pixels), got {args.box_point!r}") from None
    try:
        return _make(segmenter, **opts)
    except (ImportError, FileNotFoundError, ValueError) as exc:
        raise CommandError(f"--segmenter {segmenter}: {exc} (or use --segmenter operator to type the boxes)") from None


class StdinClosed(CommandError):
    """Standard input closed while the operator was asked for ``what``; the message says how the command
    resumes (``deft-robot eval`` re-words it: its finished trials are kept in a partial log)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"standard input closed while waiting for {what}; the robot was left safe; re-run the "
                         "same command to resume from the log")
        self.what = what


def read_line(what: str) -> str:
    """One line from stdin; a closed stdin is a :class:`StdinClosed` :class:`CommandError` (the run resumes
    from its log)."""
    line = sys.stdin.readline()
    if not line:
        raise StdinClosed(what)
    return line


def confirm(message: str) -> None:
    print(f"{message} > ", end="", flush=True)
    read_line("the operator's Enter")


def make_ask_box(image_dir: Path):
    """``ask_box(image, reason)``: saves I0 as ``image_dir/box_request.png`` and reads 'x1 y1 x2 y2'
    (pixels) from the operator; an empty line means 're-capture'. Bad input is re-asked."""

    def ask_box(image, reason: str):
        import cv2

        from robot.locate import check_box

        image_dir.mkdir(parents=True, exist_ok=True)
        path = image_dir / "box_request.png"
        cv2.imwrite(str(path), image[:, :, ::-1])
        h, w = image.shape[:2]
        while True:
            print(f"{reason}. Open {path} ({w}x{h}) and type the object box 'x1 y1 x2 y2' in pixels, "
                  "or Enter to re-capture > ", end="", flush=True)
            text = read_line("the object box").replace(",", " ").split()
            if not text:
                return None
            try:
                return check_box([float(v) for v in text], w, h)
            except ValueError as exc:
                print(f"  {exc}", flush=True)

    return ask_box


def judge(task: str):
    """Evaluation trials: ask 'success? [y/n]' until answered; reward = 1 on success else 0."""
    from robot.tasks import OperatorOutcome

    while True:
        print(f"[{task}] did the trial succeed (Appendix F criterion)? [y/n] > ", end="", flush=True)
        answer = read_line("the trial outcome").strip().lower()
        if answer in ("y", "yes", "n", "no"):
            ok = answer.startswith("y")
            return OperatorOutcome(ok, 1.0 if ok else 0.0)
        print(f"  {answer!r}: type y or n", flush=True)


def make_operator(run_dir: Path, with_judge: bool = False):
    """Terminal :class:`robot.real_env.Operator`; ``with_judge`` for evaluation (asks each trial's outcome)."""
    from robot.real_env import Operator

    return Operator(confirm=confirm, ask_box=make_ask_box(run_dir), judge=judge if with_judge else None)
