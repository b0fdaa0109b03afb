"""Whole-slide images read lazily: a pyramid of levels, a pixel size, and windows read on demand.

Two readers, one interface (:class:`SlideReader`):

- :class:`OpenSlideReader`, on `OpenSlide <https://openslide.org>`_ (``openslide-python``
  with the ``openslide-bin`` wheel, so no system package is needed): Aperio SVS,
  Hamamatsu NDPI, MIRAX MRXS, Leica SCN, Ventana BIF, Philips TIFF, DICOM and
  generic tiled TIFF.  It was chosen over ``tiffslide`` because it reads the
  vendor formats that are not TIFF (MRXS, VMS) and NDPI's JPEG stripes, with one
  maintained C library that QuPath's users already rely on.
- :class:`TiffReader`, on ``tifffile`` (already a dependency), for what OpenSlide
  does not read: OME-TIFF pyramids (their levels are SubIFDs) and tiled TIFFs it
  refuses.  It decodes only the TIFF tiles a window touches.

:func:`open_slide` picks the reader; :func:`is_slide` tells a slide from an
image that :func:`ssimnet.data.read_image` reads whole (a PNG, a JPEG, an
untiled TIFF keep that path).  Coordinates are (row, col) pixels of a level;
``downsamples[level]`` converts them to level 0.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import DataError, first_line

__all__ = ["SLIDE_SUFFIXES", "SlideReader", "OpenSlideReader", "TiffReader", "is_slide", "open_slide", "best_level",
           "read_downsampled"]

#: Vendor formats that are always slides (a ``.tif`` or ``.tiff`` is one when it is tiled, :func:`is_slide`).
SLIDE_SUFFIXES: tuple[str, ...] = (".svs", ".ndpi", ".mrxs", ".scn", ".bif", ".vms", ".vmu", ".svslide")


class SlideReader:
    """A slide's pyramid: ``shapes[level]`` = (height, width), ``downsamples[level]`` relative to level 0,
    ``mpp`` (microns per pixel at level 0, None when the file does not say) and :meth:`read`."""

    path: Path
    format: str
    shapes: list[tuple[int, int]]
    downsamples: list[float]
    mpp: float | None

    def read(self, level: int, rows: slice, cols: slice) -> np.ndarray:
        """The (h, w, 3) uint8 RGB window ``[rows, cols]`` of `level` (transparent pixels white)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> SlideReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, {self.format}, {len(self.shapes)} levels, mpp={self.mpp})"


class OpenSlideReader(SlideReader):
    """A slide OpenSlide reads."""

    def __init__(self, path: Path) -> None:
        import openslide

        self.path = path
        self._slide = openslide.OpenSlide(str(path))
        self.format = str(openslide.OpenSlide.detect_format(str(path)) or "openslide")
        self.shapes = [(int(h), int(w)) for w, h in self._slide.level_dimensions]
        self.downsamples = [float(d) for d in self._slide.level_downsamples]
        props = self._slide.properties
        sizes = [float(props[k]) for k in ("openslide.mpp-x", "openslide.mpp-y") if _positive(props.get(k))]
        self.mpp = float(np.mean(sizes)) if sizes else None

    def read(self, level: int, rows: slice, cols: slice) -> np.ndarray:
        ds = self.downsamples[level]
        size = (cols.stop - cols.start, rows.stop - rows.start)
        rgba = np.asarray(self._slide.read_region((round(cols.start * ds), round(rows.start * ds)), level, size))
        return _over_white(rgba)

    def close(self) -> None:
        self._slide.close()


