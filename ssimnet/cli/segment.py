"""``ssimnet segment``: options parsed into a :class:`~ssimnet.tool.segmenter.Segmenter` and a batch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace

from ..config import get_profile
from ..data import DataError, DataErrors, output_folder, write_table
from ..tool.pixel_size import AUTO
from .common import CommandError, warn

__all__ = ["OVERRIDES", "cmd_segment", "ShippedVersion"]


#: ``segment`` options that override one of the network's stored inference settings (InferenceConfig fields).
OVERRIDES = ("finetune_epochs", "instances", "min_object_probability", "fallback_below", "tta", "normalize")


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    return {name: getattr(args, name) for name in OVERRIDES if getattr(args, name) is not None}


def _option(exc: Exception) -> str:
    """An InferenceConfig error in the command line's words (``--instances learned needs ...``,
    ``--min-object-probability: ...``)."""
    text = str(exc)
    if text.startswith("instances '"):
        method, _, rest = text.removeprefix("instances '").partition("' ")
        return f"--instances {method} {rest}"
    for name in OVERRIDES:
        if text.startswith(name):
            return f"--{name.replace('_', '-')}: {text}"
    return text


def _segmenter(args: argparse.Namespace, profile, overrides: dict[str, object]):
    """The segmenter of --model (default: the shipped network) with the command's overrides, checked before
    any image is read; with --adapt, (None, its settings): the images train their own network."""
    from ..tool.batch import load_segmenter

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
    try:  # a network trained here on the images themselves has seen them as they are: no normalisation unless
        # asked, no references of another training set's nuclei, and no confidence threshold of another network
        settings = replace(profile.inference, **{"normalize": "off", "nucleus_scale": None, "nucleus_area": None,
                                                 "fallback_below": None, **overrides})
        settings.check_network(profile.train.architecture)
    except ValueError as exc:
        raise CommandError(_option(exc).replace("this one has none", f"the {profile.name!r} profile trains none")) from None
    return None, settings


def cmd_segment(args: argparse.Namespace) -> None:
    from ..data import file_digest
    from ..tool.batch import (
        SUMMARY_COLUMNS,
        BatchSettings,
        clean_temporaries,
        find_images,
        finished_row,
        job_key,
        read_images,
        run_batch,
        summary_rows,
        train_on_images,
    )
    from ..tool.segmenter import Segmenter, check_references
    from ..tool.slide_reader import is_slide
    from ..tool.tissue import read_roi

    if args.mpp is not None and args.adapt:
        raise CommandError("--mpp resamples the images for a trained network; it does not go with --adapt")
    if args.mpp is not None and args.mpp != AUTO:
        from ..tool.resample import scale_factor

        try:
            scale_factor(args.mpp)  # the check the batch relies on, made before any output
        except ValueError as exc:
            raise CommandError(f"--mpp {exc}") from None
    profile = get_profile(args.profile).for_tool()
    segmenter, settings = _segmenter(args, profile, _overrides(args))
    if args.mpp == AUTO:
        try:
            check_references(settings)  # before any output folder is made
        except ValueError:
            raise DataError(segmenter.path, "--mpp auto compares the images' nuclei with the network's training "
                                            "images', and this network carries no references of them (a network "
                                            "of ssimnet train does)") from None
    out = output_folder(args.out)
    clean_temporaries(out)  # what an interrupted run left
    # Training and fine-tuning cut the image into patches; plain prediction takes any size.
    why = ("training on it needs one (segment it without --adapt)" if args.adapt else
           "fine-tuning needs one (use --finetune-epochs 0)")
    min_side = profile.pseudo.patch_size if (settings.finetune_epochs > 0 or args.adapt) else 1
    jobs = find_images(args.images, exclude=out)  # never its own outputs
    slides = [job for job in jobs if is_slide(job.path)]
    if slides and args.adapt:
        raise CommandError(f"--adapt trains on whole images; {slides[0].path} is a slide: segment it without --adapt")
    if args.roi is not None:
        if len(slides) != 1 or len(jobs) != 1:
            raise CommandError("--roi outlines one slide: give exactly one slide with it")
        read_roi(args.roi)  # a bad file is reported before any work
    batch = BatchSettings(inference=settings, seed=args.seed, mpp=args.mpp, min_side=min_side, why=why,
                          model=file_digest(segmenter.path) if segmenter else "", pseudo=profile.pseudo,
                          roi=str(args.roi or ""), geojson_gz=args.geojson_gz)
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
            warn(f"{job.path}: {message}")
        if not args.quiet:
            bar.write(f"{job.name}: {result['nuclei']} nuclei -> {out / job.name}_*")

    try:
        errors += run_batch(todo, out, batch, segmenter, workers=args.workers, scheduler=args.scheduler,
                            on_done=done, keys=keys, progress=not args.quiet) if todo else []
    finally:
        bar.close()
    rows = summary_rows(out, jobs, keys)
    if rows:  # no partial output when every image failed
        write_table(out / "summary.csv", [{k: r.get(k) for k in SUMMARY_COLUMNS} for r in rows], columns=SUMMARY_COLUMNS)
        print(f"{len(rows)} of {len(jobs)} images segmented; summary: {out / 'summary.csv'}")
    if errors:  # in the order the images were given, whichever worker finished first
        order = {job.path: i for i, job in enumerate(jobs)}
        raise DataErrors(sorted(errors, key=lambda e: order.get(e.path, len(order))))


class ShippedVersion(argparse.Action):
    """``segment --version``: the package's version and the shipped network's card, read when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from .. import __version__
        from ..tool.shipped import describe, read_card

        try:
            text = describe(read_card())
        except DataError as exc:
            text = f"no shipped model: {exc}"
        print(f"ssimnet {__version__}\n{text}")
        parser.exit()

