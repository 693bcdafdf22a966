"""Shard writer: Parquet shards of affordance samples, an errors table, a manifest, and resume.

Output layout::

    OUT/data/part-<hash>.parquet     affordance samples (deft_core.schema.AFFORDANCE_SCHEMA)
    OUT/errors/part-<hash>.parquet   one row per clip that failed a stage (ERRORS_SCHEMA: stage + error)
    OUT/manifest.json                counts, errors by stage, resolved config, versions, per-shard index

Idempotence and resume — designed so that many Ray Data workers can write concurrently:

- every file is named by a hash of *all* the sample ids of the batch that wrote it (samples and failures
  alike) and written atomically and durably (temporary file, fsync, ``os.replace``, fsync of the folder),
  so a batch that is written twice (a retried task) replaces its own files even when the retry's
  outcome differs (a clip that succeeded once and failed the second time is not left in both), and a
  killed writer or a power loss never leaves a partial file behind;
- a shard that cannot be read anyway (a disk that lost it) is renamed ``*.unreadable`` with a warning, so
  its clips count as not done and a re-run redoes them;
- :func:`done_ids` lists the sample ids already in ``data/`` and ``errors/``; :func:`pending` filters a
  record stream down to the unfinished ones, so a re-run completes a half-done run without duplicates;
- :func:`write_manifest` rescans the folder (it does not trust any one writer's memory) and reports
  duplicate ids if any ever appear.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from deft_core.schema import ERRORS_SCHEMA, MAPPING_NOT_RECORDED, rows_to_table, table_version
from deft_core.version import PIPELINE_VERSION, SCHEMA_VERSION

#: per-row provenance columns the manifest counts (``counts[<column>]``: value → samples; "not recorded"
#: for shards older than the column)
PROVENANCE_COLUMNS = ("contact_mapping", "contact_points_source")

DATA_DIR, ERRORS_DIR, MANIFEST = "data", "errors", "manifest.json"


def _ids_hash(ids: Iterable[str]) -> str:
    return hashlib.sha1("\n".join(sorted(ids)).encode()).hexdigest()[:20]


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    from deft_core.finetune.episode_log import fsync_dir

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _quarantine(path: Path, exc: Exception) -> None:
    """Move an unreadable shard aside (``<name>.unreadable``): its clips are then not done, and redone."""
    import logging

    bad = path.with_name(path.name + ".unreadable")
    logging.getLogger(__name__).warning("%s is not a readable Parquet shard (%s: %s); moved to %s, its clips "
                                        "will be extracted again", path, type(exc).__name__, exc, bad.name)
    os.replace(path, bad)


def error_shards(out: str | Path) -> list[Path]:
    """The errors table's files under ``out``, oldest first: a clip re-run with ``--retry-errors`` that
    failed again has a newer row, whose stage and reason are the ones that count."""
    return sorted((Path(out) / ERRORS_DIR).glob("part-*.parquet"), key=lambda p: (p.stat().st_mtime_ns, p.name))


def _read_ids(folder: Path) -> Iterator[tuple[Path, list[str]]]:
    if not folder.is_dir():
        return
    for p in sorted(folder.glob("part-*.parquet")):
        try:
            ids = pq.read_table(p, columns=["sample_id"]).column("sample_id").to_pylist()
        except (OSError, pa.ArrowException) as exc:  # e.g. zero bytes after a power loss
            _quarantine(p, exc)
            continue
        yield p, ids


def done_ids(out: str | Path, include_errors: bool = True) -> set[str]:
    """Sample ids already written under ``out`` (samples, and failed clips unless ``include_errors=False``)."""
    out = Path(out)
    ids = {i for _, chunk in _read_ids(out / DATA_DIR) for i in chunk}
    if include_errors:
        ids |= {i for _, chunk in _read_ids(out / ERRORS_DIR) for i in chunk}
    return ids


def pending(records: Iterable, out: str | Path, retry_errors: bool = False) -> Iterator:
    """Records (objects with ``.sample_id`` or dicts with ``"sample_id"``) not yet finished under ``out``."""
    finished = done_ids(out, include_errors=not retry_errors)
    for r in records:
        sid = r["sample_id"] if isinstance(r, Mapping) else r.sample_id
        if sid not in finished:
            finished.add(sid)  # a source that lists a clip twice still gets it extracted once
            yield r


def error_row(sample_id: str, dataset: str, video_id: str, stage: str, error: str) -> dict[str, str]:
    return {"sample_id": sample_id, "dataset": dataset, "video_id": video_id, "stage": stage,
            "error": str(error)[:2000], "pipeline_version": PIPELINE_VERSION}


def write_batch(out: str | Path, rows: list[Mapping[str, Any]], errors: list[Mapping[str, Any]] = (),
                max_rows_per_shard: int = 256) -> list[Path]:
    """Write one batch of samples and errors (idempotent: the file names derive from the sample ids).

    Samples are validated against the schema (:func:`deft_core.schema.rows_to_table`) and split into
    shards of at most ``max_rows_per_shard`` rows. Returns the files written.
    """
    out = Path(out)
    written = []
    rows = sorted(rows, key=lambda r: r["sample_id"])
    key = _ids_hash([r["sample_id"] for r in rows] + [e["sample_id"] for e in errors])  # the whole batch
    for n, i in enumerate(range(0, len(rows), max_rows_per_shard)):
        chunk = rows[i:i + max_rows_per_shard]
        path = out / DATA_DIR / f"part-{key}-{n:04d}.parquet"
        _atomic_write_table(rows_to_table(chunk), path)
        written.append(path)
    if errors:
        errs = sorted(({**{"pipeline_version": PIPELINE_VERSION}, **dict(e)} for e in errors), key=lambda e: e["sample_id"])
        errs = [{f.name: str(e.get(f.name, "")) for f in ERRORS_SCHEMA} for e in errs]
        path = out / ERRORS_DIR / f"part-{key}.parquet"
        _atomic_write_table(pa.Table.from_pylist(errs, schema=ERRORS_SCHEMA), path)
        written.append(path)
    # an earlier attempt at this very batch (a retried task) with another outcome: its other files go
    for folder in (out / DATA_DIR, out / ERRORS_DIR):
        for stale in folder.glob(f"part-{key}*.parquet") if folder.is_dir() else ():
            if stale not in written:
                stale.unlink(missing_ok=True)
    return written


class ShardWriter:
    """Buffered single-process writer: ``add_row`` / ``add_error``, flushed every ``max_rows_per_shard``
    samples (and at :meth:`close`). Use :func:`write_batch` directly from parallel workers."""

    def __init__(self, out: str | Path, max_rows_per_shard: int = 256):
        self.out = Path(out)
        self.max_rows = max_rows_per_shard
        self.rows: list[Mapping[str, Any]] = []
        self.errors: list[Mapping[str, Any]] = []

    def add_row(self, row: Mapping[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.max_rows:
            self.flush()

    def add_error(self, err: Mapping[str, Any]) -> None:
        self.errors.append(err)
        if len(self.errors) >= self.max_rows:
            self.flush()

    def flush(self) -> None:
        if self.rows or self.errors:
            write_batch(self.out, self.rows, self.errors, self.max_rows)
        self.rows, self.errors = [], []

    def close(self) -> None:
        self.flush()


def source_identity(root: str | Path | None) -> dict:
    """What an extraction read, for its manifest: the input root, and for a synthetic dataset (a
    ``_groundtruth/manifest.json`` at the root) its dataset, seed and clip count, which tell one synthesis
    from another with the same clip ids (``deft data evaluate`` compares them with the truth it is given)."""
    if root is None:
        return {}
    root = Path(root).resolve()
    ident: dict = {"root": str(root)}
    try:
        m = json.loads((root / "_groundtruth" / "manifest.json").read_text())
    except (OSError, ValueError):
        return ident
    if isinstance(m, dict):
        ident["synthetic"] = {k: m.get(k) for k in ("dataset", "seed", "num_clips")}
    return ident


#: backend options that name a place or a device, not a setting: they may differ between machines or nodes
#: of the same extraction (a FrankMocap checkout, a MediaPipe bundle path, cuda vs cpu)
LOCAL_OPTIONS = frozenset({"device", "checkout", "model_path", "weights", "sam_weights"})


def _comparable(config: Mapping[str, Any]) -> dict:
    """An extraction config as the manifest stores it, less what does not change the samples: options
    naming a path or device (:data:`LOCAL_OPTIONS`); the hand-pose backend resolved (HOI4D's default
    named or not); fields an older manifest lacks taken at their defaults, except ``use_masks``: a HOI4D
    manifest without it was made with skin colour (``False``)."""
    from pipelines.stages.process import ExtractConfig

    c = json.loads(json.dumps(dict(config), default=str))
    try:
        defaults = json.loads(json.dumps(ExtractConfig(dataset=c.get("dataset", "")).as_dict(), default=str))
    except TypeError:
        defaults = {}
    c = {**defaults, **c}
    if "use_masks" not in config:  # a manifest from before pipeline 0.2.0: its HOI4D points came from skin colour
        c["use_masks"] = False
    if c.get("dataset") != "hoi4d":  # only HOI4D has masks: the setting changes no other dataset's samples
        c.pop("use_masks", None)
    for key in ("hand_pose_options", "text_encoder_options", "detector_options"):
        c[key] = {k: v for k, v in (c.get(key) or {}).items() if k not in LOCAL_OPTIONS}
    if c.get("hand_pose_backend") is None and c.get("dataset") == "hoi4d":
        c["hand_pose_backend"] = "hoi4d"
    return c


def check_resumable(out: str | Path, config: Mapping[str, Any], source: Mapping[str, Any]) -> None:
    """Refuse (ValueError) to add samples to an extraction output made with other settings or from another
    synthesis: the finished clips would be skipped and the manifest would then claim settings most of its
    samples were not made with. Nothing to check for a new output or one without a readable manifest.
    The jobs write a first manifest before any shard (:func:`begin_manifest`), so a killed run is checked too."""
    try:
        m = json.loads((Path(out) / MANIFEST).read_text())
    except (OSError, ValueError):
        return
    if not isinstance(m, dict):
        return
    old, new = _comparable(m.get("config") or {}), _comparable(config)
    problems = [f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    was, now = (m.get("source") or {}).get("synthetic"), source.get("synthetic")
    if was and now and was != now:
        problems.append(f"input: synthetic {was} there, {now} now")
    if problems:
        raise ValueError(f"--out {out} holds an extraction made with other settings or data ({'; '.join(problems)}); "
                         "use another --out, or the same settings to resume it")


def begin_manifest(out: str | Path, config: Mapping[str, Any], source: Mapping[str, Any]) -> None:
    """Before the first shard of a new output: a manifest with the config and the source (counts 0), so
    that a run killed before its final manifest is still checked on resume (:func:`check_resumable`)."""
    if not (Path(out) / MANIFEST).is_file():
        write_manifest(out, config, {"source": dict(source), "started": True})


def write_manifest(out: str | Path, config: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> dict:
    """Scan ``out`` and write ``manifest.json``: counts, errors by stage, config, versions, shard index."""
    out = Path(out)
    shards, ids, dup = [], set(), 0
    provenance = {col: Counter() for col in PROVENANCE_COLUMNS}
    data = out / DATA_DIR
    for p in sorted(data.glob("part-*.parquet")) if data.is_dir() else ():
        # one open per shard: the footer gives the version, one read gives the ids and the provenance columns
        try:
            pf = pq.ParquetFile(p)
            schema = pf.schema_arrow
            present = [c for c in PROVENANCE_COLUMNS if c in schema.names]  # added in schema versions 2 and 3
            t = pf.read(columns=["sample_id", *present])
        except (OSError, pa.ArrowException) as exc:
            _quarantine(p, exc)
            continue
        chunk = t.column("sample_id").to_pylist()
        shards.append({"file": f"{DATA_DIR}/{p.name}", "rows": len(chunk), "schema_version": table_version(schema)})
        dup += sum(1 for i in chunk if i in ids)
        ids.update(chunk)
        for col, counter in provenance.items():
            values = t.column(col).to_pylist() if col in present else [None] * len(chunk)
            counter.update(MAPPING_NOT_RECORDED if v is None else str(v) for v in values)
    by_stage: Counter = Counter()
    error_files, err_ids = [], set()
    if (out / ERRORS_DIR).is_dir():
        for p in reversed(error_shards(out)):  # newest first: the first row seen of a clip is its latest
            try:
                t = pq.read_table(p, columns=["sample_id", "stage"])
            except (OSError, pa.ArrowException) as exc:
                _quarantine(p, exc)
                continue
            error_files.append({"file": f"{ERRORS_DIR}/{p.name}", "rows": t.num_rows})
            for sid, stage in zip(t.column("sample_id").to_pylist(), t.column("stage").to_pylist()):
                if sid not in err_ids and sid not in ids:  # a retried clip that now succeeded is not an error
                    err_ids.add(sid)
                    by_stage[stage] += 1
        error_files.sort(key=lambda f: f["file"])
    manifest = {
        "schema_version": SCHEMA_VERSION, "pipeline_version": PIPELINE_VERSION,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": {"samples": len(ids), "errors": len(err_ids), "errors_by_stage": dict(by_stage),
                   "duplicate_sample_rows": dup, **{col: dict(c) for col, c in provenance.items()}},
        "config": dict(config or {}), "shards": shards, "error_files": error_files, **dict(extra or {}),
    }
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    os.replace(tmp, out / MANIFEST)
    return manifest
