"""The ``ssimnet`` command line.

::

    ssimnet data convert {monuseg,cpm17} SRC DST [--split S]
    ssimnet data synth DST [--profile P]
    ssimnet pseudo-labels DATA_DIR --out RUN_DIR [--split S] [--profile P] [--workers N] [--quiet]
    ssimnet train DATA_DIR --out RUN_DIR [--profile P] [--seed N] [--device D] [--restart]
    ssimnet segment IMAGE|DIR|GLOB... --out DIR [--model CKPT | --adapt] [--finetune-epochs N] [--instances M]
                    [--min-object-probability P] [--tta] [--device D]
                    [--[no-]normalize] [--mpp MPP] [--workers N] [--scheduler ADDRESS] [--overwrite]
    ssimnet segment --version
    ssimnet evaluate GT_DIR PRED_DIR [--csv FILE]
    ssimnet book [--profile P] [--data-dir D] [--run-dir R] [--seed N] [--device D] [--workers N] [--only NB] [--quiet]
    ssimnet publish [--run-dir R] [--results DIR]

Exit codes: 0 success, 1 a notebook failed or training diverged, 2 bad usage
or bad input (one line on stderr per bad file, naming it and the problem; in
a batch the good files are still done), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .config import (
    BOOK_EXECUTED,
    BOOK_PUBLISHED,
    DEFAULT_PROFILE,
    DEFAULT_SEED,
    INSTANCE_METHODS,
    PROFILES,
    NETWORK_MPP,
    PUBLISH_FIGURES,
    default_workers,
    get_profile,
)
from .data import DataError, DataErrors, output_file, output_folder, read_label, write_table

__all__ = ["main"]


class CommandError(Exception):
    """A failure the command reports in one line and exits with `code`."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _warn(message: str) -> None:
    print(f"ssimnet: warning: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- data


def _cmd_convert(args: argparse.Namespace) -> None:
    from .datasets import convert_cpm17, convert_monuseg

    convert = {"monuseg": convert_monuseg, "cpm17": convert_cpm17}[args.format]
    output_folder(args.dst)
    for split_dir in convert(args.src, args.dst, split=args.split):
        n = len(list((split_dir / "images").glob("*.png")))
        print(f"{split_dir}: {n} images")


def _cmd_synth(args: argparse.Namespace) -> None:
    from .datasets import write_synthetic_dataset

    config = get_profile(args.profile).synthetic
    write_synthetic_dataset(output_folder(args.dst), config)
    print(f"{args.dst}: {config.n_train} train and {config.n_test} test tiles of {config.shape[0]}x{config.shape[1]}")


# --------------------------------------------------------------------------- pseudo labels


def _cmd_pseudo_labels(args: argparse.Namespace) -> None:
    from .pipeline import build_pseudo_labels

    profile = get_profile(args.profile)
    result = build_pseudo_labels(
        args.data_dir, output_folder(args.out), profile.pseudo, split=args.split, seed=args.seed, workers=args.workers,
        progress=not args.quiet,
    )
    print(
        f"{result.directory}: pseudo labels of {len(result.names)} images; "
        f"{len(result.kept)} of {result.n_patches} patches kept (alpha = {profile.pseudo.keep_fraction:.0%})"
    )


# --------------------------------------------------------------------------- train and segment


def _cmd_train(args: argparse.Namespace) -> None:
    from dataclasses import asdict

    from .pipeline import train_self_training
    from .store import save_model

    profile = get_profile(args.profile).for_tool()
    out = output_folder(args.out)
    trainer = train_self_training(
        args.data_dir, out, profile, seed=args.seed, device=args.device or None,
        workers=args.workers, restart=args.restart, progress=not args.quiet,
    )[-1][0]
    model = out / MODEL_FILE
    save_model(model, trainer.state(), asdict(profile.inference))  # the network with the settings it segments with
    last = trainer.history[-1] if trainer.history else {}
    print(f"{model}: {trainer.epoch} epochs" + (f", last loss {last['loss']:.4f}" if last else "")
          + f"; segments with {profile.inference.instances!r} instances")


#: The network ``ssimnet train`` writes into its run folder, with its inference settings.
MODEL_FILE = "model.pt"

#: ``segment`` options that override one of the network's stored inference settings (InferenceConfig fields).
_OVERRIDES = ("finetune_epochs", "instances", "min_object_probability", "tta", "normalize")


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    return {name: getattr(args, name) for name in _OVERRIDES if getattr(args, name) is not None}


def _option(exc: Exception) -> str:
    """An InferenceConfig error in the command line's words (``--instances learned needs ...``,
    ``--min-object-probability: ...``)."""
    text = str(exc)
    if text.startswith("instances '"):
        method, _, rest = text.removeprefix("instances '").partition("' ")
        return f"--instances {method} {rest}"
    for name in _OVERRIDES:
        if text.startswith(name):
            return f"--{name.replace('_', '-')}: {text}"
    return text


def _segmenter(args: argparse.Namespace, profile, overrides: dict[str, object]):
    """The segmenter of --model (default: the shipped network) with the command's overrides, checked before
    any image is read; with --adapt, (None, its settings): the images train their own network."""
    from .batch import load_segmenter

    if not args.adapt:
        predict_only = not overrides.get("finetune_epochs") and (args.device or "cpu") == "cpu"
        try:
            replace(profile.inference, **overrides)  # a bad value is the option's fault, checked before any file
        except ValueError as exc:
            raise CommandError(_option(exc)) from None
        segmenter = load_segmenter(args.model, predict_only=predict_only, device=args.device or None)
        try:
            segmenter = segmenter.with_settings(**overrides)
        except ValueError as exc:  # the network lacks what a setting needs
            raise DataError(segmenter.path, _option(exc)) from None
        return segmenter, segmenter.settings
    if args.model:
        raise CommandError("--adapt trains a network on the images; it does not go with --model")
    try:  # a network trained here on the images themselves has seen them as they are: no normalisation unless asked
        settings = replace(profile.inference, **{"normalize": False, **overrides})
        settings.check_network(profile.train.architecture)
    except ValueError as exc:
        raise CommandError(_option(exc).replace("this one has none", f"the {profile.name!r} profile trains none")) from None
    return None, settings


def _cmd_segment(args: argparse.Namespace) -> None:
    from .batch import (SUMMARY_COLUMNS, BatchSettings, find_images, finished_row, job_key, read_images, run_batch,
                        summary_rows, train_on_images)
    from .data import file_digest
    from .segmenter import Segmenter

    if args.mpp is not None and args.adapt:
        raise CommandError("--mpp resamples the images for a trained network; it does not go with --adapt")
    if args.mpp is not None:
        from .resample import scale_factor

        try:
            scale_factor(args.mpp)  # the check the batch relies on, made before any output
        except ValueError as exc:
            raise CommandError(f"--mpp {exc}") from None
    profile = get_profile(args.profile).for_tool()
    segmenter, settings = _segmenter(args, profile, _overrides(args))
    out = output_folder(args.out)
    # Training and fine-tuning cut the image into patches; plain prediction takes any size.
    why = ("training on it needs one (segment it without --adapt)" if args.adapt else
           "fine-tuning needs one (use --finetune-epochs 0)")
    min_side = profile.pseudo.patch_size if (settings.finetune_epochs > 0 or args.adapt) else 1
    jobs = find_images(args.images)
    batch = BatchSettings(inference=settings, seed=args.seed, mpp=args.mpp, min_side=min_side, why=why,
                          model=file_digest(segmenter.path) if segmenter else "", pseudo=profile.pseudo)
    keys = {job.name: job_key(job, batch) for job in jobs}  # each image's bytes hashed once here
    todo = [job for job in jobs if args.overwrite or finished_row(out, job.name, keys[job.name]) is None]
    if len(todo) < len(jobs):
        print(f"{len(jobs) - len(todo)} of {len(jobs)} images already done in {out} (--overwrite to redo them)")
    errors: list[DataError] = []
    if todo and segmenter is None:  # label-free training on the images themselves: they, and only they, are the training set
        # every image of the batch, done or not, so that a resumed batch trains (or reuses) the same network
        images, errors = read_images(jobs, min_side=min_side, why=why)
        if not images:
            raise DataErrors(errors)
        trainer = train_on_images(images, out, profile, seed=args.seed, device=args.device or None,
                                  progress=not args.quiet)
        segmenter = Segmenter(trainer, settings, pseudo=profile.pseudo)
        bad = {e.path for e in errors}
        todo = [job for job in todo if job.path not in bad]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), unit="image", disable=args.quiet or len(todo) < 2, file=sys.stderr)

    def done(job, result) -> None:
        bar.update()
        if isinstance(result, DataError):
            return
        for message in result.get("warnings", []):
            _warn(f"{job.path}: {message}")
        if not args.quiet:
            bar.write(f"{job.name}: {result['nuclei']} nuclei -> {out / job.name}_*")

    try:
        errors += run_batch(todo, out, batch, segmenter, workers=args.workers, scheduler=args.scheduler,
                            on_done=done) if todo else []
    finally:
        bar.close()
    rows = summary_rows(out, jobs, keys)
    if rows:  # no partial output when every image failed
        write_table(out / "summary.csv", [{k: r.get(k) for k in SUMMARY_COLUMNS} for r in rows], columns=SUMMARY_COLUMNS)
        print(f"{len(rows)} of {len(jobs)} images segmented; summary: {out / 'summary.csv'}")
    if errors:
        raise DataErrors(errors)


