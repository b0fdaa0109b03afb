"""The parser and the entry point of the ``ssimnet`` command."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from ..config import (
    DEFAULT_PROFILE,
    DEFAULT_SEED,
    INSTANCE_METHODS,
    NETWORK_MPP,
    NORMALIZE_MODES,
    PROFILES,
    default_workers,
)
from ..data import DataError, DataErrors
from .common import CommandError
from .options import OneLineParser, device, mpp, non_negative, path, scheduler, workers
from .run import cmd_book, cmd_convert, cmd_evaluate, cmd_pseudo_labels, cmd_publish, cmd_synth, cmd_train
from .segment import ShippedVersion, cmd_segment

__all__ = ["main", "parser"]

_PROFILE_HELP = "run profile: smoke (synthetic, CI), cpu (real images on a CPU) or paper (a GPU); default: %(default)s"


def parser() -> argparse.ArgumentParser:
    top = OneLineParser(prog="ssimnet", description="Label-free nuclei segmentation (SSimNet, MICCAI 2023).")
    sub = top.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    data = sub.add_parser("data", help="convert or draw datasets").add_subparsers(dest="data_command", required=True,
                                                                                     parser_class=OneLineParser)
    convert = data.add_parser("convert", help="convert an official download into the uniform layout")
    convert.add_argument("format", choices=["monuseg", "cpm17"])
    convert.add_argument("src", type=path, help="the downloaded folder")
    convert.add_argument("dst", type=path, help="dataset root to write")
    convert.add_argument("--split", choices=["train", "test"], help="split for a folder that holds one split only")
    convert.set_defaults(func=cmd_convert)
    synth = data.add_parser("synth", help="write the synthetic H&E dataset")
    synth.add_argument("dst", type=path)
    synth.add_argument("--profile", default=DEFAULT_PROFILE, choices=list(PROFILES), help=_PROFILE_HELP)
    synth.set_defaults(func=cmd_synth)

    pseudo = sub.add_parser("pseudo-labels", help="label-free pseudo labels and purified patches of a split")
    pseudo.add_argument("data_dir", type=path, help="dataset root in the uniform layout (labels are not read)")
    pseudo.add_argument("--out", type=path, required=True, help="run directory; results go to OUT/pseudo/<split>/<key>/")
    pseudo.add_argument("--split", default="train")
    pseudo.add_argument("--profile", default=DEFAULT_PROFILE, choices=list(PROFILES), help=_PROFILE_HELP)
    pseudo.add_argument("--seed", type=non_negative, default=DEFAULT_SEED)
    pseudo.add_argument("--workers", type=workers, default=default_workers())
    pseudo.add_argument("--quiet", action="store_true", help="no progress bar")
    pseudo.set_defaults(func=cmd_pseudo_labels)

    train = sub.add_parser("train", help="train SSimNet on the pseudo labels of a training split")
    train.add_argument("data_dir", type=path, help="dataset root in the uniform layout (labels are not read)")
    train.add_argument("--out", type=path, required=True, help="run directory")
    train.add_argument("--profile", default=DEFAULT_PROFILE, choices=list(PROFILES), help=_PROFILE_HELP)
    train.add_argument("--seed", type=non_negative, default=DEFAULT_SEED)
    train.add_argument("--device", type=device, default="", help="torch device (default: cuda if present, else cpu)")
    train.add_argument("--workers", type=workers, default=default_workers())
    train.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_train)

    segment = sub.add_parser("segment", help="segment nuclei in H&E images, without labels")
    segment.add_argument("images", type=path, nargs="+", help="RGB images (PNG, TIFF, JPEG), whole slides (SVS, NDPI, MRXS, "
                                                   "tiled or OME-TIFF, ...), folders (searched recursively) or glob patterns")
    segment.add_argument("--out", type=path, required=True, help="output folder")
    segment.add_argument("--model", type=path, help="checkpoint from 'ssimnet train', or its ONNX export (default: the network "
                                          "shipped with ssimnet, trained label-free on MoNuSeg)")
    segment.add_argument("--adapt", action="store_true",
                         help="train a network label-free on the given images themselves instead (minutes)")
    segment.add_argument("--version", action=ShippedVersion, help="describe the shipped network and exit")
    segment.add_argument("--profile", default=DEFAULT_PROFILE, choices=list(PROFILES),
                         help="the profile whose network --adapt trains (default: %(default)s)")
    segment.add_argument("--finetune-epochs", type=non_negative, default=None,
                         help="per-image fine-tuning epochs (default: the network's; the paper fine-tunes 5, the "
                              "shipped network does not)")
    segment.add_argument("--instances", choices=list(INSTANCE_METHODS), default=None,
                         help="instance method (default: the network's)")
    segment.add_argument("--min-object-probability", type=float, default=None,
                         help="drop nuclei whose mean probability is below this; 0 keeps every one (default: the "
                              "network's)")
    segment.add_argument("--fallback-below", type=float, default=None,
                         help="take the classical hematoxylin watershed's nuclei when the network's mean probability "
                              "over those it found is below this; 0 never (default: the network's)")
    segment.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                         help="average the prediction over 8 orientations, 8x slower (default: the network's)")
    segment.add_argument("--normalize", choices=list(NORMALIZE_MODES), nargs="?", const="on", default=None,
                         help="map each image's stains onto the MoNuSeg reference before the network sees it: "
                              "auto (an image of one stain only as hematoxylin alone), on, or off (default: the network's; "
                              "off with --adapt)")
    segment.add_argument("--no-normalize", dest="normalize", action="store_const", const="off",
                         help="the same as --normalize off")
    segment.add_argument("--mpp", type=mpp, default=None,
                         help=f"the images' microns per pixel: resampled to the network's {NETWORK_MPP} (MoNuSeg, 40x) "
                              "and back, or 'auto': twice the network's when the nuclei look half-size, else as it is; "
                              "not with --adapt (default: as they are; a slide's own, from its metadata)")
    segment.add_argument("--roi", type=path, default=None,
                         help="a GeoJSON file of polygons in level-0 pixels (QuPath's annotation export): a slide is "
                              "segmented within them only")
    segment.add_argument("--geojson-gz", action="store_true",
                         help="also write each slide's GeoJSON gzipped (<name>_nuclei.geojson.gz)")
    segment.add_argument("--seed", type=non_negative, default=DEFAULT_SEED)
    segment.add_argument("--device", type=device, default="", help="torch device (default: the CPU, through ONNX Runtime, when the "
                                                       "network only predicts; else cuda if present)")
    segment.add_argument("--quiet", action="store_true", help="no progress bars")
    segment.add_argument("--workers", type=workers, default=default_workers(),
                         help="worker processes, images in parallel (default: %(default)s, the CPUs up to 4)")
    segment.add_argument("--overwrite", action="store_true", help="redo images already done in --out")
    segment.add_argument("--scheduler", type=scheduler, default="",
                         help="run the images, and a slide's tiles, on the Dask cluster at this address "
                              "(dask.distributed); 'local' starts one of --workers processes")
    segment.set_defaults(func=cmd_segment)

    evaluate = sub.add_parser("evaluate", help="score predicted instance maps against ground truth")
    evaluate.add_argument("gt_dir", type=path, help="folder of ground-truth label maps, PNG or TIFF (or a split folder with labels/)")
    evaluate.add_argument("pred_dir", type=path, help="folder of predicted label maps with the same names (as segment writes them: <name>_label.png or .tif, or <name>.png)")
    evaluate.add_argument("--csv", type=path, help="also write the per-image table here")
    evaluate.set_defaults(func=cmd_evaluate)

    book = sub.add_parser("book", help="execute the book's notebooks with papermill")
    book.add_argument("--profile", default=DEFAULT_PROFILE, choices=list(PROFILES),
                      help=_PROFILE_HELP + "; CI executes the book with smoke")
    book.add_argument("--data-dir", default="", help="dataset root (default: the profile's synthetic data)")
    book.add_argument("--run-dir", default="", help="where results go (default: runs/<profile>)")
    book.add_argument("--seed", type=non_negative, default=DEFAULT_SEED)
    book.add_argument("--workers", type=workers, default=default_workers(), help="worker processes of the pseudo labels")
    book.add_argument("--device", type=device, default="", help="torch device (default: cuda if present, else cpu)")
    book.add_argument("--cpm17-dir", default="", help="CPM17 in the uniform layout, for Table 2 (optional)")
    book.add_argument("--only", nargs="*", default=[], help="execute only these notebooks (names as in _toc.yml)")
    book.add_argument("--book-dir", default=".", help="folder holding _toc.yml and notebooks/")
    book.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                      help="a further notebook parameter, e.g. runs=3 (with --only, for one notebook's own)")
    book.add_argument("--quiet", action="store_true", help="no progress output")
    book.set_defaults(func=cmd_book)

    publish = sub.add_parser("publish", help="make the executed book (book/executed) the published one (book/published)")
    publish.add_argument("--run-dir", default="", help="the run's folder: its reference results are published too")
    publish.add_argument("--results", default="", help="where the run's reference results go (e.g. results/cpu)")
    publish.add_argument("--book-dir", default=".", help="folder holding _toc.yml and book/")
    publish.set_defaults(func=cmd_publish)
    return top


class Terminated(Exception):
    """SIGTERM arrived (a scheduler's or ``timeout``'s stop): unwind, so that no temporary file is left."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _error(message: object, code: int) -> int:
    for line in str(message).splitlines() or [""]:
        print(f"ssimnet: error: {line}", file=sys.stderr)
    return code


