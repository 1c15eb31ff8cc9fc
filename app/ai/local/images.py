"""Images rendered with Pillow: a gradient and a few shapes in colours drawn from the prompt's
hash, with the prompt's first words written on a band. Same prompt, same bytes."""

from __future__ import annotations

import colorsys
import io
import random
import textwrap

from PIL import Image, ImageDraw, ImageFont

from app.ai.local.text import seeded_rng
from app.ai.schemas import ImageOut

FEATURED_SIZE = (1200, 630)
IN_ARTICLE_SIZE = (800, 450)
CAPTION_WORDS = 8
# The default font's average glyph is about half its size wide; a little more keeps lines inside.
GLYPH_WIDTH = 0.55
SHAPES = 6


def render_image(prompt: str, *, featured: bool) -> ImageOut:
    return ImageOut(data=render_png(prompt, featured=featured), media_type="image/png")


def render_png(prompt: str, *, featured: bool) -> bytes:
    width, height = FEATURED_SIZE if featured else IN_ARTICLE_SIZE
    rng = seeded_rng("image", prompt)
    hue = rng.random()
    image = _gradient(_colour(hue, 0.55, 0.85), _colour(hue + 0.12, 0.65, 0.45), width, height)
    draw = ImageDraw.Draw(image)
    band_top = height - height // 3
    _shapes(draw, rng, hue, width, band_top)
    _caption(draw, prompt, width, height, band_top)
    buffer = io.BytesIO()
    # Level 1: a few times faster than the default and barely larger on smooth gradients.
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _colour(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def _gradient(
    top_left: tuple[int, int, int], bottom_right: tuple[int, int, int], width: int, height: int
) -> Image.Image:
    """A diagonal gradient: a 2x2 image stretched by bilinear resampling, far faster than
    drawing it line by line."""
    middle = tuple((a + b) // 2 for a, b in zip(top_left, bottom_right, strict=True))
    corners = Image.new("RGB", (2, 2))
    corners.putdata([top_left, middle, middle, bottom_right])
    return corners.resize((width, height), Image.Resampling.BILINEAR)


def _shapes(
    draw: ImageDraw.ImageDraw, rng: random.Random, hue: float, width: int, height: int
) -> None:
    """Circles and rounded squares above the caption band, some cut by the edges."""
    for _ in range(SHAPES):
        colour = _colour(hue + rng.uniform(-0.25, 0.25), rng.uniform(0.3, 0.8), rng.uniform(0.5, 1))
        size = rng.randint(height // 6, height * 2 // 3)
        left = rng.randint(-size // 2, width - size // 2)
        top = rng.randint(-size // 2, height - size // 2)
        box = (left, top, left + size, top + size)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rounded_rectangle(box, radius=size // 6, fill=colour)


def _caption(
    draw: ImageDraw.ImageDraw, prompt: str, width: int, height: int, band_top: int
) -> None:
    # The subject: the local prompts put it first, before " — " and the style.
    words = prompt.split(" — ", 1)[0].split()[:CAPTION_WORDS]
    font_size = height // 12
    line_chars = int(width * 0.9 / (font_size * GLYPH_WIDTH))
    lines = textwrap.wrap(" ".join(words), line_chars, break_on_hyphens=False)[:2]
    font = ImageFont.load_default(size=font_size)
    draw.rectangle((0, band_top, width, height), fill=(20, 24, 32))
    draw.multiline_text(
        (width // 20, band_top + height // 24), "\n".join(lines), font=font, fill=(255, 255, 255)
    )
