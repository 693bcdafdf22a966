"""Contact sheets: what a fine-tuning run's episodes, or an evaluation's trials, did — each one's initial
and final image side by side with its reward, outcome and what went wrong — so that a person can look
instead of reading ``episodes.jsonl``.

One tile per episode attempt (or trial), in order (or best reward first): the initial image I₀ on the
left — with the prior's contact μ (a cyan ring) and the executed one (a magenta dot), and a middle panel
enlarging I₀ around them, when the camera was kept — the final image on the right, and under them
``k 7 · r 0.43 · failure · elite`` and, when there was one, the controller error. The frame's colour is
the outcome: green success, red failure, blue scored by an operator (no success flag), grey void
(redone). On a run's sheet a gold outer frame marks the top-E episodes, the elites Ω — the ones D was
last refit to, in CEM's order and tie rule (the cVAE distils the top 10: the same episodes with Table
4's E = 10).

Images that are missing or unreadable (a run copied without its ``images/``, a damaged PNG) become a
grey placeholder naming the problem: the sheet is a view, it never stops on one bad file. Written with
Pillow (a matplotlib dependency); nothing here imports MuJoCo or torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from deft_core.finetune.cem import elite_indices
from deft_core.finetune.episode_log import EpisodeRecord
from deft_core.finetune.sheet_panels import EXECUTED_MU, PRIOR_MU, fit_text, tile_panels
from deft_core.finetune.sheet_panels import font as sheet_font

#: frame colours (RGB)
SUCCESS = (46, 125, 50)
FAILURE = (198, 40, 40)
SCORED = (30, 90, 180)  # operator scores: no success flag
VOID = (150, 150, 150)
ELITE = (230, 170, 0)
BACKGROUND = (255, 255, 255)
SORTS = ("episode", "reward")


@dataclass
class Sheet:
    """A drawn sheet: ``image`` (PIL, RGB); ``tiles``: per drawn tile ``(number, attempt, (x, y, w, h))`` —
    episode and attempt, or trial and 0 — with the tile's box in pixels, in drawing order; ``unreadable``:
    the images drawn as grey placeholders, e.g. ``"k 3 final: no such file images/k0003_a0_final.png"``."""

    image: object
    tiles: list[tuple[int, int, tuple[int, int, int, int]]]
    unreadable: list[str]


@dataclass
class Tile:
    """What one tile shows, from an episode (:func:`episode_tiles`) or an evaluation trial
    (:func:`trial_tiles`): ``label`` ("k 7", "k 3 (try 2)", "trial 4"), ``status`` ("ok"/"void"),
    ``reward``, ``success`` (None: an operator's score), ``note`` (the controller error or why the attempt
    was void), ``images`` (initial/final names relative to the sheet's folder), ``camera`` (I₀'s ``K`` and
    ``T_base_camera``, or None), prior ``xi`` and ``executed`` grasp (22 each), ``elite``."""

    number: int
    attempt: int
    label: str
    status: str
    reward: float | None
    success: bool | None
    note: str | None
    images: dict
    camera: dict | None
    xi: Sequence[float]
    executed: Sequence[float]
    elite: bool = False


@dataclass(frozen=True)
class SheetLayout:
    """Sizes in pixels: ``thumb`` is each image's width (height follows the image's aspect ratio)."""

    thumb: int = 150
    columns: int | None = None  #: tiles per row; None: 5 of two images, 4 of three (with the zoom)
    frame: int = 4
    elite_frame: int = 4
    gap: int = 10
    caption_lines: int = 2
    font_size: int = 13

    def __post_init__(self) -> None:
        for name in ("thumb", "columns", "font_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"SheetLayout.{name} must be >= 1, got {getattr(self, name)}")


def elite_episodes(records: Sequence[EpisodeRecord], num_elites: int) -> set[int]:
    """Episode numbers of the top ``num_elites`` 'ok' episodes (the elites Ω at the end of the run)."""
    ok = [r for r in records if r.status == "ok"]
    return {ok[i].episode for i in elite_indices([float(r.reward) for r in ok], num_elites)}


def order_records(records: Sequence[EpisodeRecord], sort: str = "episode") -> list[EpisodeRecord]:
    """``episode``: as run (void attempts before their redo); ``reward``: best first (CEM's tie rule: the
    later episode first among equals), void attempts last."""
    _check_sort(sort)
    by_run = sorted(records, key=lambda r: (r.episode, r.attempt))
    if sort == "episode":
        return by_run
    ok = [r for r in by_run if r.status == "ok"]
    best = [ok[i] for i in elite_indices([float(r.reward) for r in ok], len(ok))]
    return best + [r for r in by_run if r.status != "ok"]


def episode_tiles(records: Sequence[EpisodeRecord], num_elites: int, sort: str = "episode") -> list[Tile]:
    """A fine-tuning run's attempts as tiles, in the order of :func:`order_records`, the elites marked."""
    if num_elites < 1:
        raise ValueError(f"num_elites must be >= 1, got {num_elites}")
    elites = elite_episodes(records, num_elites)
    return [Tile(number=r.episode, attempt=r.attempt,
                 label=f"k {r.episode}" + (f" (try {r.attempt + 1})" if r.attempt else ""), status=r.status,
                 reward=r.reward, success=r.success,
                 note=(r.void_reason or "no reason given") if r.status == "void" else (r.info or {}).get("error"),
                 images=dict(r.images), camera=(r.info or {}).get("camera"), xi=r.xi, executed=r.executed,
                 elite=r.status == "ok" and r.episode in elites)
            for r in order_records(records, sort)]


