"""A contact sheet of a fine-tuning run: every episode's initial and final image side by side, with its
reward, outcome and what went wrong, so that a person can see what the 30 episodes of Algorithm 1 did.

One tile per episode attempt, in episode order (or best reward first): the initial image I₀ on the
left — with the prior's contact μ (a cyan ring) and the executed one (a magenta dot), and a middle panel
enlarging I₀ around them, when the run kept its camera — the final image on the right, and under them
``k 7 · r 0.43 · failure · elite`` and, when there was one, the controller error. The frame's colour is the outcome: green success, red failure, blue
scored by an operator (no success flag), grey void (redone). A gold outer frame marks the top-E
episodes, the elites Ω — the ones D was last refit to, in CEM's order and tie rule (the cVAE distils
the top 10: the same episodes with Table 4's E = 10).

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
from deft_core.finetune.episode_log import EpisodeRecord, load_episode_image

#: frame colours (RGB)
SUCCESS = (46, 125, 50)
FAILURE = (198, 40, 40)
SCORED = (30, 90, 180)  # operator scores: no success flag
VOID = (150, 150, 150)
ELITE = (230, 170, 0)
PRIOR_MU = (0, 220, 255)  # ring: the prior's contact μ (ξ)
EXECUTED_MU = (255, 0, 200)  # dot: the executed contact μ (ξ + ε)
BACKGROUND = (255, 255, 255)
SORTS = ("episode", "reward")


@dataclass
class Sheet:
    """A drawn sheet: ``image`` (PIL, RGB); ``tiles``: per drawn attempt ``(episode, attempt, (x, y, w, h))``,
    the tile's box in pixels, in drawing order; ``unreadable``: the images drawn as grey placeholders, e.g.
    ``"k 3 final: no such file images/k0003_a0_final.png"``."""

    image: object
    tiles: list[tuple[int, int, tuple[int, int, int, int]]]
    unreadable: list[str]


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
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")
    by_run = sorted(records, key=lambda r: (r.episode, r.attempt))
    if sort == "episode":
        return by_run
    ok = [r for r in by_run if r.status == "ok"]
    best = [ok[i] for i in elite_indices([float(r.reward) for r in ok], len(ok))]
    return best + [r for r in by_run if r.status != "ok"]


def caption(record: EpisodeRecord, elite: bool) -> list[str]:
    """The tile's text: 'k 7 · r 0.43 · failure · elite' and, when there is one, why it failed or was void."""
    head = f"k {record.episode}" + (f" (try {record.attempt + 1})" if record.attempt else "")
    if record.status == "void":
        return [f"{head} · void", _short(record.void_reason or "no reason given")]
    outcome = "scored" if record.success is None else ("success" if record.success else "failure")
    first = f"{head} · r {float(record.reward):.2f} · {outcome}" + (" · elite" if elite else "")
    error = (record.info or {}).get("error")
    return [first, _short(str(error))] if error else [first]


def contact_pixels(record: EpisodeRecord) -> dict[str, tuple[float, float]]:
    """Where the prior's contact μ (``"prior"``, from ξ) and the executed one (``"executed"``, ξ + ε) fall in
    I₀, in its pixels (x right, y down), through the camera the record kept (``info["camera"]``: ``K`` and
    ``T_base_camera``, :func:`deft_core.finetune.loop.camera_of`). Empty for a record without one (runs
    made before 2026-11-27, the toy environment); a point behind the camera is left out."""
    from deft_core.geometry import invert_transform, project_points, transform_points

    camera = (record.info or {}).get("camera")
    if not isinstance(camera, dict):
        return {}
    try:
        K = np.asarray(camera.get("K"), dtype=np.float64)
        T = np.asarray(camera.get("T_base_camera"), dtype=np.float64)
    except (TypeError, ValueError):
        return {}
    if K.shape != (3, 3) or T.shape != (4, 4) or not (np.all(np.isfinite(K)) and np.all(np.isfinite(T))):
        return {}
    T_camera_base = invert_transform(T)
    out = {}
    for name, grasp in (("prior", record.xi), ("executed", record.executed)):
        p = transform_points(T_camera_base, np.asarray(grasp[:3], dtype=np.float64))
        if p[2] > 1e-6:
            u, v = project_points(p, K)
            out[name] = (float(u), float(v))
    return out


def frame_colour(record: EpisodeRecord) -> tuple[int, int, int]:
    if record.status == "void":
        return VOID
    if record.success is None:
        return SCORED
    return SUCCESS if record.success else FAILURE


