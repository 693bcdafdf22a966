"""Is a job's input or output on storage every node of the Ray cluster sees?

On a cluster of several machines the extraction actors read ``--root`` and write their shards to ``--out``
on whichever node they run, and Ray Train's workers read ``--shards`` and write checkpoints under
``--out`` on theirs. A path on one machine's own disk then silently splits the work: the other nodes find
no videos, or write shards to their own copy of ``--out`` that the driver's manifest never counts.
Ray cannot tell; neither can we for certain, so this only *warns*, when

- the work can run on another machine than the driver's: the cluster has more than one live node, or
  the driver's node has no CPUs (``cluster.yaml``'s head: every worker node comes later, on demand), and
- the path's filesystem (from ``/proc/mounts``, the longest mount point above it) is a local one (ext4,
  xfs, tmpfs, overlay, …). Network filesystems (NFS/EFS, Lustre, CephFS, SMB, FUSE mounts such as
  gcsfuse or s3fs) and types we do not know pass silently.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable

#: filesystems that live on one machine (a path on them differs from node to node)
LOCAL_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "tmpfs", "ramfs", "overlay",
                               "devtmpfs", "vfat", "exfat", "ntfs", "ntfs3", "squashfs", "jfs", "reiserfs"})


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash in paths as octal escapes (\\040 …)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def filesystem_of(path: str | Path, mounts: str | None = None) -> tuple[str, str] | None:
    """(mount point, filesystem type) holding ``path`` (symlinks in its existing part resolved),
    from ``mounts`` (the text of ``/proc/mounts``; read when None). None where there is no such table."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    p, rest = Path(os.path.abspath(path)), []
    try:
        while not p.exists() and p != p.parent:  # resolve the links of the part that exists; keep the rest
            p, rest = p.parent, [p.name] + rest
        target = str(p.resolve().joinpath(*rest))
    except OSError:  # e.g. a parent we may not read: no warning rather than a failed job
        return None
    best: tuple[str, str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point, fstype = _unescape(fields[1]), fields[2]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):  # the last of equal mounts wins, as in the kernel
            best = (point, fstype)
    return best


def work_leaves_this_node(ray: Any) -> str | None:
    """Why the job's actors or workers may run on another machine than this driver's, or None when the
    cluster is this one node (with CPUs)."""
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        here = ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - a warning helper must never stop the job
        return None
    if len(nodes) > 1:
        return f"this Ray cluster has {len(nodes)} live nodes"
    mine = next((n for n in nodes if n.get("NodeID") == here), None)
    if mine is not None and float((mine.get("Resources") or {}).get("CPU", 0)) == 0:
        return "this driver's node has no CPUs, so the work runs on worker nodes"
    return None


def unshared_paths_warning(ray: Any, paths: Iterable[tuple[str, str | Path]], mounts: str | None = None) -> str | None:
    """A warning naming the ``paths`` ((flag, path) pairs) that sit on a local filesystem while the work can
    run on other machines; None when there is nothing to say."""
    why = work_leaves_this_node(ray)
    if why is None:
        return None
    if mounts is None:  # once for all the paths
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    local = []
    for flag, path in paths:
        fs = filesystem_of(path, mounts)
        if fs is not None and fs[1] in LOCAL_FILESYSTEMS:
            local.append(f"{flag} {path} ({fs[1]} at {fs[0]})")
    if not local:
        return None
    return (f"warning: {why}, but {'; '.join(local)} {'is' if len(local) == 1 else 'are'} on this machine's own "
            "disk: work on the other nodes reads and writes its own copy of such a path (videos not found, shards "
            "and checkpoints this job never counts). Put inputs and outputs on storage every node mounts (NFS/EFS: "
            "cluster.yaml mounts /mnt/deft; docs/scale-out.md).")


def warn_unshared_paths(ray: Any, paths: Iterable[tuple[str, str | Path]]) -> None:
    """Print :func:`unshared_paths_warning`'s warning, if any, to stderr (the jobs' drivers, once Ray is up)."""
    warning = unshared_paths_warning(ray, paths)
    if warning:
        print(warning, file=sys.stderr, flush=True)
