"""Option values checked when they are parsed: a bad one is one line (``ssimnet: error: --mpp ...``), exit 2.

>>> workers("2")
2
>>> mpp("40")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: 40 µm per pixel is outside 0.05-5; 40 looks like a magnification (40x is about 0.25 µm per pixel)
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import NoReturn

from ..config import usable_cpus
from ..tool.pixel_size import AUTO

__all__ = ["OneLineParser", "path", "non_negative", "workers", "mpp", "scheduler", "device", "MPP_RANGE"]

#: Plausible microns per pixel of a histology image: a 100x oil objective (about 0.05) to a 2x overview (about 5).
MPP_RANGE: tuple[float, float] = (0.05, 5.0)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, as every other error of the command."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("ssimnet").strip()
        print(f"ssimnet: error: {command + ': ' if command else ''}{message}", file=sys.stderr)
        sys.exit(2)


def _number(text: str, kind: type) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None


def path(text: str) -> str:
    """A file or folder name that is not empty: an empty one (an unset shell variable) would mean the
    current folder, silently.

    >>> path("masks/")
    'masks/'
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path (an unset variable?); give a file or folder")
    return text


def non_negative(text: str) -> int:
    """A whole number >= 0 (a seed, a number of epochs)."""
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 or more")
    return value


def workers(text: str) -> int:
    """Worker processes: from 1 to the CPUs this process may use."""
    value = int(_number(text, int))
    cpus = usable_cpus()
    if not 1 <= value <= cpus:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and {cpus}, the CPUs this machine gives")
    return value


def mpp(text: str) -> float | str:
    """Microns per pixel, within :data:`MPP_RANGE`, or ``auto`` (what the nuclei say); a magnification typed
    instead gets a hint."""
    if text == AUTO:
        return text
    value = float(_number(text, float))
    low, high = MPP_RANGE
    if not low <= value <= high:  # also NaN
        hint = (f"; {value:g} looks like a magnification (40x is about 0.25 µm per pixel)"
                if value in (2, 4, 5, 10, 20, 40, 60, 63, 100) else "")
        raise argparse.ArgumentTypeError(f"{value:g} µm per pixel is outside {low:g}-{high:g}{hint}")
    return value


def scheduler(text: str) -> str:
    """A Dask scheduler: ``local``, ``tcp://host:port`` or ``host:port`` (empty: none)."""
    if text in ("", "local") or re.fullmatch(r"(tcp|tls|ucx|inproc)://\S+", text) or re.fullmatch(r"[\w.\-]+:\d+", text):
        return text
    if text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text} is a web address, such as the Dask dashboard's; the scheduler "
                                         "listens on tcp://HOST:8786")
    raise argparse.ArgumentTypeError(f"{text!r} is not local, tcp://HOST:PORT or HOST:PORT")


def device(text: str) -> str:
    """A torch device name: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (empty: the default); whether it exists is
    checked where the network is loaded."""
    if text == "" or re.fullmatch(r"cpu|mps|cuda(:\d+)?", text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not cpu, cuda, cuda:N or mps")