# --------------------------------------------------------------------------- evaluate


def _label_files(folder: Path) -> dict[str, Path]:
    if (folder / "labels").is_dir():
        folder = folder / "labels"
    if not folder.is_dir():
        raise DataError(folder, "folder not found")
    # `ssimnet segment` writes <name>_label.png (beside <name>_overlay.png): read it as <name>.
    pngs = [p for p in sorted(folder.glob("*.png")) if not p.stem.endswith("_overlay")]
    files = {p.stem.removesuffix("_label"): p for p in pngs if p.stem.endswith("_label")}
    files.update({p.stem: p for p in pngs if not p.stem.endswith("_label")})
    if not files:
        raise DataError(folder, "no label PNGs found")
    return files


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from .metrics import mean_scores, score

    if args.csv:
        output_file(args.csv)
    truth, preds = _label_files(Path(args.gt_dir)), _label_files(Path(args.pred_dir))
    missing = sorted(set(truth) - set(preds))
    if missing:
        raise DataError(Path(args.pred_dir) / f"{missing[0]}.png", f"prediction missing ({len(missing)} of {len(truth)} images)")
    rows, all_scores = [], []
    for name, path in truth.items():
        true, pred = read_label(path), read_label(preds[name])
        if true.shape != pred.shape:
            raise DataError(preds[name], f"size mismatch: prediction is {pred.shape}, ground truth {true.shape}")
        s = score(true, pred)
        all_scores.append(s)
        rows.append({"image": name, **s.as_dict()})
    mean = mean_scores(all_scores)
    keys = ["precision", "recall", "dice", "aji", "aji_plus", "pq"]
    print(f"{'image':<32}" + "".join(f"{k:>10}" for k in keys))
    for row in rows:
        print(f"{row['image'][:31]:<32}" + "".join(f"{row[k]:>10.4f}" for k in keys))
    print(f"{'mean':<32}" + "".join(f"{mean[k]:>10.4f}" for k in keys))
    if args.csv:
        write_table(args.csv, rows + [{"image": "mean", **mean}])


