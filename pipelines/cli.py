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


def main(argv=None) -> int:
    return dispatch("deft", "DEFT data and model tools.", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
