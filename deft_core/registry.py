"""Name → ``"module:Class"`` tables of pluggable backends (DESIGN.md §4): one lookup for all of them.

Nothing is registered by import side effect; :func:`load_class` imports only the module of the backend it
is asked for, so optional heavy packages are touched only when that backend is chosen.
"""

from __future__ import annotations

import importlib
from typing import Mapping


def load_class(table: Mapping[str, str], name: str, what: str) -> type:
    """The class registered as ``name`` in ``table``; an unknown name raises ``ValueError("unknown {what}
    {name!r}; known: ...")`` listing the table's names."""
    try:
        module, cls = table[name].split(":")
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(table)}") from None
    return getattr(importlib.import_module(module), cls)


__all__ = ["load_class"]