def trial_tiles(trials: Sequence[dict], sort: str = "episode") -> list[Tile]:
    """An evaluation's trials (its JSON's ``per_trial`` items) as tiles: in trial order, or with
    ``sort="reward"`` best first (the later trial first among equals)."""
    _check_sort(sort)
    tiles = [Tile(number=int(t["trial"]), attempt=0, label=f"trial {int(t['trial'])}", status="ok",
                  reward=float(t["reward"]), success=bool(t["success"]), note=t.get("error"),
                  images=dict(t.get("images") or {}), camera=t.get("camera"), xi=t["xi"], executed=t["executed"])
             for t in sorted(trials, key=lambda t: int(t["trial"]))]
    return tiles if sort == "episode" else sorted(tiles, key=lambda t: (-float(t.reward), -t.number))


def caption(tile: Tile) -> list[str]:
    """The tile's text: 'k 7 · r 0.43 · failure · elite' and, when there is one, why it failed or was void."""
    if tile.status == "void":
        return [f"{tile.label} · void", _short(tile.note or "no reason given")]
    outcome = "scored" if tile.success is None else ("success" if tile.success else "failure")
    first = f"{tile.label} · r {float(tile.reward):.2f} · {outcome}" + (" · elite" if tile.elite else "")
    return [first, _short(str(tile.note))] if tile.note else [first]


def contact_pixels(item) -> dict[str, tuple[float, float]]:
    """Where the prior's contact μ (``"prior"``, from ξ) and the executed one (``"executed"``, ξ + ε or
    ξ + δ) fall in I₀, in its pixels (x right, y down), through the camera kept with a :class:`Tile` or an
    episode record (``info["camera"]``: ``K`` and ``T_base_camera``, :func:`deft_core.finetune.loop.camera_of`).
    Empty without one (runs and evaluations made before 2026-11-27, the toy environment); a point behind
    the camera is left out."""
    from deft_core.finetune.loop import camera_matrices
    from deft_core.geometry import invert_transform, project_points, transform_points

    camera = item.camera if isinstance(item, Tile) else (getattr(item, "info", None) or {}).get("camera")
    matrices = camera_matrices(camera)
    if matrices is None:
        return {}
    K, T = matrices
    T_camera_base = invert_transform(T)
    out = {}
    for name, grasp in (("prior", item.xi), ("executed", item.executed)):
        p = transform_points(T_camera_base, np.asarray(grasp[:3], dtype=np.float64))
        if p[2] > 1e-6:
            u, v = project_points(p, K)
            out[name] = (float(u), float(v))
    return out


