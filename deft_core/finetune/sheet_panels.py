"""The images of a contact sheet's tile (deft_core.finetune.sheet): I₀ with the contact marks, I₀ enlarged
around them, the final image, grey placeholders for images that cannot be read; and the sheet's font."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PRIOR_MU = (0, 220, 255)  # ring: the prior's contact μ (ξ)
EXECUTED_MU = (255, 0, 200)  # dot: the executed contact μ (ξ + ε, or ξ + δ)


def tile_panels(base_dir: str | Path, label: str, images: dict, pixels: dict[str, tuple[float, float]],
                width: int, zoom: bool, unreadable: list[str]) -> list:
    """A tile's images, each ``width`` wide: I₀ (``images["initial"]``, relative to ``base_dir``) with the
    contact marks at ``pixels`` (I₀'s pixels, see :func:`deft_core.finetune.sheet.contact_pixels`), with
    ``zoom`` I₀ enlarged around them, and the final image; a missing or unreadable image is a grey
    placeholder, named in ``unreadable`` after ``label``."""
    initial = _load(base_dir, label, images, "initial", unreadable)
    final = _load(base_dir, label, images, "final", unreadable)
    if isinstance(initial, str):
        panels = [_placeholder(width, initial)] + ([_placeholder(width, "no zoom")] if zoom else [])
    else:
        panels = [_scaled(initial, width, pixels)]
        if zoom:
            panels.append(_zoomed(initial, width, pixels) if pixels else _placeholder(width, "no camera kept"))
    return panels + [_placeholder(width, final) if isinstance(final, str) else _scaled(final, width, {})]


def _load(base_dir: str | Path, label: str, images: dict, which: str, unreadable: list[str]):
    """The image ``images[which]`` as a PIL image, or the placeholder's text when it cannot be had."""
    import cv2
    from PIL import Image

    name = images.get(which)
    where = f"{label} {which}"
    if name is None:
        unreadable.append(f"{where}: not recorded")
        return f"{which}: not recorded"
    path = Path(base_dir) / name
    if not path.is_file():  # checked first: OpenCV warns on stderr for a missing file
        unreadable.append(f"{where}: no such file {name}")
        return f"{which}: missing"
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        unreadable.append(f"{where}: {name} is not a readable image")
        return f"{which}: unreadable"
    return Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))


def _scaled(img, width: int, pixels: dict[str, tuple[float, float]]):
    from PIL import Image

    scale = width / img.width
    out = img.resize((width, max(1, round(img.height * scale))), Image.Resampling.BILINEAR)
    _mark_contacts(out, pixels, scale, (0.0, 0.0))
    return out


def _zoomed(img, width: int, pixels: dict[str, tuple[float, float]]):
    """A square of I₀ around the contact marks — a quarter of the image wide, or wide enough for both marks;
    when they are further apart than the image is high, around the prior's μ — enlarged to ``width``: where μ
    sits on the object, which the whole view shows only a few pixels wide."""
    from PIL import Image

    pts = np.array(list(pixels.values()))
    wanted = max(img.width / 4, 2.5 * float(np.ptp(pts, axis=0).max()) + 16)
    side = min(wanted, img.width, img.height)
    # both marks when they fit in the window; else the prior's μ (where the model looked), or the other one
    cx, cy = pts.mean(axis=0) if wanted <= side else np.asarray(pixels.get("prior", pts[0]))
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
    ImageDraw.Draw(img).text((6, width // 2 - 7), text, fill=(60, 60, 60), font=font(12))
    return img


def font(size: int):
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


def fit_text(draw, text: str, font, width: int) -> str:
    """``text`` cut with '…' to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
