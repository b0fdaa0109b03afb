"""Segmenting many images to files: inputs, resumable outputs, large regions, worker processes and Dask.

``ssimnet segment`` calls :func:`ssimnet.tool.inputs.find_images` on its inputs (files, folders
searched recursively, glob patterns), then :func:`segment_file` on each image
-- in this process, in a pool of worker processes, or on a Dask cluster
(:func:`run_batch`).  Every image gets, under the output folder and its path
relative to the input folder:

- ``<name>_label.png`` (16-bit instance map; ``<name>_label.tif``, 32-bit,
  for large regions or more than 65535 nuclei),
- ``<name>_overlay.png`` (outlines on the image; not for large regions),
- ``<name>_nuclei.csv`` (one row per nucleus, :func:`ssimnet.predict.nuclei.measure_nuclei`),
- ``<name>_nuclei.geojson`` (QuPath detections, :mod:`ssimnet.tool.geojson`),
- ``<name>_summary.json``, written last: an image with it is done, and is
  skipped when the batch is run again unless ``overwrite``.

:func:`summary_rows` gathers the per-image summaries into ``summary.csv``.
Images larger than ``SegmentConfig.region_side`` are segmented tile by tile
(:mod:`ssimnet.tool.region`), so memory stays bounded by a tile.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import (
    DEFAULT_PSEUDO,
    DEFAULT_SEED,
    DEFAULT_SLIDE,
    InferenceConfig,
    Profile,
    PseudoLabelConfig,
    SlideConfig,
)
from ..data import (
    DataError,
    atomic_path,
    check_image,
    read_image,
    write_image,
    write_label,
    write_table,
)
from ..errors import InputWarning, SegmentationWarning
from ..fingerprint import code_fingerprint
from ..net.onnxnet import OnnxNetwork
from .inputs import Job, find_images, output_name, read_images  # noqa: F401  (importable from here)
from .pixel_size import AUTO
from .segmenter import Segmenter, concatenate_tables
from .workers import portable, worker_init, worker_segmenter

if TYPE_CHECKING:
    from ..net.train import Trainer

__all__ = ["BatchSettings", "train_on_images", "load_segmenter", "output_paths", "job_key", "finished_row", "is_done",
           "clean_temporaries", "segment_file", "summary_rows", "SUMMARY_COLUMNS", "run_batch"]

#: Columns of ``summary.csv``, one row per image.
SUMMARY_COLUMNS = ["image", "source", "width", "height", "nuclei", "nuclei_per_megapixel", "mean_area", "median_area",
                   "mean_eccentricity", "mean_hematoxylin", "tiles", "seconds", "normalization", "mpp", "confidence",
                   "fallback"]


def train_on_images(images: Mapping[str, np.ndarray], out: Path, profile: Profile, *, seed: int,
                    device: str | None = None, progress: bool = True) -> Trainer:
    """A network trained label-free on `images` (``segment --adapt``): they, and only they, are the training set.

    They are written to ``<out>/.train-data`` and the run is cached in ``<out>/.run``
    (:func:`ssimnet.runs.pipeline.train_self_training`), so a resumed batch reuses it.
    """
    import shutil

    from ..runs.pipeline import train_self_training

    shutil.rmtree(out / ".train-data", ignore_errors=True)
    for name, image in images.items():
        write_image(out / ".train-data" / "train" / "images" / f"{name.replace('/', '__')}.png", image)
    return train_self_training(out / ".train-data", out / ".run", profile, seed=seed, device=device,
                               progress=progress)[-1][0]


#: A temporary file of an output being written (:func:`ssimnet.data.atomic_path`): ``.<output>.<8 random
#: characters><suffix>``, for the outputs :func:`output_paths` and
#: :func:`ssimnet.tool.slide_files.slide_paths` name, and ``summary.csv``.
_TEMPORARY = re.compile(r"\.(.*(_label\.png|_label\.tif|_overlay\.png|_nuclei\.csv|_nuclei\.geojson|_summary\.json"
                        r"|_nuclei\.csv\.gz|_nuclei\.geojson\.gz|_tissue\.png|_thumbnail\.png)"
                        r"|summary\.csv)\.\w{8}\.(png|tif|csv|geojson|json|gz)")


def clean_temporaries(out: Path, *, older_than: float = 3600.0) -> list[Path]:
    """Remove the temporaries an interrupted run left under `out` (killed while writing an output); returns them.

    Only files of that pattern last changed more than `older_than` seconds ago go, so that a run writing
    into the same folder keeps its own.
    """
    now, removed = time.time(), []
    for path in out.rglob(".*"):
        if _TEMPORARY.fullmatch(path.name) and path.is_file() and now - path.stat().st_mtime > older_than:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def output_paths(out: Path, name: str) -> dict[str, Path]:
    """Every output file of image `name` under `out` (the label's suffix is decided when written)."""
    base = out / name
    return {kind: base.with_name(f"{base.name}_{file}") for kind, file in
            (("label", "label.png"), ("overlay", "overlay.png"), ("nuclei", "nuclei.csv"),
             ("geojson", "nuclei.geojson"), ("summary", "summary.json"))}


def job_key(job: Job, settings: BatchSettings) -> str:
    """What an image's outputs are made from: the image's bytes, the settings, the model and the code that
    segments and writes them."""
    from ..data import file_digest
    from ..runs.store import stage_key

    try:
        image = file_digest(job.path)
    except OSError:
        image = "unreadable"
    try:
        roi = file_digest(settings.roi) if settings.roi else ""
    except OSError:
        roi = "unreadable"
    return stage_key(image, settings, roi)


def finished_row(out: Path, name: str, key: str) -> dict[str, object] | None:
    """The summary row of image `name` if an earlier run finished it from `key` (:func:`job_key`), else None.

    The summary is written last, so an image with it is done.
    """
    try:
        row = json.loads(output_paths(out, name)["summary"].read_text())
    except (OSError, ValueError):
        return None
    return row if row.get("key") == key else None


def is_done(out: Path, job: Job, settings: BatchSettings) -> bool:
    """Whether an earlier run finished this image, from these bytes with these settings."""
    return finished_row(out, job.name, job_key(job, settings)) is not None


@dataclass(frozen=True)
class BatchSettings:
    """What every image of a batch is segmented with, besides the network (picklable, for worker processes and Dask).

    `inference` is the segmenter's settings after the command's overrides
    (:attr:`ssimnet.tool.segmenter.Segmenter.settings`); `model` keys the outputs
    by the network's file and `code` by the code that segments and writes them
    (:func:`ssimnet.fingerprint.code_fingerprint` of its files' bytes, taken
    once for the whole batch).
    """

    inference: InferenceConfig
    seed: int = DEFAULT_SEED
    mpp: float | str | None = None  # the images' microns per pixel (None: as they are; "auto": their nuclei's)
    min_side: int = 1
    why: str = ""
    model: str = ""  # digest of the network's file ("" when the images train their own network)
    pseudo: PseudoLabelConfig = DEFAULT_PSEUDO
    slide: SlideConfig = DEFAULT_SLIDE  # how a whole slide's tissue is found (ssimnet.tool.slide)
    roi: str = ""  # a GeoJSON file of polygons a slide is segmented within ("" the whole tissue)
    geojson_gz: bool = False  # a slide's GeoJSON gzipped too
    code: str = field(default_factory=lambda: code_fingerprint("segment_files", normalized=False))


def _summary(job: Job, shape: tuple[int, ...], table: dict[str, np.ndarray], tiles: int, seconds: float) -> dict[str, object]:
    """An image's row of ``summary.csv``; a mean over no nuclei is None (``null`` in JSON, which has no NaN,
    and an empty cell in the CSV, whether the row is new or read back from an earlier run)."""
    area = np.asarray(table["area"], float)
    mean = (lambda v: float(np.nanmean(v)) if len(v) and np.isfinite(v).any() else None)
    return {"image": job.name, "source": str(job.path), "width": int(shape[1]), "height": int(shape[0]),
            "nuclei": len(area), "nuclei_per_megapixel": round(len(area) / (shape[0] * shape[1]) * 1e6, 2),
            "mean_area": mean(area), "median_area": float(np.median(area)) if len(area) else None,
            "mean_eccentricity": mean(np.asarray(table["eccentricity"], float)),
            "mean_hematoxylin": mean(np.asarray(table["mean_hematoxylin"], float)),
            "tiles": tiles, "seconds": round(seconds, 2)}


def _write_geojson(path: Path, features: Iterable[dict[str, object]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write('{"type": "FeatureCollection", "features": [')
        for i, feature in enumerate(features):
            f.write((",\n" if i else "\n") + json.dumps(feature))
        f.write("\n]}\n")


def _rows(table: dict[str, np.ndarray]) -> list[dict[str, object]]:
    return [dict(zip(table, values)) for values in zip(*(np.asarray(v).tolist() for v in table.values()))]


def load_segmenter(model: str | os.PathLike[str] | None, *, predict_only: bool, device: str | None = None) -> Segmenter:
    """The segmenter of a batch: the network of `model` with its stored settings.

    `model` is a checkpoint (``ssimnet train``) or its ONNX export
    (:mod:`ssimnet.net.onnxnet`); by default the network shipped in the package
    (:mod:`ssimnet.tool.shipped`, its bytes checked), as its ONNX export when it
    only predicts on the CPU, which needs no torch, and else as its checkpoint.

    Raises
    ------
    DataError
        If the file is missing or damaged, or is an ONNX export and the batch
        does more than predict on the CPU.
    """
    from .shipped import check_shipped

    path = Path(model) if model else check_shipped(onnx=predict_only)
    if path.suffix.lower() == ".onnx" and not predict_only:
        raise DataError(path, "an ONNX network only predicts on the CPU: give its torch checkpoint to fine-tune "
                              "or to use --device")
    return Segmenter.from_checkpoint(path, device=device)


def load_network(model: str | os.PathLike[str] | None, *, predict_only: bool,
                 device: str | None = None) -> tuple[Trainer | OnnxNetwork, Path]:
    """Deprecated (0.1): the network of :func:`load_segmenter` and its file; goes in 0.3."""
    warnings.warn("ssimnet.batch.load_network is deprecated: use load_segmenter (or ssimnet.Segmenter.from_checkpoint)",
                  DeprecationWarning, stacklevel=2)
    segmenter = load_segmenter(model, predict_only=predict_only, device=device)
    return segmenter.network, segmenter.path


def segment_file(job: Job, out: Path, settings: BatchSettings, segmenter: Segmenter, *,
                 client: object | None = None, workers: int = 1, key: str | None = None,
                 progress: bool = False) -> dict[str, object]:
    """Segment one image file with `segmenter` (its network, with ``settings.inference``) and write its outputs;
    returns its summary row.

    A whole slide (:func:`ssimnet.tool.slide_reader.is_slide`) is read lazily
    and segmented tile by tile (:mod:`ssimnet.tool.slide_files`), its tiles on
    the Dask `client`'s workers when given one, else in `workers` processes,
    with a bar of its tiles when `progress`.  `key` is :func:`job_key`, when
    the caller has it.

    The row's ``normalization`` says what was done with the image's stains,
    its ``mpp`` the pixel size it was segmented at (given, the slide's, or
    with ``mpp="auto"`` what its nuclei say; None: as it is), its ``confidence`` the network's in its nuclei and
    ``fallback`` whether they are the classical watershed's instead (``fallback_below``); its ``warnings`` list what was changed on reading it
    (:class:`ssimnet.errors.InputWarning`), its stain fallbacks and what the
    segmenter warned of (:class:`ssimnet.errors.SegmentationWarning`), if any.
    Both are in the image's summary JSON too.

    Raises
    ------
    DataError
        If the image cannot be read or segmented (it names the file).
    """
    from ..pseudo.stain import StainFallbackWarning
    from .slide_reader import is_slide

    start = time.perf_counter()
    segmenter = Segmenter(segmenter.network, settings.inference, pseudo=settings.pseudo, path=segmenter.path)
    reported = (InputWarning, StainFallbackWarning, SegmentationWarning)
    key = key or job_key(job, settings)
    slide = is_slide(job.path)
    with warnings.catch_warnings(record=True) as caught:  # reported with the image's name
        for category in reported:
            warnings.simplefilter("always", category)
        if slide:
            from .slide_files import segment_slide

            made = segment_slide(job.path, out, job.name, segmenter, key=key, seed=settings.seed,
                                 mpp=None if settings.mpp == AUTO else settings.mpp,  # the slide's own, if any
                                 slide=settings.slide, roi=settings.roi, geojson_gz=settings.geojson_gz,
                                 client=client, workers=workers, progress=progress)
            row = {**_summary(job, made.shape, made.columns, made.tiles, time.perf_counter() - start),
                   "normalization": made.normalization, "mpp": made.slide.get("mpp"), "slide": made.slide}
        else:
            image = check_image(job.path, read_image(job.path), min_side=settings.min_side, why=settings.why)
            row = _segment_and_write(job, image, out, settings, segmenter, start)
    row["warnings"] = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, reported)))
    made_with = {"inference": asdict(settings.inference), "mpp": settings.mpp, "seed": settings.seed,
                 "model": settings.model}
    if slide:
        made_with.update(slide=asdict(settings.slide), roi=settings.roi)
    with atomic_path(output_paths(out, job.name)["summary"]) as tmp:  # written last: the image is done
        tmp.write_text(json.dumps({**row, "key": key, "settings": made_with}, indent=1, allow_nan=False) + "\n")
    if slide:
        from .slide_files import finish_slide

        finish_slide(out, job.name)
    return row


