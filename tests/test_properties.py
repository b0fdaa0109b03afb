"""Property-based tests (Hypothesis): random files and random option values give a result or one line, never a
traceback."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ssimnet.cli import main
from ssimnet.data import read_image, write_image
from ssimnet.errors import DataError
from ssimnet.synthetic import synthetic_tile

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _png_header(width: int, height: int, depth: int, colour: int, body: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")


def _saved(mode: str, size: tuple[int, int], fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):  # a mode this format cannot hold: no example
        return b""
    return buffer.getvalue()


FILES = st.one_of(
    st.binary(max_size=300),  # junk
    st.builds(_png_header, st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), st.sampled_from([1, 2, 4, 8, 16]),
              st.sampled_from([0, 2, 3, 4, 6, 7]), st.binary(max_size=64)),  # hostile PNG headers
    st.builds(_saved, st.sampled_from(["RGB", "RGBA", "L", "LA", "P", "CMYK", "1", "I", "F"]),
              st.tuples(st.integers(1, 40), st.integers(1, 40)), st.sampled_from(["PNG", "TIFF", "GIF", "BMP"]),
              st.integers(0, 3)).filter(bool),
)


@pytest.mark.filterwarnings("ignore::ssimnet.errors.InputWarning")  # a converted file is a result
@FAST
@given(data=FILES, suffix=st.sampled_from([".png", ".tif", ".jpg", ".gif"]))
def test_any_file_reads_as_rgb_or_is_one_data_error(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("f") / f"x{suffix}"
    path.write_bytes(data)
    try:
        image = read_image(path)
    except DataError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
    else:
        assert image.ndim == 3 and image.shape[-1] == 3 and image.dtype == np.uint8


@pytest.fixture(scope="module")
def tile(tmp_path_factory):
    path = tmp_path_factory.mktemp("tile") / "a.png"
    write_image(path, synthetic_tile((32, 32), seed=1).image)
    return path


OPTIONS = st.sampled_from(["--mpp", "--workers", "--seed", "--finetune-epochs", "--min-object-probability", "--device",
                           "--scheduler", "--instances"])
VALUES = st.one_of(st.text(max_size=12), st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True).map(str))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=OPTIONS, value=VALUES)
def test_any_option_value_is_parsed_or_refused_in_one_line(tile, option, value, capsys):
    from ssimnet.cli import parser

    try:
        args = parser().parse_args(["segment", str(tile), "--out", "unused", option, value])
    except SystemExit as exc:
        err = capsys.readouterr().err
        assert exc.code == 2 and err.count("\n") == 1 and err.startswith("ssimnet: error: segment: "), err
    else:
        assert args.command == "segment"  # parsed: each value is then checked before any work (tests/test_imread.py)
    assert main(["segment", "--version"]) == 0  # the parser itself is left as it was
    capsys.readouterr()