def _raised(exc: BaseException, module: str, name: str) -> bool:
    """Whether `exc` is ``ssimnet.<module>.<name>``, without importing that module: only a command that
    uses it has imported it (torch with :mod:`ssimnet.net.train`, the book machinery with :mod:`ssimnet.book`),
    and ``segment`` pays for neither."""
    loaded = sys.modules.get(f"ssimnet.{module}")
    return loaded is not None and isinstance(exc, getattr(loaded, name))


def _reported(exc: BaseException) -> bool:
    """A failure of the book or of publishing, reported in one line (:class:`ssimnet.book.execute.BookError`,
    :class:`ssimnet.book.publish.PublishError`)."""
    return _raised(exc, "book.execute", "BookError") or _raised(exc, "book.publish", "PublishError")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Every failure the user can cause is one line on stderr per bad input --
    ``ssimnet: error: <file>: <problem>`` -- with exit code 2 (1 when a
    notebook fails or training diverges, 130 on Ctrl-C, 143 on SIGTERM), and
    no traceback; an interrupted run leaves no temporary file.
    """
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad option (one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    in_main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers can be set
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        args.func(args)
    except (DataError, DataErrors, CommandError) as exc:
        return _error(exc, getattr(exc, "code", 2))
    except RuntimeError as exc:
        if not _raised(exc, "net.train", "TrainingDiverged"):
            raise
        return _error(exc, 1)
    except KeyboardInterrupt:
        return _error("interrupted", 130)
    except Terminated:
        return _error("terminated", 143)
    except OSError as exc:  # an output that vanished or filled up during the run
        where = exc.filename or "output"
        return _error(f"{where}: {exc.strerror or exc}", 2)
    except Exception as exc:
        if not _reported(exc):
            raise
        return _error(exc, getattr(exc, "code", 2))
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0