def _segment_and_write(job: Job, image: np.ndarray, out: Path, settings: BatchSettings, segmenter: Segmenter,
                       start: float) -> dict[str, object]:
    from .geojson import feature_collection, nucleus_polygons
    from .viz import outline_overlay

    paths = output_paths(out, job.name)
    tiff = paths["label"].with_suffix(".tif")
    mpp = None if settings.mpp == AUTO else settings.mpp  # a large region is taken as it is
    if not segmenter.is_region(image, mpp=mpp):
        result = segmenter.segment(image, mpp=settings.mpp, seed=settings.seed)
        label, table, tiles, normalization = result.labels, result.table, result.tiles, result.normalization
        mpp, confidence, fallback = result.mpp, result.confidence, result.fallback  # mpp: given, or the nuclei's
        written = {tiff if int(label.max()) > 65535 else paths["label"], paths["overlay"]}
        if int(label.max()) > 65535:
            _write_label_tiff(tiff, label)
        else:
            write_label(paths["label"], label)
        write_image(paths["overlay"], outline_overlay(image, label))
        _write_geojson(paths["geojson"], feature_collection(nucleus_polygons(label), table)["features"])
    else:  # a large region: tile by tile into a 32-bit TIFF, the polygons streamed to the file tile by tile
        import tifffile

        tables: list[dict[str, np.ndarray]] = []
        notes: list[str] = []
        written = {tiff}
        with atomic_path(tiff) as tmp:
            region = tifffile.memmap(tmp, shape=image.shape[:2], dtype=np.uint32)

            def features() -> Iterator[dict[str, object]]:
                for part in segmenter.segment_tiles(image, region, mpp=mpp, seed=settings.seed):
                    tables.append(part.table)
                    notes.append(part.normalization)
                    polygons = nucleus_polygons(part.tile.label, offset=part.tile.offset)
                    yield from feature_collection(polygons, part.table)["features"]
                    _release_memory()

            _write_geojson(paths["geojson"], features())
            region.flush()
            del region
        tiles, normalization = len(tables), (notes[0] if notes else "")
        table, confidence, fallback = concatenate_tables(tables), None, False  # a region is the network's
    write_table(paths["nuclei"], _rows(table), columns=list(table))
    for stale in {paths["label"], tiff, paths["overlay"]} - written:  # an earlier run's, with other settings
        stale.unlink(missing_ok=True)
    return {**_summary(job, image.shape, table, tiles, time.perf_counter() - start), "normalization": normalization,
            "mpp": mpp, "confidence": confidence, "fallback": fallback}