def frame_colour(tile: Tile) -> tuple[int, int, int]:
    if tile.status == "void":
        return VOID
    if tile.success is None:
        return SCORED
    return SUCCESS if tile.success else FAILURE


def render_sheet(log_dir: str | Path, records: Sequence[EpisodeRecord], num_elites: int, *, title: str = "",
                 sort: str = "episode", layout: SheetLayout = SheetLayout(), max_tiles: int | None = None) -> Sheet:
    """The sheet of a fine-tuning run (:class:`Sheet`). ``log_dir`` is the episode log's directory (where
    ``images/`` is); ``max_tiles`` keeps the first tiles of the chosen order (the header says so)."""
    tiles = episode_tiles(records, num_elites, sort)
    ok = [r for r in records if r.status == "ok"]
    parts = [f"{len(ok)} episodes"]
    if ok and all(r.success is not None for r in ok):
        parts.append(f"{sum(bool(r.success) for r in ok)} successes")
    if len(records) > len(ok):
        parts.append(f"{len(records) - len(ok)} void attempt(s) redone")
    if ok:
        parts.append(f"mean reward {np.mean([float(r.reward) for r in ok]):.2f}")
    parts.append(f"gold frame: the top {min(num_elites, len(ok))} (the elites Ω, which D is refit to)")
    return render_tiles(log_dir, tiles, [title, " · ".join(parts)], layout=layout, max_tiles=max_tiles,
                        what="attempts", executed="ξ + ε")


def render_trials(eval_dir: str | Path, trials: Sequence[dict], *, title: str = "", sort: str = "episode",
                  layout: SheetLayout = SheetLayout(), max_tiles: int | None = None) -> Sheet:
    """The sheet of an evaluation (its JSON's ``per_trial``); ``eval_dir`` is the run's ``eval/`` folder."""
    tiles = trial_tiles(trials, sort)
    summary = (f"{len(tiles)} trials · {sum(bool(t.success) for t in tiles)} successes · "
               f"mean reward {np.mean([t.reward for t in tiles]):.2f}") if tiles else "no trials"
    return render_tiles(eval_dir, tiles, [title, summary], layout=layout, max_tiles=max_tiles, what="trials",
                        executed="ξ + δ")


