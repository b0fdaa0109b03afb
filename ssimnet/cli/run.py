"""The commands of the reproduction and the data: ``data``, ``pseudo-labels``, ``train``, ``evaluate``,
``book``, ``publish``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import BOOK_EXECUTED, BOOK_PUBLISHED, PUBLISH_FIGURES, get_profile
from ..data import DataError, atomic_path, output_file, output_folder, read_label, write_table
from .common import CommandError

__all__ = ["MODEL_FILE", "cmd_convert", "cmd_synth", "cmd_pseudo_labels", "cmd_train", "cmd_evaluate", "cmd_book",
           "cmd_publish"]

#: The network ``ssimnet train`` writes into its run folder, with its inference settings.
MODEL_FILE = "model.pt"


def cmd_convert(args: argparse.Namespace) -> None:
    from ..datasets import convert_cpm17, convert_monuseg

    convert = {"monuseg": convert_monuseg, "cpm17": convert_cpm17}[args.format]
    output_folder(args.dst)
    for split_dir in convert(args.src, args.dst, split=args.split):
        n = len(list((split_dir / "images").glob("*.png")))
        print(f"{split_dir}: {n} images")


def cmd_synth(args: argparse.Namespace) -> None:
    from ..datasets import write_synthetic_dataset

    config = get_profile(args.profile).synthetic
    write_synthetic_dataset(output_folder(args.dst), config)
    print(f"{args.dst}: {config.n_train} train and {config.n_test} test tiles of {config.shape[0]}x{config.shape[1]}")


# --------------------------------------------------------------------------- pseudo labels


def cmd_pseudo_labels(args: argparse.Namespace) -> None:
    from ..runs.pipeline import build_pseudo_labels

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


def cmd_train(args: argparse.Namespace) -> None:
    from dataclasses import asdict, replace

    from ..data import list_samples, read_image
    from ..net.checkpoint import save_model
    from ..runs.pipeline import train_self_training
    from ..tool.pixel_size import training_references
    from ..tool.segmenter import Segmenter

    profile = get_profile(args.profile).for_tool()
    out = output_folder(args.out)
    trainer = train_self_training(
        args.data_dir, out, profile, seed=args.seed, device=args.device or None,
        workers=args.workers, restart=args.restart, progress=not args.quiet,
    )[-1][0]
    model = out / MODEL_FILE
    # the network with the settings it segments with, and the size of the nuclei it learned (the pixel-size
    # check's references: its training images, segmented as they are, the network's own nuclei as segment
    # measures them for --mpp auto, before any fallback)
    plain = Segmenter(trainer, replace(profile.inference, fallback_below=None), pseudo=profile.pseudo)
    scale, area = training_references(
        (read_image(s.image_path) for s in list_samples(args.data_dir, "train", labels=False)),
        lambda image: plain.segment(image, seed=args.seed, measure=False).labels)
    save_model(model, trainer.state(), asdict(replace(profile.inference, nucleus_scale=scale, nucleus_area=area)))
    last = trainer.history[-1] if trainer.history else {}
    print(f"{model}: {trainer.epoch} epochs" + (f", last loss {last['loss']:.4f}" if last else "")
          + f"; segments with {profile.inference.instances!r} instances")


def _label_files(folder: Path) -> dict[str, Path]:
    if (folder / "labels").is_dir():
        folder = folder / "labels"
    if not folder.is_dir():
        raise DataError(folder, "folder not found")
    # `ssimnet segment` writes <name>_label.png, or .tif for a large region (beside <name>_overlay.png): <name>
    found = [p for p in sorted([*folder.glob("*.png"), *folder.glob("*.tif"), *folder.glob("*.tiff")])
             if not p.stem.endswith("_overlay")]
    files = {p.stem.removesuffix("_label"): p for p in found if p.stem.endswith("_label")}
    files.update({p.stem: p for p in found if not p.stem.endswith("_label")})
    if not files:
        raise DataError(folder, "no label PNGs or TIFFs found")
    return files


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..metrics import mean_scores, score

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


def cmd_book(args: argparse.Namespace) -> None:
    from ..book.execute import execute_book, notebook_parameters
    from ..book.results import provenance
    from ..datasets import is_synthetic, resolve_dataset

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


def cmd_publish(args: argparse.Namespace) -> None:
    from ..book.execute import toc_notebooks
    from ..book.publish import publish_run

    book_dir = Path(args.book_dir).resolve()
    names = toc_notebooks(book_dir / "_toc.yml")
    run_dir = Path(args.run_dir) if args.run_dir else None
    results_to = Path(args.results) if args.results else None
    if run_dir is not None and results_to is None:
        raise CommandError("--run-dir given without --results: say where its reference results go (e.g. results/cpu)")
    results_from = run_dir / "results" if run_dir else None
    if run_dir is not None:
        _record_chapter_times(run_dir)
    # the README's, the landing page's and the teaching page's tables, checked before anything is published
    texts = _generated_tables(book_dir, results_from or results_to, names) if results_to else {}
    sizes = publish_run(names, executed_dir=book_dir / BOOK_EXECUTED, published_dir=book_dir / BOOK_PUBLISHED,
                        results_from=results_from, results_to=results_to,
                        **PUBLISH_FIGURES._asdict())
    print(f"published {len(sizes)} chapters into {book_dir / BOOK_PUBLISHED} ({sum(sizes.values()) / 2**20:.1f} MB)")
    for page, text in texts.items():
        with atomic_path(page) as tmp:
            tmp.write_text(text)
        print(f"{page}: generated table rewritten")


def _record_chapter_times(run_dir: Path) -> None:
    """Every chapter's wall time (``timings.json``, written by ``ssimnet book``) into the run's provenance.

    The reproduction report saves the provenance before the later chapters
    have run; their times are added here, so the published provenance times
    every chapter of the run.
    """
    timings, saved = run_dir / "timings.json", run_dir / "results" / "provenance.json"
    if not (timings.is_file() and saved.is_file()):
        return
    info = json.loads(saved.read_text())
    times = {**(info.get("stage_seconds") or {}), **json.loads(timings.read_text())}
    if times != info.get("stage_seconds"):
        with atomic_path(saved) as tmp:
            tmp.write_text(json.dumps({**info, "stage_seconds": times}, indent=2) + "\n")


def _generated_tables(book_dir: Path, results: Path, chapters: list[str]) -> dict[Path, str]:
    """The README, the landing page and the teaching page with their tables rewritten from reference `results`."""
    from ..book.guide import TIMES_END, TIMES_START, times_table
    from ..book.readme import TOOL_END, TOOL_START, results_table, tool_table, with_generated_table
    from ..book.results import RESULTS, load_results
    from ..tool.shipped import read_card

    per_image, info = load_results(results, kind=RESULTS)
    card = read_card()
    pages = {book_dir / "README.md": (results_table(per_image, card, info), {}),
             book_dir / "book" / "intro.md": (tool_table(card), {"start": TOOL_START, "end": TOOL_END}),
             book_dir / "book" / "teaching.md": (times_table(chapters, info), {"start": TIMES_START, "end": TIMES_END})}
    texts = {}
    for page, (table, markers) in pages.items():
        if page.is_file():
            try:
                texts[page] = with_generated_table(page.read_text(), table, **markers)
            except ValueError as exc:
                raise CommandError(f"{page}: {exc}") from None
    return texts

