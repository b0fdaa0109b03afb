"""The ``ssimnet`` command line.

::

    ssimnet data convert {monuseg,cpm17} SRC DST [--split S]
    ssimnet data synth DST [--profile P]
    ssimnet pseudo-labels DATA_DIR --out RUN_DIR [--split S] [--profile P] [--workers N] [--quiet]
    ssimnet train DATA_DIR --out RUN_DIR [--profile P] [--seed N] [--device D] [--restart]
    ssimnet segment IMAGE... --out DIR [--model CKPT] [--finetune-epochs N] [--instances M] [--tta] [--device D]
    ssimnet evaluate GT_DIR PRED_DIR [--csv FILE]
    ssimnet book [--profile P] [--data-dir D] [--run-dir R] [--seed N] [--device D] [--only NB] [--quiet]

Exit codes: 0 success, 1 a notebook failed, 2 bad usage or bad input (one
line on stderr naming the file and the problem).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .config import INSTANCE_METHODS, PROFILES, get_profile
from .data import (
    DataError,
    atomic_path,
    convert_cpm17,
    convert_monuseg,
    read_label,
    resolve_dataset,
    write_synthetic_dataset,
    write_table,
)

__all__ = ["main", "toc_notebooks", "execute_book"]


class CommandError(Exception):
    """A failure the command reports in one line and exits with `code`."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- data


def _cmd_convert(args: argparse.Namespace) -> None:
    convert = {"monuseg": convert_monuseg, "cpm17": convert_cpm17}[args.format]
    for split_dir in convert(args.src, args.dst, split=args.split):
        n = len(list((split_dir / "images").glob("*.png")))
        print(f"{split_dir}: {n} images")


def _cmd_synth(args: argparse.Namespace) -> None:
    config = get_profile(args.profile).synthetic
    write_synthetic_dataset(args.dst, config)
    print(f"{args.dst}: {config.n_train} train and {config.n_test} test tiles of {config.shape[0]}x{config.shape[1]}")


# --------------------------------------------------------------------------- pseudo labels


def _cmd_pseudo_labels(args: argparse.Namespace) -> None:
    from .io import build_pseudo_labels

    profile = get_profile(args.profile)
    result = build_pseudo_labels(
        args.data_dir, args.out, profile.pseudo, split=args.split, seed=args.seed, workers=args.workers,
        progress=not args.quiet,
    )
    print(
        f"{result.directory}: pseudo labels of {len(result.names)} images; "
        f"{len(result.kept)} of {result.n_patches} patches kept (alpha = {profile.pseudo.keep_fraction:.0%})"
    )


# --------------------------------------------------------------------------- train and segment


def _cmd_train(args: argparse.Namespace) -> None:
    from .io import train_self_training

    profile = get_profile(args.profile)
    trainer, checkpoint = train_self_training(
        args.data_dir, args.out, profile, seed=args.seed, device=args.device or None, workers=args.workers,
        restart=args.restart, progress=not args.quiet,
    )[-1]
    last = trainer.history[-1] if trainer.history else {}
    print(f"{checkpoint}: {trainer.epoch} epochs" + (f", last loss {last['loss']:.4f}" if last else ""))


def _cmd_segment(args: argparse.Namespace) -> None:
    from .data import read_image, write_image, write_label
    from .infer import measure_nuclei, segment_image
    from .io import load_checkpoint, train_self_training
    from .stain import nonnegative_unmix, rgb_to_od
    from .train import Trainer
    from .viz import outline_overlay

    profile = get_profile(args.profile)
    images = {Path(p).stem: read_image(p) for p in args.images}
    if len(images) != len(args.images):
        raise CommandError("two input images share a file name; their outputs would collide")
    patch = profile.pseudo.patch_size
    epochs = args.finetune_epochs
    for path, image in zip(args.images, images.values()):
        if min(image.shape[:2]) < patch and (epochs > 0 or not args.model):
            need = "fine-tuning needs one (use --finetune-epochs 0)" if args.model else \
                "training on it needs one (give a trained network with --model)"
            raise DataError(path, f"image of {image.shape[0]}x{image.shape[1]} pixels is smaller than a "
                                  f"{patch}x{patch} patch; {need}")
    out = Path(args.out)
    learned = "--instances learned needs a network trained with the learned separation output (distance_weight > 0)"
    if args.instances == "learned" and not args.model and profile.train.distance_weight == 0:
        raise CommandError(f"{learned}; the {profile.name!r} profile trains none")
    if args.model:
        try:
            trainer = Trainer.from_state(load_checkpoint(args.model), device=args.device or None)
        except ValueError as exc:
            raise DataError(args.model, str(exc)) from None
        if args.instances == "learned" and trainer.model.architecture.out_channels < 3:
            raise DataError(args.model, f"{learned}; this one has none")
    else:
        # Fully label-free on the given images: they, and only they, are the training set.
        shutil.rmtree(out / ".train-data", ignore_errors=True)
        staging = out / ".train-data" / "train" / "images"
        for name, image in images.items():
            write_image(staging / f"{name}.png", image)
        trainer, _ = train_self_training(out / ".train-data", out / ".run", profile, seed=args.seed,
                                         device=args.device or None, progress=not args.quiet)[-1]
    for name, image in images.items():
        result = segment_image(image, trainer, profile, finetune_epochs=epochs, method=args.instances, seed=args.seed,
                               tta=args.tta)
        if int(result.label.max()) > 65535:
            raise CommandError(f"{name}: more than 65535 nuclei do not fit a 16-bit label PNG")
        write_label(out / f"{name}_label.png", result.label)
        write_image(out / f"{name}_overlay.png", outline_overlay(image, result.label))
        hema = nonnegative_unmix(rgb_to_od(image), result.pseudo.stains)[..., 0]
        table = measure_nuclei(result.label, hema)
        rows = [dict(zip(table, values)) for values in zip(*table.values())]
        write_table(out / f"{name}_nuclei.csv", rows, columns=list(table))
        print(f"{name}: {int(result.label.max())} nuclei -> {out / (name + '_label.png')}")


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


