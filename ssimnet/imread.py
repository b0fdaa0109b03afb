"""One reader for every image the package takes in, with a documented contract.

:func:`read_image` returns an ``(H, W, 3)`` uint8 RGB array, or raises one
:class:`~ssimnet.errors.DataError` that names the file and the problem;
whatever a reader (Pillow, tifffile, the operating system) raises becomes one.

Accepted
    8-bit RGB, RGBA and palette images (PNG, JPEG, TIFF and what else Pillow
    reads; TIFFs Pillow cannot decode, such as tiled ones, through tifffile).
Converted, with an :class:`~ssimnet.errors.InputWarning`
    - CMYK (a print workflow's JPEG or TIFF) to RGB;
    - transparent pixels (alpha below 255) composited onto white, the colour
      of glass, so that a transparent border is background, not tissue;
    - a multi-page TIFF or an animated image: its first frame only.
Applied silently
    The EXIF orientation (a photo taken sideways), and an opaque alpha
    channel dropped.
Refused
    Grey images, 16-bit images and other colour modes (converting them would
    change what the stain separation sees: convert them to 8-bit RGB first),
    and images of more than :data:`ssimnet.config.MAX_IMAGE_PIXELS` pixels,
    judged from the header before anything is decoded (a decompression bomb
    costs nothing).

Examples
--------
>>> import tempfile, pathlib
>>> from PIL import Image
>>> path = pathlib.Path(tempfile.mkdtemp()) / "cmyk.jpg"
>>> Image.new("CMYK", (4, 3), (0, 255, 255, 0)).save(path)
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     rgb = read_image(path)
>>> rgb.shape, rgb.dtype, [str(w.message) for w in caught]
((3, 4, 3), dtype('uint8'), ['a CMYK image, converted to RGB'])
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .config import MAX_IMAGE_PIXELS
from .errors import DataError, InputWarning, first_line

__all__ = ["read_image", "open_array"]

_TIFF = (".tif", ".tiff")
_GREY = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise DataError(path, "is a folder, not an image file")
    if not path.is_file():
        raise DataError(path, "file not found")
    if not os.access(path, os.R_OK):
        raise DataError(path, "cannot read image (permission denied)")


def _check_size(path: Path, height: int, width: int, limit: int = MAX_IMAGE_PIXELS) -> None:
    if height * width > limit:
        raise DataError(path, f"image of {width}x{height} pixels is larger than the {limit:,} pixels ssimnet reads "
                              "at once (MAX_IMAGE_PIXELS); cut it into regions first")


def _check_png_depth(path: Path) -> None:
    """Reject 16-bit colour PNGs, which Pillow reads cut to 8 bits without a word (IHDR's bit depth, byte 24)."""
    with open(path, "rb") as f:
        head = f.read(26)
    if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR" and head[24] == 16 and head[25] in (2, 4, 6):
        raise DataError(path, "expected 8 bits per channel, got a 16-bit PNG; convert it to 8-bit RGB first")


@contextlib.contextmanager
def _our_pixel_limit() -> Iterator[None]:
    """Pillow's own decompression-bomb limit off: :func:`_check_size` judges the header instead."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _opaque_rgb(rgba: np.ndarray) -> np.ndarray:
    """RGB of an RGBA array, its transparent pixels composited onto white (with a warning)."""
    alpha = rgba[..., 3]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgba[..., :3])
    share = float(np.mean(alpha < 255))
    warnings.warn(f"{share:.0%} of its pixels are transparent: composited onto white (background)", InputWarning,
                  stacklevel=4)
    a = alpha[..., None].astype(np.float32) / 255.0
    return np.round(rgba[..., :3] * a + 255.0 * (1.0 - a)).astype(np.uint8)


def _with_pillow(path: Path) -> np.ndarray:
    with _our_pixel_limit(), Image.open(path) as im:
        _check_size(path, im.height, im.width)
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            warnings.warn(f"has {frames} frames (pages); the first is read", InputWarning, stacklevel=4)
        im = ImageOps.exif_transpose(im)
        if im.mode in _GREY:
            raise DataError(path, "expected an RGB image, got a single-channel (grayscale) image")
        if im.mode == "CMYK":
            warnings.warn("a CMYK image, converted to RGB", InputWarning, stacklevel=4)
            im = im.convert("RGB")
        elif im.mode in ("P", "PA"):
            im = im.convert("RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB")
        elif im.mode in ("RGBX", "YCbCr"):
            im = im.convert("RGB")
        elif im.mode == "RGBa":
            im = im.convert("RGBA")
        elif im.mode not in ("RGB", "RGBA"):
            raise DataError(path, f"colour mode {im.mode} is not RGB; convert it to 8-bit RGB first")
        return np.array(im)


def _with_tifffile(path: Path, *, rgb: bool) -> np.ndarray:
    """A TIFF Pillow cannot decode (tiled, many samples, float), after checking its header; with `rgb`, as an
    image (8 bits, the first page, CMYK converted), else as it is (a label map)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        _check_size(path, *page.shape[:2])
        if not rgb:
            return page.asarray()
        if len(tif.pages) > 1:
            warnings.warn(f"has {len(tif.pages)} frames (pages); the first is read", InputWarning, stacklevel=4)
        if page.bitspersample not in (1, 8):
            raise DataError(path, f"expected 8 bits per channel, got {page.bitspersample}; convert it to 8-bit RGB "
                                  "first")
        array = page.asarray()
        if page.photometric == tifffile.PHOTOMETRIC.SEPARATED and array.ndim == 3 and array.shape[-1] >= 4:
            warnings.warn("a CMYK image, converted to RGB", InputWarning, stacklevel=4)
            cmyk = array[..., :4].astype(np.float32) / 255.0
            array = np.round(255.0 * (1.0 - cmyk[..., :3]) * (1.0 - cmyk[..., 3:4])).astype(np.uint8)
        return array


def _as_rgb(path: Path, array: np.ndarray) -> np.ndarray:
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 2)):
        raise DataError(path, "expected an RGB image, got a single-channel (grayscale) image")
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise DataError(path, f"expected an RGB image, got an array of shape {array.shape}")
    if array.dtype != np.uint8:
        raise DataError(path, f"expected 8 bits per channel, got {array.dtype}; convert it to 8-bit RGB first")
    return _opaque_rgb(array) if array.shape[-1] == 4 else np.ascontiguousarray(array)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image as an ``(H, W, 3)`` uint8 RGB array, as the module docstring's contract says.

    Raises
    ------
    DataError
        If the file is missing, unreadable, too large, or not an image that
        can be read as 8-bit RGB; one line naming it and the problem.
    """
    path = Path(path)
    return _as_rgb(path, open_array(path, rgb=True))


def open_array(path: str | os.PathLike[str], *, rgb: bool = False) -> np.ndarray:
    """The pixels of an image file as they are (a label map: any integer type), or, with `rgb`, as
    :func:`read_image` takes them before its last checks.

    Raises
    ------
    DataError
        For anything a reader raises, and for an image above :data:`ssimnet.config.MAX_IMAGE_PIXELS`.
    """
    path = Path(path)
    _check_file(path)
    is_tiff = path.suffix.lower() in _TIFF
    try:
        if rgb and not is_tiff:
            _check_png_depth(path)
        if not rgb:
            with _our_pixel_limit(), Image.open(path) as im:
                _check_size(path, im.height, im.width)
                return np.array(im.convert("RGBA" if "transparency" in im.info else "RGB") if im.mode == "P" else im)
        if is_tiff:
            import tifffile

            with tifffile.TiffFile(path) as tif:  # Pillow would silently reduce some depths
                bits = tif.pages[0].bitspersample
            if bits not in (1, 8):
                raise DataError(path, f"expected 8 bits per channel, got {bits}; convert it to 8-bit RGB first")
        return _with_pillow(path)
    except DataError:
        raise
    except MemoryError:
        raise DataError(path, "cannot read image (out of memory)") from None
    except Exception as exc:  # Pillow, tifffile and the OS raise many kinds on a damaged or foreign file
        if not is_tiff:
            raise DataError(path, f"cannot read image ({first_line(exc)})") from None
        first = exc
    try:
        return _with_tifffile(path, rgb=rgb)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(path, f"cannot read TIFF ({first_line(exc)}; {first_line(first)})") from None
