"""A small lazy dispatcher shared by the ``deft`` and ``deft-robot`` command lines.

Commands live in an explicit table of import strings (DESIGN.md §4: no registration by import side
effect). Only the module of the command being run is imported, so ``deft-robot --help`` stays fast and
never pulls in heavy packages. A command module provides::

    HELP = "one line shown in the command list"
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Mapping, Sequence


class CommandError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def int_at_least(minimum: int, what: str | None = None):
    """argparse ``type``: an integer >= ``minimum`` (refused with the flag's name by argparse); ``what``
    names it in the message (default "an integer >= minimum")."""
    what = what or f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
        return value

    parse.__name__ = f"int>={minimum}"
    return parse


def open_fraction(text: str) -> float:
    """argparse ``type``: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {value}")
    return value


#: argparse ``type`` for seeds: numpy's generators refuse negative seeds, and a run must not record a seed it
#: cannot use
seed_arg = int_at_least(0, "a non-negative integer")


def _usage(prog: str, description: str, commands: Mapping[str, tuple[str, str]]) -> str:
    width = max(len(n) for n in commands)
    lines = [f"usage: {prog} COMMAND [options]", "", description, "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in commands.items()]
    lines += ["", f"Run '{prog} COMMAND --help' for a command's options."]
    return "\n".join(lines)


def dispatch(prog: str, description: str, commands: Mapping[str, tuple[str, str]], argv: Sequence[str] | None = None) -> int:
    """Run the command named by the leading words of ``argv``.

    ``commands`` maps a command name (one or more space-separated words, e.g. ``"data synth"``) to
    ``(module import string, one-line help)``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    words: list[str] = []
    for token in argv:
        if token.startswith("-"):
            break
        words.append(token)
    match = None
    for n in range(len(words), 0, -1):
        name = " ".join(words[:n])
        if name in commands:
            match = name
            break
    if match is None:
        text = _usage(prog, description, commands)
        if not argv or argv[0] in ("-h", "--help", "help"):
            print(text)
            return 0
        print(f"{prog}: unknown command {' '.join(words) or argv[0]!r}\n\n{text}", file=sys.stderr)
        return 2
    module = importlib.import_module(commands[match][0])
    parser = argparse.ArgumentParser(prog=f"{prog} {match}", description=getattr(module, "__doc__", None),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    args = parser.parse_args(argv[len(match.split()):])
    import warnings

    # one line per warning, as the commands' own messages are ("warning: ..."), not Python's file:line +
    # source-line format
    warnings.formatwarning = lambda message, category, *rest, **kw: f"warning: {message}\n"
    try:
        return int(module.run(args) or 0)
    except CommandError as exc:
        print(f"{prog} {match}: error: {exc}", file=sys.stderr)
        return 2
    except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        # a path that cannot be used (an output under a file or onto a folder, no permission): the message
        # names it; without a path, or with DEFT_DEBUG=1, the traceback is the useful part
        if exc.filename is None or os.environ.get("DEFT_DEBUG"):
            raise
        paths = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        print(f"{prog} {match}: error: {paths}: {exc.strerror or type(exc).__name__} (DEFT_DEBUG=1 shows where)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{prog} {match}: interrupted", file=sys.stderr)
        return 130