# --------------------------------------------------------------------------- book


def _cmd_book(args: argparse.Namespace) -> None:
    from .book import execute_book, notebook_parameters
    from .datasets import is_synthetic, resolve_dataset
    from .results import provenance

    book_dir = Path(args.book_dir).resolve()
    run_dir = output_folder(Path(args.run_dir or f"runs/{args.profile}").resolve())
    data_dir = resolve_dataset(args.data_dir, run_dir, get_profile(args.profile).synthetic)
    parameters = {
        "data_dir": str(data_dir),
        "run_dir": str(run_dir),
        "profile": args.profile,
        "seed": args.seed,
        "device": args.device,
        "workers": args.workers,
    }
    if args.cpm17_dir:
        parameters["cpm17_dir"] = str(Path(args.cpm17_dir).resolve())
    parameters |= notebook_parameters(args.param, reserved=parameters)
    info = provenance(get_profile(args.profile), data_dir=data_dir, seed=args.seed, device=args.device or None)
    if is_synthetic(data_dir):  # named for the chapters' provenance line
        info["data"] = {**info["data"], "name": "synthetic H&E tiles"}  # type: ignore[dict-item]
    seconds = execute_book(book_dir=book_dir, parameters=parameters, info=info, only=args.only, quiet=args.quiet,
                           timings=run_dir / "timings.json")
    width = max(map(len, seconds), default=0)
    print(f"executed {len(seconds)} notebooks (profile {args.profile}, data {data_dir}); wall time per stage:")
    for name, s in seconds.items():
        print(f"  {name:<{width}}  {s:8.1f} s")
    print(f"  {'total':<{width}}  {sum(seconds.values()):8.1f} s")
    print(f"book over these chapters: {book_dir / BOOK_EXECUTED / '_toc.yml'}; `ssimnet publish` makes them the published book")


