"""Extract epic_kitchens into versioned Parquet affordance shards (Ray Data).

    ray job submit --working-dir . -- python jobs/extract_epic_kitchens.py --root /data/epic_kitchens --out /data/shards/epic_kitchens
    python jobs/extract_epic_kitchens.py --root DIR --out DIR [--hand-pose mediapipe] [--limit N] [--concurrency 2]

Re-running with the same --out resumes (finished and failed clips are skipped; --retry-errors
processes the failed ones again, e.g. once missing files arrived). Wiring only: see
jobs/_extract_common.py and docs/extraction-jobs.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a --working-dir checkout

from jobs._extract_common import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("epic_kitchens", __doc__))