def toc_notebooks(toc: str | os.PathLike[str], *, executed_dir: str = "book/executed") -> list[str]:
    """Names of the notebooks that ``_toc.yml`` takes from `executed_dir`, in book order.

    Each name ``N`` is executed from ``notebooks/N.py`` into ``executed_dir/N.ipynb``.
    """
    import yaml

    with open(toc) as f:
        tree = yaml.safe_load(f)
    names: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            file = node.get("file")
            if isinstance(file, str) and file.startswith(executed_dir + "/"):
                names.append(Path(file).name.removesuffix(".ipynb"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return names


def _has_display_output(nb: object) -> bool:
    kinds = {"display_data", "execute_result"}
    return any(
        out.get("output_type") in kinds for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )


def execute_book(
    *,
    book_dir: Path,
    parameters: dict[str, object],
    only: Sequence[str] = (),
    quiet: bool = False,
    timings: Path | None = None,
) -> dict[str, float]:
    """Execute the book's notebooks with papermill, in ``_toc.yml`` order; returns each one's wall time (s).

    Each ``notebooks/N.py`` (jupytext py:percent) runs with `parameters` in
    `book_dir` and is written to ``book/executed/N.ipynb`` only if it ran to
    the end and shows at least one output.  The ``parameters`` and
    ``injected-parameters`` cells are tagged ``remove-cell`` so the book does
    not show them.  With `timings`, each notebook's wall time is merged into
    that JSON file as soon as it has run, so that later notebooks (the
    reproduction report) can read the stages before them.

    Raises
    ------
    CommandError
        If a notebook is missing, fails, or shows no output.
    """
    import jupytext
    import nbformat
    import papermill

    names = toc_notebooks(book_dir / "_toc.yml")
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise CommandError(f"_toc.yml: no notebook named {', '.join(unknown)} (known: {', '.join(names)})")
        names = [n for n in names if n in only]
    seconds: dict[str, float] = {}
    for name in names:
        source = book_dir / "notebooks" / f"{name}.py"
        if not source.is_file():
            raise CommandError(f"{source}: notebook listed in _toc.yml not found")
        nb = jupytext.read(source)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        target = book_dir / "book" / "executed" / f"{name}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".ipynb", dir=target.parent)
        os.close(fd)
        start = time.perf_counter()
        try:
            if not quiet:
                print(f"[book] {name}", file=sys.stderr)
            try:
                out = papermill.execute_notebook(
                    nb, tmp, parameters=parameters, kernel_name="python3", cwd=str(book_dir),
                    progress_bar=not quiet, log_output=False,
                )
            except papermill.PapermillExecutionError as exc:
                raise CommandError(f"{source}: cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}", code=1) from None
            for cell in out.cells:
                tags = cell.metadata.get("tags", [])
                if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
                    cell.metadata["tags"] = [*tags, "remove-cell"]
            if not _has_display_output(out):
                raise CommandError(f"{source}: executed, but shows no output", code=1)
            nbformat.write(out, tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        seconds[name] = round(time.perf_counter() - start, 1)
        if not quiet:
            print(f"[book] {name}: {seconds[name]:.1f} s", file=sys.stderr)
        if timings is not None:
            recorded = json.loads(timings.read_text()) if timings.is_file() else {}
            with atomic_path(timings) as tmp:
                tmp.write_text(json.dumps({**recorded, name: seconds[name]}, indent=2) + "\n")
    return seconds


def _notebook_parameters(items: Sequence[str], *, reserved: dict[str, object]) -> dict[str, object]:
    """``NAME=VALUE`` strings as papermill parameters; values are Python literals, else strings."""
    out: dict[str, object] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise CommandError(f"--param {item!r}: expected NAME=VALUE")
        if name in reserved:
            raise CommandError(f"--param {name}: set by its own option (--{name.replace('_', '-')})")
        try:
            out[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[name] = text
    return out


def _cmd_book(args: argparse.Namespace) -> None:
    book_dir = Path(args.book_dir).resolve()
    run_dir = Path(args.run_dir or f"runs/{args.profile}").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    data_dir = resolve_dataset(args.data_dir, run_dir, get_profile(args.profile).synthetic)
    parameters = {
        "data_dir": str(data_dir),
        "run_dir": str(run_dir),
        "profile": args.profile,
        "seed": args.seed,
        "device": args.device,
    }
    if args.cpm17_dir:
        parameters["cpm17_dir"] = str(Path(args.cpm17_dir).resolve())
    parameters |= _notebook_parameters(args.param, reserved=parameters)
    seconds = execute_book(book_dir=book_dir, parameters=parameters, only=args.only, quiet=args.quiet,
                           timings=run_dir / "timings.json")
    width = max(map(len, seconds), default=0)
    print(f"executed {len(seconds)} notebooks (profile {args.profile}, data {data_dir}); wall time per stage:")
    for name, s in seconds.items():
        print(f"  {name:<{width}}  {s:8.1f} s")
    print(f"  {'total':<{width}}  {sum(seconds.values()):8.1f} s")


# --------------------------------------------------------------------------- entry point


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
    synth.add_argument("--profile", default="smoke", choices=list(PROFILES))
    synth.set_defaults(func=_cmd_synth)

    pseudo = sub.add_parser("pseudo-labels", help="label-free pseudo labels and purified patches of a split")
    pseudo.add_argument("data_dir", help="dataset root in the uniform layout (labels are not read)")
    pseudo.add_argument("--out", required=True, help="run directory; results go to OUT/pseudo/<split>/<key>/")
    pseudo.add_argument("--split", default="train")
    pseudo.add_argument("--profile", default="smoke", choices=list(PROFILES))
    pseudo.add_argument("--seed", type=int, default=0)
    pseudo.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    pseudo.add_argument("--quiet", action="store_true", help="no progress bar")
    pseudo.set_defaults(func=_cmd_pseudo_labels)

    train = sub.add_parser("train", help="train SSimNet on the pseudo labels of a training split")
    train.add_argument("data_dir", help="dataset root in the uniform layout (labels are not read)")
    train.add_argument("--out", required=True, help="run directory")
    train.add_argument("--profile", default="smoke", choices=list(PROFILES))
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="", help="torch device (default: cuda if present, else cpu)")
    train.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    train.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=_cmd_train)

    segment = sub.add_parser("segment", help="segment nuclei in H&E images, without labels")
    segment.add_argument("images", nargs="+", help="RGB images (PNG, TIFF, JPEG)")
    segment.add_argument("--out", required=True, help="output folder")
    segment.add_argument("--model", help="checkpoint from 'ssimnet train' (default: train on the given images)")
    segment.add_argument("--profile", default="cpu", choices=list(PROFILES))
    segment.add_argument("--finetune-epochs", type=int, default=0,
                         help="per-image fine-tuning epochs (default 0; the paper uses 5, which lowered AJI on MoNuSeg "
                              "in the cpu profile)")
    segment.add_argument("--instances", choices=list(INSTANCE_METHODS), default=None, help="instance method")
    segment.add_argument("--tta", action="store_true", help="average the prediction over 8 orientations (8x slower)")
    segment.add_argument("--seed", type=int, default=0)
    segment.add_argument("--device", default="", help="torch device (default: cuda if present, else cpu)")
    segment.add_argument("--quiet", action="store_true", help="no progress bars")
    segment.set_defaults(func=_cmd_segment)

    evaluate = sub.add_parser("evaluate", help="score predicted instance maps against ground truth")
    evaluate.add_argument("gt_dir", help="folder of ground-truth label PNGs (or a split folder with labels/)")
    evaluate.add_argument("pred_dir", help="folder of predicted label PNGs with the same names")
    evaluate.add_argument("--csv", help="also write the per-image table here")
    evaluate.set_defaults(func=_cmd_evaluate)

    book = sub.add_parser("book", help="execute the book's notebooks with papermill")
    book.add_argument("--profile", default="smoke", choices=list(PROFILES))
    book.add_argument("--data-dir", default="", help="dataset root (default: the profile's synthetic data)")
    book.add_argument("--run-dir", default="", help="where results go (default: runs/<profile>)")
    book.add_argument("--seed", type=int, default=0)
    book.add_argument("--device", default="", help="torch device (default: cuda if present, else cpu)")
    book.add_argument("--cpm17-dir", default="", help="CPM17 in the uniform layout, for Table 2 (optional)")
    book.add_argument("--only", nargs="*", default=[], help="execute only these notebooks (names as in _toc.yml)")
    book.add_argument("--book-dir", default=".", help="folder holding _toc.yml and notebooks/")
    book.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                      help="a further notebook parameter, e.g. runs=3 (with --only, for one notebook's own)")
    book.add_argument("--quiet", action="store_true", help="no progress output")
    book.set_defaults(func=_cmd_book)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except (DataError, CommandError) as exc:
        print(f"ssimnet: error: {exc}", file=sys.stderr)
        return getattr(exc, "code", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