def _cmd_publish(args: argparse.Namespace) -> None:
    from .book import toc_notebooks
    from .publish import publish_run

    book_dir = Path(args.book_dir).resolve()
    names = toc_notebooks(book_dir / "_toc.yml")
    run_dir = Path(args.run_dir) if args.run_dir else None
    results_to = Path(args.results) if args.results else None
    if run_dir is not None and results_to is None:
        raise CommandError("--run-dir given without --results: say where its reference results go (e.g. results/cpu)")
    sizes = publish_run(names, executed_dir=book_dir / BOOK_EXECUTED, published_dir=book_dir / BOOK_PUBLISHED,
                        results_from=run_dir / "results" if run_dir else None, results_to=results_to,
                        **PUBLISH_FIGURES._asdict())
    print(f"published {len(sizes)} chapters into {book_dir / BOOK_PUBLISHED} ({sum(sizes.values()) / 2**20:.1f} MB)")


# --------------------------------------------------------------------------- entry point


class _ShippedVersion(argparse.Action):
    """``segment --version``: the package's version and the shipped network's card, read when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from . import __version__
        from .shipped import describe, read_card

        try:
            text = describe(read_card())
        except DataError as exc:
            text = f"no shipped model: {exc}"
        print(f"ssimnet {__version__}\n{text}")
        parser.exit()


_PROFILE_HELP = "run profile: smoke (synthetic, CI), cpu (real images on a CPU) or paper (a GPU); default: %(default)s"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssimnet", description="Label-free nuclei segmentation (SSimNet, MICCAI 2023).")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="convert or draw datasets").add_subparsers(dest="data_command", required=True)
    convert = data.add_parser("convert", help="convert an official download into the uniform layout")
    convert.add_argument("format", choices=["monuseg", "cpm17"])
    convert.add_argument("src", help="the downloaded folder")
    convert.add_argument("dst", help="dataset root to write")
    convert.add_argument("--split", choices=["train", "test"], help="split for a folder that holds one split only")
    convert.set_defaults(func=_cmd_convert)
    synth = data.add_parser("synth", help="write the synthetic H&E dataset")
    synth.add_argument("dst")
    synth.add_argument("--profile", default=DEFAULT_PROFILE, choices=list(PROFILES), help=_PROFILE_HELP)
    synth.set_defaults(func=_cmd_synth)

    pseudo = sub.add_parser("pseudo-labels", help="label-free pseudo labels and purified patches of a split")
    pseudo.add_argument("data_dir", help="dataset root in the uniform layout (labels are not read)")
    pseudo.add_argument("--out", required=True, help="run directory; results go to OUT/pseudo/<split>/<key>/")
    pseudo.add_argument("--split", default="train")
    pseudo.add_argument("--profile", default=DEFAULT_PROFILE, choices=list(PROFILES), help=_PROFILE_HELP)
    pseudo.add_argument("--seed", type=int, default=DEFAULT_SEED)
    pseudo.add_argument("--workers", type=int, default=default_workers())
    pseudo.add_argument("--quiet", action="store_true", help="no progress bar")
    pseudo.set_defaults(func=_cmd_pseudo_labels)

    train = sub.add_parser("train", help="train SSimNet on the pseudo labels of a training split")
    train.add_argument("data_dir", help="dataset root in the uniform layout (labels are not read)")
    train.add_argument("--out", required=True, help="run directory")
    train.add_argument("--profile", default=DEFAULT_PROFILE, choices=list(PROFILES), help=_PROFILE_HELP)
    train.add_argument("--seed", type=int, default=DEFAULT_SEED)
    train.add_argument("--device", default="", help="torch device (default: cuda if present, else cpu)")
    train.add_argument("--workers", type=int, default=default_workers())
    train.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=_cmd_train)

    segment = sub.add_parser("segment", help="segment nuclei in H&E images, without labels")
    segment.add_argument("images", nargs="+", help="RGB images (PNG, TIFF, JPEG), folders (searched recursively) or "
                                                   "glob patterns")
    segment.add_argument("--out", required=True, help="output folder")
    segment.add_argument("--model", help="checkpoint from 'ssimnet train', or its ONNX export (default: the network "
                                          "shipped with ssimnet, trained label-free on MoNuSeg)")
    segment.add_argument("--adapt", action="store_true",
                         help="train a network label-free on the given images themselves instead (minutes)")
    segment.add_argument("--version", action=_ShippedVersion, help="describe the shipped network and exit")
    segment.add_argument("--profile", default=DEFAULT_PROFILE, choices=list(PROFILES),
                         help="the profile whose network --adapt trains (default: %(default)s)")
    segment.add_argument("--finetune-epochs", type=int, default=None,
                         help="per-image fine-tuning epochs (default: the network's; the paper fine-tunes 5, the "
                              "shipped network does not)")
    segment.add_argument("--instances", choices=list(INSTANCE_METHODS), default=None,
                         help="instance method (default: the network's)")
    segment.add_argument("--min-object-probability", type=float, default=None,
                         help="drop nuclei whose mean probability is below this; 0 keeps every one (default: the "
                              "network's)")
    segment.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                         help="average the prediction over 8 orientations, 8x slower (default: the network's)")
    segment.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                         help="map each image's stains onto the MoNuSeg reference before the network sees it "
                              "(default: the network's; off with --adapt)")
    segment.add_argument("--mpp", type=float, default=None,
                         help=f"the images' microns per pixel: resampled to the network's {NETWORK_MPP} (MoNuSeg, 40x) "
                              "and back; not with --adapt (default: as they are)")
    segment.add_argument("--seed", type=int, default=DEFAULT_SEED)
    segment.add_argument("--device", default="", help="torch device (default: the CPU, through ONNX Runtime, when the "
                                                       "network only predicts; else cuda if present)")
    segment.add_argument("--quiet", action="store_true", help="no progress bars")
    segment.add_argument("--workers", type=int, default=default_workers(),
                         help="worker processes, images in parallel (default: %(default)s, the CPUs up to 4)")
    segment.add_argument("--overwrite", action="store_true", help="redo images already done in --out")
    segment.add_argument("--scheduler", default="",
                         help="run the images on the Dask cluster at this address (dask.distributed); 'local' starts one")
    segment.set_defaults(func=_cmd_segment)

    evaluate = sub.add_parser("evaluate", help="score predicted instance maps against ground truth")
    evaluate.add_argument("gt_dir", help="folder of ground-truth label PNGs (or a split folder with labels/)")
    evaluate.add_argument("pred_dir", help="folder of predicted label PNGs with the same names")
    evaluate.add_argument("--csv", help="also write the per-image table here")
    evaluate.set_defaults(func=_cmd_evaluate)

    book = sub.add_parser("book", help="execute the book's notebooks with papermill")
    book.add_argument("--profile", default=DEFAULT_PROFILE, choices=list(PROFILES),
                      help=_PROFILE_HELP + "; CI executes the book with smoke")
    book.add_argument("--data-dir", default="", help="dataset root (default: the profile's synthetic data)")
    book.add_argument("--run-dir", default="", help="where results go (default: runs/<profile>)")
    book.add_argument("--seed", type=int, default=DEFAULT_SEED)
    book.add_argument("--workers", type=int, default=default_workers(), help="worker processes of the pseudo labels")
    book.add_argument("--device", default="", help="torch device (default: cuda if present, else cpu)")
    book.add_argument("--cpm17-dir", default="", help="CPM17 in the uniform layout, for Table 2 (optional)")
    book.add_argument("--only", nargs="*", default=[], help="execute only these notebooks (names as in _toc.yml)")
    book.add_argument("--book-dir", default=".", help="folder holding _toc.yml and notebooks/")
    book.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                      help="a further notebook parameter, e.g. runs=3 (with --only, for one notebook's own)")
    book.add_argument("--quiet", action="store_true", help="no progress output")
    book.set_defaults(func=_cmd_book)

    publish = sub.add_parser("publish", help="make the executed book (book/executed) the published one (book/published)")
    publish.add_argument("--run-dir", default="", help="the run's folder: its reference results are published too")
    publish.add_argument("--results", default="", help="where the run's reference results go (e.g. results/cpu)")
    publish.add_argument("--book-dir", default=".", help="folder holding _toc.yml and book/")
    publish.set_defaults(func=_cmd_publish)
    return parser


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
    uses it has imported it (torch with :mod:`ssimnet.train`, the book machinery with :mod:`ssimnet.book`),
    and ``segment`` pays for neither."""
    loaded = sys.modules.get(f"{__package__}.{module}")
    return loaded is not None and isinstance(exc, getattr(loaded, name))


def _reported(exc: BaseException) -> bool:
    """A failure of the book or of publishing, reported in one line (:class:`ssimnet.book.BookError`,
    :class:`ssimnet.publish.PublishError`)."""
    return _raised(exc, "book", "BookError") or _raised(exc, "publish", "PublishError")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Every failure the user can cause is one line on stderr per bad input --
    ``ssimnet: error: <file>: <problem>`` -- with exit code 2 (1 when a
    notebook fails or training diverges, 130 on Ctrl-C, 143 on SIGTERM), and
    no traceback; an interrupted run leaves no temporary file.
    """
    args = _parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers can be set
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        args.func(args)
    except (DataError, DataErrors, CommandError) as exc:
        return _error(exc, getattr(exc, "code", 2))
    except RuntimeError as exc:
        if not _raised(exc, "train", "TrainingDiverged"):
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


if __name__ == "__main__":
    sys.exit(main())
