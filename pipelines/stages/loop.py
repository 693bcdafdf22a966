"""The plain single-process extraction loop (the reference the Ray jobs are compared against).

``run_local(source, out, config)``: records → Appendix D filters → ``limit`` → skip finished ids
(resume) → :class:`~pipelines.stages.process.ClipProcessor` in batches → shards + errors → manifest.
Source rows that could not be parsed are written to the errors table with stage ``source``.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from pipelines.sources.base import Source
from pipelines.sources.filters import FilterConfig, FilterStats, apply_filters
from pipelines.stages.process import ClipProcessor, ExtractConfig
from pipelines.stages.writer import (begin_manifest, check_resumable, done_ids, error_row, pending, source_identity, write_batch,
                                     write_manifest)


def run_local(source: Source, out: str | Path, config: ExtractConfig, filters: FilterConfig | None = None,
              limit: int | None = None, batch_size: int = 16, max_rows_per_shard: int = 256,
              processor: ClipProcessor | None = None, progress: bool = False) -> dict[str, Any]:
    """Extract ``source`` into ``out`` (resumable). Returns the manifest dict (also in OUT/manifest.json)."""
    out = Path(out)
    provenance = source_identity(getattr(source, "root", None))
    check_resumable(out, config.as_dict(), provenance)
    begin_manifest(out, config.as_dict(), provenance)
    stats = FilterStats()
    records = apply_filters(source.records(), filters or FilterConfig(), stats)
    if limit is not None:
        records = itertools.islice(records, limit)
    todo = pending(records, out)
    processor = processor or ClipProcessor(config)
    t0, n_done = time.perf_counter(), 0
    bar = None
    if progress:
        from rich.progress import Progress
        bar = Progress(transient=False)
        bar.start()
        task = bar.add_task(f"extract {config.dataset}", total=None)
    try:
        while True:
            batch = list(itertools.islice(todo, batch_size))
            if not batch:
                break
            rows, errors = processor.process_many(batch)
            write_batch(out, rows, errors, max_rows_per_shard)
            n_done += len(batch)
            if bar is not None:
                bar.update(task, advance=len(batch))
    finally:
        if bar is not None:
            bar.stop()
    finished = done_ids(out)
    bad = [dict(e, pipeline_version=e.get("pipeline_version", "")) for e in getattr(source, "bad_rows", [])
           if e["sample_id"] not in finished]
    if bad:
        write_batch(out, [], [error_row(**{k: e[k] for k in ("sample_id", "dataset", "video_id", "stage", "error")}) for e in bad])
    elapsed = time.perf_counter() - t0
    extra = {"filters": stats.as_dict(), "source_skipped": dict(getattr(source, "skipped", {}) or {}),
             "this_run": {"clips_processed": n_done, "seconds": round(elapsed, 3),
                          "clips_per_s": round(n_done / elapsed, 3) if elapsed > 0 else None},
             "source": provenance}
    return write_manifest(out, config.as_dict(), extra)