def _release_memory() -> None:
    """Hand freed heap pages back to the system (glibc): without it, each tile's temporaries
    fragment the heap and a large region's resident memory grows tile after tile."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)  # type: ignore[union-attr]
    except (OSError, AttributeError, TypeError):  # not glibc: nothing to do
        pass


def _write_label_tiff(path: Path, label: np.ndarray) -> None:
    import tifffile

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, label.astype(np.uint32), compression="zlib")


def summary_rows(out: Path, jobs: Sequence[Job], keys: Mapping[str, str]) -> list[dict[str, object]]:
    """The summary rows of the finished images among `jobs`, in their order; `keys` maps names to :func:`job_key`."""
    rows = (finished_row(out, job.name, keys[job.name]) for job in jobs)
    return [row for row in rows if row is not None]


# ----------------------------------------------------------------------------- running a batch

def _worker_segment(job: Job, out: Path, settings: BatchSettings,
                    carried: dict[str, object] | OnnxNetwork | None = None) -> dict[str, object]:
    """One image in a pool's worker (`carried` None) or on a Dask worker (the network `carried` holds)."""
    return segment_file(job, out, settings, worker_segmenter(carried))


def run_batch(
    jobs: Sequence[Job],
    out: Path,
    settings: BatchSettings,
    segmenter: Segmenter,
    *,
    workers: int = 1,
    scheduler: str = "",
    on_done: Callable[[Job, dict[str, object] | DataError], None] | None = None,
    keys: Mapping[str, str] | None = None,
    progress: bool = False,
) -> list[DataError]:
    """Segment `jobs` into `out` with `segmenter`'s network: here, in `workers` processes, or on the Dask
    cluster at `scheduler`.

    Calls `on_done` after each image (with its summary row, or the error
    naming it); returns the errors.  ``scheduler="local"`` starts a local Dask
    cluster of `workers` processes.  Whole slides are planned and written
    here, after the images, their tiles on the cluster when there is one.
    `keys` maps names to :func:`job_key` when the caller has them; `progress`
    shows a bar of each slide's tiles.
    """
    from .slide_reader import is_slide

    errors: list[DataError] = []
    keys = keys or {}
    slides = [job for job in jobs if is_slide(job.path)]
    jobs = [job for job in jobs if job not in slides]

    def run_slides(client: object | None) -> None:
        for job in slides:
            try:
                done(job, segment_file(job, out, settings, segmenter, client=client, workers=workers,
                                       key=keys.get(job.name), progress=progress))
            except DataError as exc:
                done(job, exc)

    def done(job: Job, result: dict[str, object] | DataError) -> None:
        if isinstance(result, DataError):
            errors.append(result)
        if on_done is not None:
            on_done(job, result)

    if scheduler:
        from distributed import Client, LocalCluster, as_completed

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) if scheduler == "local" else None
        with Client(cluster if cluster is not None else scheduler) as client:
            state = client.scatter(portable(segmenter.network), broadcast=True)
            futures = {client.submit(_worker_segment, job, out, settings, state, pure=False): job for job in jobs}
            for future in as_completed(futures):
                try:
                    done(futures[future], future.result())
                except DataError as exc:
                    done(futures[future], exc)
            run_slides(client)
        if cluster is not None:
            cluster.close()
    elif workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures import as_completed as completed

        threads = max(1, (os.cpu_count() or 1) // workers)
        network = segmenter.network
        device = None if isinstance(network, OnnxNetwork) else str(network.device)
        with ProcessPoolExecutor(min(workers, len(jobs)), initializer=worker_init,
                                 initargs=(portable(network), device, threads, os.getpid())) as pool:
            futures = {pool.submit(_worker_segment, job, out, settings): job for job in jobs}
            try:
                for future in completed(futures):
                    try:
                        done(futures[future], future.result())
                    except DataError as exc:
                        done(futures[future], exc)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        run_slides(None)
    else:
        for job in jobs:
            try:
                done(job, segment_file(job, out, settings, segmenter, key=keys.get(job.name)))
            except DataError as exc:
                done(job, exc)
        run_slides(None)
    return errors
