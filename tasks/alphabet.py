"""The paper's "Alphabet" data set: characters rendered from many fonts with Pillow.

Classes: the 62 characters ``0-9 A-Z a-z`` (class = character; upper and lower case are
different classes). Every usable font x character is one example, so each class has one
example per font.

Fonts: every ``*.ttf`` / ``*.otf`` file under the font folders (default ``/usr/share/fonts``;
override with the environment variable ``META_UNSUP_FONT_DIRS``, ``os.pathsep``-separated),
taken in sorted path order. ``scripts/install_fonts.sh`` installs the Debian font packages
the project uses. A font is skipped when

* its file name marks a symbol / dingbat / icon font (letters mapped to pictures);
* Pillow cannot open it, or any of the 62 characters renders empty or as the font's
  "missing glyph" box (compared with the rendering of U+10FFFF);
* it is caps-only (>= 5 lower-case letters render identical to their capitals);
* one outsized glyph would shrink the rest: median glyph height < 0.4 x the font's box;
* its 62 renderings are pixel-identical to those of an earlier font (duplicate formats
  or metric clones, e.g. .ttf and .otf of the same face).

Rendering (deterministic for a given font file, Pillow and FreeType version): each glyph
is drawn at 64 px, white (255) ink on black, anchored at its baseline. One scale per font
maps the union of the 62 glyph boxes (in baseline coordinates) into a 28x28 square, so
relative size and baseline position are kept (``x`` is smaller than ``X``, ``p``
descends). Each glyph is centred horizontally on its own ink box and vertically on the
font's union box, downsampled with area averaging (Pillow BOX) and placed in the centre
of a 32x32 uint8 canvas (MNIST-like 2 px margin). The result is cached, keyed by the font
files' (path, size, mtime), the renderer version and the Pillow/FreeType versions.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import os
import pathlib

import numpy as np

from meta_unsup_rules.tasks import data_dir as dd

CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FONT_DIRS_ENV = "META_UNSUP_FONT_DIRS"
DEFAULT_FONT_DIRS = ("/usr/share/fonts",)
RENDER_VERSION = 1
RENDER_PX = 64  # glyph rendering size (px per em)
BOX = 28  # glyph box in the output canvas
CANVAS = 32  # output image size
MIN_MEDIAN_HEIGHT = 0.4  # median glyph height / box side below this: font rejected
MIN_FONTS = 20  # fewer usable fonts than this is a DataError
EXCLUDE_NAME_PARTS = (
  "symbol",
  "dingbat",
  "d050000l",
  "awesome",
  "icon",
  "emoji",
  "wingding",
  "ornament",
  "opensymbol",
  "glyphicons",
  "mathjax",
  "entypo",
  "zapf",
)


def font_dirs() -> tuple[str, ...]:
  env = os.environ.get(FONT_DIRS_ENV)
  return tuple(p for p in env.split(os.pathsep) if p) if env else DEFAULT_FONT_DIRS


def find_fonts(dirs=None) -> list[pathlib.Path]:
  """Sorted candidate font files (name filter applied, identical files de-duplicated)."""
  found, seen = [], set()
  for d in dirs or font_dirs():
    root = pathlib.Path(d)
    if not root.is_dir():
      continue
    for p in sorted(root.rglob("*")):
      if p.suffix.lower() not in (".ttf", ".otf") or not p.is_file():
        continue
      if any(part in p.name.lower() for part in EXCLUDE_NAME_PARTS):
        continue
      real = p.resolve()
      if real in seen:
        continue
      seen.add(real)
      found.append(p)
  return sorted(found)


def _render_font(path: str):
  """Returns (uint8 [62, 32, 32], None) or (None, reason)."""
  from PIL import Image, ImageDraw, ImageFont  # pylint: disable=g-import-not-at-top

  try:
    font = ImageFont.truetype(path, RENDER_PX)
  except Exception as e:  # pylint: disable=broad-except
    return None, f"cannot open ({type(e).__name__})"
  size = 4 * RENDER_PX
  origin = (RENDER_PX, 2 * RENDER_PX + RENDER_PX // 2)

  def draw(ch):
    im = Image.new("L", (size, size), 0)
    ImageDraw.Draw(im).text(origin, ch, font=font, fill=255, anchor="ls")
    return im

  try:
    notdef = np.asarray(draw("\U0010ffff"))
    ims, boxes = [], []
    for ch in CHARACTERS:
      im = draw(ch)
      a = np.asarray(im)
      box = im.getbbox()
      if box is None or np.array_equal(a, notdef):
        return None, f"no glyph for {ch!r}"
      ims.append(im)
      boxes.append(box)
  except Exception as e:  # pylint: disable=broad-except
    return None, f"render error ({type(e).__name__})"
  boxes = np.array(boxes, np.float64)
  # Glyphs touching the scratch canvas edge would be clipped: reject the font.
  if (
    boxes[:, 0].min() <= 0
    or boxes[:, 1].min() <= 0
    or boxes[:, 2].max() >= size
    or (boxes[:, 3].max() >= size)
  ):
    return None, "glyphs too large"
  y_top, y_bot = boxes[:, 1].min(), boxes[:, 3].max()
  side = max(y_bot - y_top, (boxes[:, 2] - boxes[:, 0]).max())
  if np.median(boxes[:, 3] - boxes[:, 1]) < MIN_MEDIAN_HEIGHT * side:
    return None, "outlier glyph sizes"
  yc = (y_top + y_bot) / 2.0
  out = np.zeros((len(CHARACTERS), CANVAS, CANVAS), np.uint8)
  off = (CANVAS - BOX) // 2
  for k, (im, box) in enumerate(zip(ims, boxes)):
    xc = (box[0] + box[2]) / 2.0
    crop = (xc - side / 2, yc - side / 2, xc + side / 2, yc + side / 2)
    small = im.resize((BOX, BOX), Image.Resampling.BOX, box=crop)
    out[k, off : off + BOX, off : off + BOX] = np.asarray(small)
  lower = out[10 + 26 :]
  upper = out[10 : 10 + 26]
  if sum(np.array_equal(a, b) for a, b in zip(lower, upper)) >= 5:
    return None, "caps only"
  return out, None


def _versions() -> dict[str, str]:
  import PIL  # pylint: disable=g-import-not-at-top
  from PIL import features  # pylint: disable=g-import-not-at-top

  return {"pillow": PIL.__version__, "freetype": str(features.version("freetype2"))}


def _font_stats(fonts) -> list[tuple[str, int, int]]:
  out = []
  for p in fonts:
    st = p.stat()
    out.append((str(p), st.st_size, st.st_mtime_ns))
  return out


def build(fonts: list[pathlib.Path], workers: int | None = None) -> dict[str, np.ndarray]:
  """Renders all fonts; returns arrays x uint8 [F*62, 32, 32] (font-major), y, font names."""
  workers = workers or min(4, os.cpu_count() or 1)
  paths = [str(p) for p in fonts]
  results = None
  if workers > 1 and len(paths) > 8:
    # "spawn", not fork: the caller may be multi-threaded (JAX, Ray), where fork can deadlock.
    try:
      ctx = multiprocessing.get_context("spawn")
      with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as ex:
        results = list(ex.map(_render_font, paths, chunksize=16))
    except Exception:  # pylint: disable=broad-except
      results = None  # e.g. no process support: render here
  if results is None:
    results = [_render_font(p) for p in paths]
  kept, names, seen, skipped = [], [], set(), {}
  for p, (arr, reason) in zip(paths, results):
    if arr is None:
      skipped[p] = reason
      continue
    h = hashlib.sha256(arr.tobytes()).hexdigest()
    if h in seen:
      skipped[p] = "duplicate rendering"
      continue
    seen.add(h)
    kept.append(arr)
    names.append(p)
  _check_count(len(kept), "usable fonts")
  x = np.concatenate(kept, axis=0) if kept else np.zeros((0, CANVAS, CANVAS), np.uint8)
  y = np.tile(np.arange(len(CHARACTERS), dtype=np.int32), len(kept))
  font_of = np.repeat(np.arange(len(kept), dtype=np.int32), len(CHARACTERS))
  return dict(
    x=x,
    y=y,
    font=font_of,
    font_names=np.array(names, dtype=str),
    skipped=np.array(sorted(f"{k}: {v}" for k, v in skipped.items()), dtype=str),
  )


def _check_count(n: int, what: str) -> None:
  if n < MIN_FONTS:
    raise dd.DataError(
      f"Alphabet: only {n} {what} found under {', '.join(font_dirs())} "
      f"(need >= {MIN_FONTS}); run `bash scripts/install_fonts.sh` (Debian font packages) "
      f"or set {FONT_DIRS_ENV}."
    )


def cache_key_parts() -> tuple:
  """What the rendering depends on: renderer settings, library versions, font files (stat)."""
  fonts = find_fonts()
  _check_count(len(fonts), "font files")
  return (
    RENDER_VERSION,
    RENDER_PX,
    BOX,
    CANVAS,
    CHARACTERS,
    EXCLUDE_NAME_PARTS,
    MIN_MEDIAN_HEIGHT,
    _versions(),
    _font_stats(fonts),
  )


def load_arrays(cache_dir=None) -> dict[str, np.ndarray]:
  """Cached rendering of all installed fonts (see module docstring)."""
  key = cache_key_parts()
  fonts = [pathlib.Path(p) for p, _, _ in key[-1]]
  return dd.cached_arrays("alphabet", key, lambda: build(fonts), cache_dir=cache_dir)
