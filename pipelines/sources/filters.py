"""Appendix D clip filters: sufficient length, right-hand grasps, language present.

Filters work on records lazily and count what each one removed (:class:`FilterStats`), so a job can
report "N clips read, k1 too short, k2 not right-handed, k3 without text". A clip is counted under the
first filter that removes it, in the order below.

``right_hand`` uses the metadata hint (:attr:`ClipRecord.hand_hint`): a clip whose annotation says the
acting hand is only the left one is removed; clips without a hint (EPIC-100, whose narrations do not
say) pass, and the contact-frame stage later requires a right hand in contact.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from pipelines.sources.base import ClipRecord


@dataclass
class FilterConfig:
    min_duration_s: float = 0.5       #: clips shorter than this (first → last frame) are removed
    min_frames: int = 8               #: ... and clips with fewer frames than this
    require_right_hand: bool = True
    require_text: bool = True


@dataclass
class FilterStats:
    read: int = 0
    kept: int = 0
    removed: Counter = field(default_factory=Counter)  #: filter name → clips removed by it

    def as_dict(self) -> dict:
        return {"read": self.read, "kept": self.kept, "removed": dict(self.removed)}


def reject_reason(record: ClipRecord, config: FilterConfig) -> str | None:
    """The name of the first filter that removes ``record``, or None when it is kept."""
    if record.num_frames < config.min_frames or record.duration_s < config.min_duration_s:
        return "too_short"
    if config.require_right_hand and record.hand_hint == "left":
        return "not_right_hand"
    if config.require_text and not (record.text or "").strip():
        return "no_text"
    return None


def apply_filters(records: Iterable[ClipRecord], config: FilterConfig | None = None,
                  stats: FilterStats | None = None) -> Iterator[ClipRecord]:
    """Yield the records that pass every filter; ``stats`` (if given) is updated as they stream."""
    config = config or FilterConfig()
    stats = stats if stats is not None else FilterStats()
    for r in records:
        stats.read += 1
        reason = reject_reason(r, config)
        if reason:
            stats.removed[reason] += 1
            continue
        stats.kept += 1
        yield r