def render_tiles(base_dir: str | Path, tiles: Sequence[Tile], header: Sequence[str], *,
                 layout: SheetLayout = SheetLayout(), max_tiles: int | None = None, what: str = "tiles",
                 executed: str = "ξ + ε") -> Sheet:
    """Draw ``tiles`` (images relative to ``base_dir``) under the ``header`` lines (empty ones skipped) and
    the legend; ``what`` names the tiles in "showing 8 of 30 …", ``executed`` the executed grasp."""
    from PIL import Image, ImageDraw

    if max_tiles is not None and max_tiles < 1:
        raise ValueError(f"max_tiles must be >= 1, got {max_tiles}")
    font = sheet_font(layout.font_size)
    shown = list(tiles) if max_tiles is None else list(tiles)[:max_tiles]
    unreadable: list[str] = []
    zoom = any(contact_pixels(t) for t in shown)  # a third panel: I₀ enlarged around μ
    panels = [tile_panels(base_dir, t.label, t.images, contact_pixels(t), layout.thumb, zoom, unreadable)
              for t in shown]
    img_h = max((p.height for tile in panels for p in tile), default=layout.thumb)
    line_h = layout.font_size + 4
    border = layout.frame + layout.elite_frame
    n = 3 if zoom else 2
    tile_w = n * layout.thumb + 2 * border + 2 * (n - 1)
    tile_h = img_h + 2 * border + layout.caption_lines * line_h + 4
    cols = max(1, min(layout.columns or (4 if zoom else 5), len(shown)))
    rows = max(1, -(-len(shown) // cols))
    lines = [line for line in header if line]
    if len(shown) < len(tiles):
        lines.append(f"showing {len(shown)} of {len(tiles)} {what}")
    lines += _legend(zoom, executed)
    head_h = line_h * len(lines) + layout.gap
    text_w = int(max(font.getlength(line) for line in lines)) + 2 * layout.gap + 1  # a narrow grid keeps the header
    size = (max(cols * tile_w + (cols + 1) * layout.gap, text_w), head_h + rows * (tile_h + layout.gap) + layout.gap)
    sheet = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    boxes = []
    for i, line in enumerate(lines):
        draw.text((layout.gap, layout.gap // 2 + i * line_h), line, fill=(0, 0, 0), font=font)
    for i, (tile, images) in enumerate(zip(shown, panels)):
        x = layout.gap + (i % cols) * (tile_w + layout.gap)
        y = head_h + (i // cols) * (tile_h + layout.gap)
        boxes.append((tile.number, tile.attempt, (x, y, tile_w, tile_h)))
        if tile.elite:
            draw.rectangle([x, y, x + tile_w - 1, y + img_h + 2 * border - 1], fill=ELITE)
        inner = layout.elite_frame
        draw.rectangle([x + inner, y + inner, x + tile_w - 1 - inner, y + img_h + 2 * border - 1 - inner],
                       fill=frame_colour(tile))
        for j, panel in enumerate(images):
            sheet.paste(panel, (x + border + j * (layout.thumb + 2), y + border))
        for j, line in enumerate(caption(tile)[:layout.caption_lines]):
            draw.text((x + 2, y + img_h + 2 * border + 2 + j * line_h), fit_text(draw, line, font, tile_w - 4),
                      fill=(0, 0, 0), font=font)
    return Sheet(sheet, boxes, unreadable)


def save_sheet(sheet: Sheet, path: str | Path) -> list[str]:
    """Save as PNG, atomically (a killed write leaves the old sheet); returns the images drawn as
    placeholders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    sheet.image.save(tmp, format="PNG")
    tmp.replace(path)
    return sheet.unreadable


def write_sheet(log_dir: str | Path, records: Sequence[EpisodeRecord], num_elites: int, path: str | Path,
                **kwargs) -> list[str]:
    """:func:`render_sheet` then :func:`save_sheet`."""
    return save_sheet(render_sheet(log_dir, records, num_elites, **kwargs), path)


def _check_sort(sort: str) -> None:
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")


def _legend(zoom: bool, executed: str) -> list[str]:
    if zoom:
        return ["left: initial image I₀ · middle: I₀ enlarged around μ · right: final image",
                f"on I₀: cyan ring = the prior's contact μ (ξ), magenta dot = the executed μ ({executed})",
                "frame: green success, red failure, blue operator score, grey void"]
    return ["left: initial image I₀ · right: final image",
            "frame: green success, red failure, blue operator score, grey void"]


def _short(text: str) -> str:
    """The first line of an error, without the backend's class prefix ('SimArm: ')."""
    line = text.strip().splitlines()[0] if text.strip() else text
    head, sep, rest = line.partition(": ")
    return rest if sep and head.isidentifier() and head[:1].isupper() else line


__all__ = ["PRIOR_MU", "EXECUTED_MU", "Sheet", "Tile", "SheetLayout", "SORTS", "elite_episodes", "order_records",
           "episode_tiles", "trial_tiles", "caption", "contact_pixels", "frame_colour", "render_sheet", "render_trials",
           "render_tiles", "save_sheet", "write_sheet"]
