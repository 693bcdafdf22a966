"""``deft``: data and model tools (synthetic datasets, inspection, extraction quality, model evaluation).

Examples::

    deft data synth ego4d --out data/synth/ego4d --clips 20 --seed 0
    deft data show data/synth/ego4d --out sheet.png
"""

from __future__ import annotations

import sys

from deft_core.cli_util import dispatch

#: command → (module, help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("pipelines.cli_demo", "run the whole chain on the embedded default world (what `make demo` runs)"),
    "data synth": ("pipelines.synth.cli_synth", "render a synthetic egocentric dataset in a real dataset's native layout"),
    "data show": ("pipelines.synth.cli_show", "draw a contact sheet of clips with their annotations"),
    "data trajectory": ("pipelines.cli_trajectory", "one human demo video → post-grasp trajectory τ (.npz)"),
    "data evaluate": ("pipelines.cli_evaluate", "extraction quality vs the synthetic ground truth (JSON + PNG)"),
    "model evaluate": ("pipelines.cli_model_evaluate", "evaluate an affordance checkpoint on shards (JSON vs baselines + heatmap PNG)"),
}


def _group_help(argv: list[str]) -> str | None:
    """The subcommand list of a command group (``deft data``, ``deft model``) when ``argv`` names the
    group alone, optionally with ``-h``/``--help``; ``None`` otherwise (the dispatcher handles it)."""
    words = []
    for token in argv:
        if token.startswith("-"):
            break
        words.append(token)
    rest = argv[len(words):]
    group = " ".join(words)
    subs = {name[len(group) + 1:]: help_ for name, (_, help_) in COMMANDS.items() if name.startswith(group + " ")}
    if not words or group in COMMANDS or not subs or rest[:1] not in ([], ["-h"], ["--help"]):
        return None
    width = max(len(n) for n in subs)
    lines = [f"usage: deft {group} COMMAND [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, help_ in subs.items()]
    lines += ["", f"Run 'deft {group} COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    text = _group_help(argv)
    if text is not None:  # `deft data --help`: the group's commands (the dispatcher knows only whole commands)
        print(text)
        return 0
    return dispatch("deft", "DEFT data and model tools.", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