class TiffReader(SlideReader):
    """A tiled (OME-)TIFF pyramid read tile by tile with tifffile: its first series and that series' levels."""

    def __init__(self, path: Path) -> None:
        import tifffile

        self.path = path
        self._tif = tifffile.TiffFile(path)
        series = self._tif.series[0]
        self.format = "ome-tiff" if self._tif.is_ome else "tiled-tiff"
        self._pages = [level.keyframe for level in series.levels]
        for page in self._pages:
            if page.photometric not in (2, 6) or page.samplesperpixel < 3 or page.planarconfig != 1:
                raise DataError(path, "is not an RGB slide (one interleaved RGB image per level)")
        self.shapes = [(int(p.imagelength), int(p.imagewidth)) for p in self._pages]
        self.downsamples = [self.shapes[0][1] / shape[1] for shape in self.shapes]
        self.mpp = _ome_mpp(self._tif.ome_metadata) if self._tif.is_ome else _tiff_mpp(self._pages[0])

    def read(self, level: int, rows: slice, cols: slice) -> np.ndarray:
        page = self._pages[level]
        out = np.full((rows.stop - rows.start, cols.stop - cols.start, 3), 255, np.uint8)
        if not page.is_tiled:  # one strip per image: read it whole (a small level)
            out[:] = page.asarray()[rows, cols, :3]
            return out
        th, tw = page.tilelength, page.tilewidth
        across = -(-page.imagewidth // tw)
        fh = self._tif.filehandle
        for tr in range(rows.start // th, -(-rows.stop // th)):
            for tc in range(cols.start // tw, -(-cols.stop // tw)):
                index = tr * across + tc
                fh.seek(page.dataoffsets[index])
                tile = page.decode(fh.read(page.databytecounts[index]), index, jpegtables=page.jpegtables)[0]
                tile = np.asarray(tile).reshape(th, tw, -1)[..., :3]
                r0, c0 = max(rows.start, tr * th), max(cols.start, tc * tw)
                r1, c1 = min(rows.stop, (tr + 1) * th), min(cols.stop, (tc + 1) * tw)
                out[r0 - rows.start : r1 - rows.start, c0 - cols.start : c1 - cols.start] = \
                    tile[r0 - tr * th : r1 - tr * th, c0 - tc * tw : c1 - tc * tw]
        return out

    def close(self) -> None:
        self._tif.close()


def _positive(value: object) -> bool:
    try:
        return float(value) > 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _over_white(rgba: np.ndarray) -> np.ndarray:
    """OpenSlide's RGBA (not premultiplied) on a white background: glass outside the scanned area is white."""
    if rgba.shape[-1] == 3 or bool((rgba[..., 3] == 255).all()):
        return np.ascontiguousarray(rgba[..., :3])
    alpha = rgba[..., 3:].astype(np.float32) / 255
    return np.round(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)


_UNITS = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4}


def _ome_mpp(xml: str | None) -> float | None:
    """PhysicalSizeX of an OME-XML's first image, in microns (None when absent or in an unknown unit).

    >>> _ome_mpp('<Pixels PhysicalSizeX="0.5" PhysicalSizeXUnit="nm"/>'), _ome_mpp('<Pixels/>')
    (0.0005, None)
    """
    if not xml:
        return None
    size = re.search(r'PhysicalSizeX="([^"]+)"', xml)
    unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', xml)
    scale = _UNITS.get(unit.group(1) if unit else "µm")
    return float(size.group(1)) * scale if size and scale and _positive(size.group(1)) else None


def _tiff_mpp(page: object) -> float | None:
    """Microns per pixel from a TIFF page's XResolution and ResolutionUnit (2 inch, 3 centimetre)."""
    tags = page.tags  # type: ignore[attr-defined]
    if "XResolution" not in tags or "ResolutionUnit" not in tags:
        return None
    num, den = tags["XResolution"].value
    unit = {2: 25400.0, 3: 10000.0}.get(int(tags["ResolutionUnit"].value))
    return unit * den / num if unit and num > 0 and den > 0 else None


def _is_tiled_tiff(path: Path) -> bool:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return bool(tif.pages[0].is_tiled)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - not a TIFF tifffile reads: read_image says why
        return False


def is_slide(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is read as a slide: a vendor format (:data:`SLIDE_SUFFIXES`) or a tiled TIFF."""
    path = Path(path)
    suffix = path.suffix.lower()
    return suffix in SLIDE_SUFFIXES or (suffix in (".tif", ".tiff") and path.is_file() and _is_tiled_tiff(path))


def open_slide(path: str | os.PathLike[str]) -> SlideReader:
    """The reader of a slide: tifffile for an OME-TIFF, else OpenSlide, else tifffile for a tiled TIFF.

    Raises
    ------
    DataError
        If the file is missing or neither reader opens it (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such slide")
    import tifffile

    ome = path.suffix.lower() in (".tif", ".tiff") and path.name.lower().endswith((".ome.tif", ".ome.tiff"))
    readers: list[type[SlideReader]] = [TiffReader, OpenSlideReader] if ome else [OpenSlideReader, TiffReader]
    problem = ""
    for reader in readers:
        try:
            return reader(path)  # type: ignore[call-arg]
        except DataError:
            raise
        except (OSError, ValueError, IndexError, KeyError, tifffile.TiffFileError) as exc:
            problem = problem or first_line(exc)
        except Exception as exc:  # noqa: BLE001 - openslide's own errors (OpenSlideUnsupportedFormatError, ...)
            problem = problem or first_line(exc)
    raise DataError(path, f"cannot be read as a slide: {problem}")


def best_level(reader: SlideReader, mpp: float | None, network_mpp: float) -> int:
    """The level whose pixel size is closest to `network_mpp` (in ratio); 0 when the pixel size is unknown.

    >>> class R(SlideReader):
    ...     downsamples = [1.0, 4.0, 16.0]
    >>> best_level(R(), 0.25, 0.5), best_level(R(), 0.25, 1.0), best_level(R(), None, 1.0)
    (0, 1, 0)
    """
    if mpp is None:
        return 0
    gaps = [abs(np.log(mpp * ds / network_mpp)) for ds in reader.downsamples]
    return int(np.argmin(np.round(gaps, 9)))  # ties go to the finer level


class Downsampled(NamedTuple):
    """A level read at a lower resolution: ``image`` and how many level-0 pixels one of its pixels spans."""

    image: np.ndarray
    scale: float


def read_downsampled(reader: SlideReader, max_side: int) -> Downsampled:
    """The whole slide at between half `max_side` and `max_side` pixels a side (or less, for a smaller
    slide): the coarsest level at least half that large, read strip by strip and averaged by blocks when
    larger, so that memory stays bounded by a strip."""
    levels = [k for k, (h, w) in enumerate(reader.shapes) if 2 * max(h, w) >= max_side] or [0]
    level = levels[-1]
    h, w = reader.shapes[level]
    step = max(1, -(-max(h, w) // max_side))
    out_h, out_w = max(1, h // step), max(1, w // step)
    out = np.empty((out_h, out_w, 3), np.uint8)
    strip = max(1, 2048 // step)  # output rows per read
    for r in range(0, out_h, strip):
        rows = slice(r * step, min(out_h, r + strip) * step)
        block = reader.read(level, rows, slice(0, out_w * step)).astype(np.float32)
        n = block.shape[0] // step
        out[r : r + n] = np.round(block.reshape(n, step, out_w, step, 3).mean(axis=(1, 3))).astype(np.uint8)
    return Downsampled(out, reader.downsamples[level] * step)