def render_sheet(log_dir: str | Path, records: Sequence[EpisodeRecord], num_elites: int, *, title: str = "",
                 sort: str = "episode", layout: SheetLayout = SheetLayout(), max_tiles: int | None = None) -> Sheet:
    """Draw the sheet (:class:`Sheet`). ``log_dir`` is the episode log's directory (where ``images/`` is);
    ``max_tiles`` keeps the first tiles of the chosen order (the header says how many were left out)."""
    from PIL import Image, ImageDraw

    if num_elites < 1:
        raise ValueError(f"num_elites must be >= 1, got {num_elites}")
    if max_tiles is not None and max_tiles < 1:
        raise ValueError(f"max_tiles must be >= 1, got {max_tiles}")
    font = _font(layout.font_size)
    elites = elite_episodes(records, num_elites)
    ordered = order_records(records, sort)
    shown = ordered if max_tiles is None else ordered[:max_tiles]
    unreadable: list[str] = []
    zoom = any(contact_pixels(r) for r in shown)  # a third panel: I₀ enlarged around μ
    panels = [_panels(log_dir, r, layout.thumb, zoom, unreadable) for r in shown]
    img_h = max((p.height for tile in panels for p in tile), default=layout.thumb)
    line_h = layout.font_size + 4
    border = layout.frame + layout.elite_frame
    n = 3 if zoom else 2
    tile_w = n * layout.thumb + 2 * border + 2 * (n - 1)
    tile_h = img_h + 2 * border + layout.caption_lines * line_h + 4
    cols = max(1, min(layout.columns or (4 if zoom else 5), len(shown)))
    rows = max(1, -(-len(shown) // cols))
    header = _header(title, records, elites, num_elites, len(shown))
    head_h = line_h * len(header) + layout.gap
    text_w = int(max(font.getlength(line) for line in header)) + 2 * layout.gap + 1  # a narrow grid keeps the header
    size = (max(cols * tile_w + (cols + 1) * layout.gap, text_w), head_h + rows * (tile_h + layout.gap) + layout.gap)
    sheet = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    tiles = []
    for i, line in enumerate(header):
        draw.text((layout.gap, layout.gap // 2 + i * line_h), line, fill=(0, 0, 0), font=font)
    for i, (record, tile) in enumerate(zip(shown, panels)):
        x = layout.gap + (i % cols) * (tile_w + layout.gap)
        y = head_h + (i // cols) * (tile_h + layout.gap)
        tiles.append((record.episode, record.attempt, (x, y, tile_w, tile_h)))
        elite = record.status == "ok" and record.episode in elites
        if elite:
            draw.rectangle([x, y, x + tile_w - 1, y + img_h + 2 * border - 1], fill=ELITE)
        inner = layout.elite_frame
        draw.rectangle([x + inner, y + inner, x + tile_w - 1 - inner, y + img_h + 2 * border - 1 - inner],
                       fill=frame_colour(record))
        for j, panel in enumerate(tile):
            sheet.paste(panel, (x + border + j * (layout.thumb + 2), y + border))
        for j, line in enumerate(caption(record, elite)[:layout.caption_lines]):
            draw.text((x + 2, y + img_h + 2 * border + 2 + j * line_h), _fit(draw, line, font, tile_w - 4),
                      fill=(0, 0, 0), font=font)
    return Sheet(sheet, tiles, unreadable)


def write_sheet(log_dir: str | Path, records: Sequence[EpisodeRecord], num_elites: int, path: str | Path,
                **kwargs) -> list[str]:
    """Render (see :func:`render_sheet`) and save as PNG, atomically (a killed write leaves the old sheet);
    returns the images that were drawn as placeholders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    sheet = render_sheet(log_dir, records, num_elites, **kwargs)
    sheet.image.save(tmp, format="PNG")
    tmp.replace(path)
    return sheet.unreadable


def _header(title: str, records: Sequence[EpisodeRecord], elites: set[int], num_elites: int, shown: int) -> list[str]:
    ok = [r for r in records if r.status == "ok"]
    voids = len(records) - len(ok)
    scored = [r for r in ok if r.success is not None]
    parts = [f"{len(ok)} episodes"]
    if scored and len(scored) == len(ok):
        parts.append(f"{sum(bool(r.success) for r in ok)} successes")
    if voids:
        parts.append(f"{voids} void attempt(s) redone")
    if ok:
        parts.append(f"mean reward {np.mean([float(r.reward) for r in ok]):.2f}")
    parts.append(f"gold frame: the top {min(num_elites, len(ok))} (the elites D was last refit to)")
    lines = [title] if title else []
    lines.append(" · ".join(parts))
    if shown < len(records):
        lines.append(f"showing {shown} of {len(records)} attempts")
    if any(contact_pixels(r) for r in records):
        lines.append("left: initial image I₀ · middle: I₀ enlarged around μ · right: final image")
        lines.append("on I₀: cyan ring = the prior's contact μ (ξ), magenta dot = the executed μ (ξ + ε)")
    else:
        lines.append("left: initial image I₀ · right: final image")
    lines.append("frame: green success, red failure, blue operator score, grey void")
    return lines


def _panels(log_dir: str | Path, record: EpisodeRecord, width: int, zoom: bool, unreadable: list[str]) -> list:
    """The tile's images, each ``width`` wide: I₀ with the contact marks, (with ``zoom``) I₀ enlarged around
    them, and the final image; a missing or unreadable image is a grey placeholder, named in ``unreadable``."""
    initial = _load(log_dir, record, "initial", width, unreadable)
    final = _load(log_dir, record, "final", width, unreadable)
    if isinstance(initial, str):
        panels = [_placeholder(width, initial)] + ([_placeholder(width, "no zoom")] if zoom else [])
    else:
        pixels = contact_pixels(record)
        panels = [_scaled(initial, width, pixels)]
        if zoom:
            panels.append(_zoomed(initial, width, pixels) if pixels else _placeholder(width, "no camera kept"))
    return panels + [_placeholder(width, final) if isinstance(final, str) else _scaled(final, width, {})]


def _load(log_dir: str | Path, record: EpisodeRecord, which: str, width: int, unreadable: list[str]):
    """The record's image ``which`` as a PIL image, or the placeholder's text when it cannot be had."""
    from PIL import Image

    name = record.images.get(which)
    where = f"k {record.episode}" + (f" try {record.attempt + 1}" if record.attempt else "") + f" {which}"
    if name is None:
        unreadable.append(f"{where}: not recorded")
        return f"{which}: not recorded"
    if not (Path(log_dir) / name).is_file():  # checked first: OpenCV warns on stderr for a missing file
        unreadable.append(f"{where}: no such file {name}")
        return f"{which}: missing"
    try:
        rgb = load_episode_image(log_dir, record, which)
    except (FileNotFoundError, OSError):
        unreadable.append(f"{where}: {name} is not a readable image")
        return f"{which}: unreadable"
    return Image.fromarray(np.ascontiguousarray(rgb))


def _scaled(img, width: int, pixels: dict[str, tuple[float, float]]):
    from PIL import Image

    scale = width / img.width
    out = img.resize((width, max(1, round(img.height * scale))), Image.Resampling.BILINEAR)
    _mark_contacts(out, pixels, scale, (0.0, 0.0))
    return out


def _zoomed(img, width: int, pixels: dict[str, tuple[float, float]]):
    """A square of I₀ around the contact marks — a quarter of the image wide, or wide enough for both marks —
    enlarged to ``width``: where μ sits on the object, which the whole view shows only a few pixels wide."""
    from PIL import Image

    pts = np.array(list(pixels.values()))
    side = min(max(img.width / 4, 2.5 * float(np.ptp(pts, axis=0).max()) + 16), img.width, img.height)
    cx, cy = pts.mean(axis=0)
    x0 = float(np.clip(cx - side / 2, 0, img.width - side))
    y0 = float(np.clip(cy - side / 2, 0, img.height - side))
    out = img.resize((width, width), Image.Resampling.BICUBIC, box=(x0, y0, x0 + side, y0 + side))
    _mark_contacts(out, pixels, width / side, (x0, y0))
    return out


def _mark_contacts(img, pixels: dict[str, tuple[float, float]], scale: float, origin: tuple[float, float]) -> None:
    """The prior's μ as a ring, the executed μ as a dot, both outlined in black (visible on any scene);
    ``pixels`` in I₀'s pixels, drawn at ``(p - origin) * scale``."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(img)
    r = max(3, round(img.width / 40))
    if "prior" in pixels:
        u, v = ((c - o) * scale for c, o in zip(pixels["prior"], origin))
        draw.ellipse([u - r - 1, v - r - 1, u + r + 1, v + r + 1], outline=(0, 0, 0), width=1)
        draw.ellipse([u - r, v - r, u + r, v + r], outline=PRIOR_MU, width=2)
    if "executed" in pixels:
        u, v = ((c - o) * scale for c, o in zip(pixels["executed"], origin))
        d = max(2, r - 1)
        draw.ellipse([u - d, v - d, u + d, v + d], fill=EXECUTED_MU, outline=(0, 0, 0))


def _placeholder(width: int, text: str):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, width), (200, 200, 200))
    ImageDraw.Draw(img).text((6, width // 2 - 7), text, fill=(60, 60, 60), font=_font(12))
    return img


def _font(size: int):
    """DejaVu Sans from matplotlib's data (it has μ, ξ, ε; found without importing matplotlib), else Pillow's
    own font."""
    import importlib.util

    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        dejavu = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        try:
            return ImageFont.truetype(str(dejavu), size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size=size)  # scalable with FreeType (Pillow >= 10.1)
    except (TypeError, OSError):  # pragma: no cover - an old Pillow or one built without FreeType
        return ImageFont.load_default()


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` cut with '…' to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _short(text: str) -> str:
    """The first line of an error, without the backend's class prefix ('SimArm: ')."""
    line = text.strip().splitlines()[0] if text.strip() else text
    head, sep, rest = line.partition(": ")
    return rest if sep and head.isidentifier() and head[:1].isupper() else line


__all__ = ["Sheet", "SheetLayout", "SORTS", "elite_episodes", "order_records", "caption", "contact_pixels",
           "frame_colour", "render_sheet", "write_sheet"]
