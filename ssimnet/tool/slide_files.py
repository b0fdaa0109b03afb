"""A whole slide segmented to files: a journal of finished tiles that resumes, the outputs, and Dask.

``ssimnet segment slide.svs`` (:func:`ssimnet.tool.batch.segment_file`) comes
here for a slide (:func:`ssimnet.tool.slide_reader.is_slide`).  Under the output
folder, for a slide named ``<name>``:

- ``<name>_nuclei.geojson``: QuPath detections in level-0 pixels
  (:mod:`ssimnet.tool.geojson`); ``<name>_nuclei.geojson.gz`` too when asked;
- ``<name>_nuclei.csv.gz``: one row per nucleus, level-0 pixels (and square
  microns when the pixel size is known).  Gzipped CSV rather than Parquet: it
  needs no new dependency, every tool reads it (R, pandas, QuPath, a
  spreadsheet after ``gunzip``), and it is written as it streams;
- ``<name>_tissue.png``: the tissue mask on the thumbnail's grid;
- ``<name>_thumbnail.png``: the slide at low resolution, the tissue's outline in
  blue and the nuclei in green;
- ``<name>_summary.json``, written last (:mod:`ssimnet.tool.batch`).

Each finished tile's nuclei go to ``.<name>_tiles/<key>/<tile>.json``, written
atomically, and into the outputs as soon as the tiles before it are done
(:class:`SlideWriter`, in tile order, renamed into place at the end).  A run
killed at any point restarts at the first unfinished tile, writes the outputs
afresh from the journal and the new tiles, in the same order, and so ends with
the same bytes as an uninterrupted run.  The journal goes once the summary is
written.  On a Dask cluster (``--scheduler``) the tiles of a slide run on the
workers, each opening the slide itself; the journal and the outputs stay here.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..config import DEFAULT_SEED, DEFAULT_SLIDE, InferenceConfig, PseudoLabelConfig, SlideConfig
from ..data import DataError, atomic_path, write_image
from ..net.onnxnet import OnnxNetwork
from .slide import SlidePlan, TilePart, plan_slide, segment_slide_tile, slide_stains
from .slide_reader import SlideReader, open_slide
from .tissue import Polygon
from .workers import WORKER, portable, worker_init, worker_segmenter

if TYPE_CHECKING:
    from .segmenter import Segmenter, Stains

__all__ = ["slide_paths", "SlideWriter", "SlideResult", "segment_slide", "finish_slide"]

#: Colours of the thumbnail: nuclei, tissue outline.
NUCLEUS_COLOR, TISSUE_COLOR = (0, 200, 0), (30, 60, 255)


def slide_paths(out: Path, name: str) -> dict[str, Path]:
    """Every output of slide `name` under `out`, and its journal (``tiles``)."""
    base = out / name
    files = {kind: base.with_name(f"{base.name}_{file}") for kind, file in
             (("geojson", "nuclei.geojson"), ("geojson_gz", "nuclei.geojson.gz"), ("nuclei", "nuclei.csv.gz"),
              ("tissue", "tissue.png"), ("thumbnail", "thumbnail.png"), ("summary", "summary.json"))}
    return {**files, "tiles": base.with_name(f".{base.name}_tiles")}


def _gzip_text(path: Path) -> Iterator[io.TextIOWrapper]:
    """A text stream gzipped into `path` atomically, with no name or time in its header: the same text
    gives the same bytes."""
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
            with io.TextIOWrapper(packed, encoding="utf-8", newline="") as text:
                yield text


class SlideWriter:
    """The outputs of a slide, written while its tiles are segmented: :meth:`add` takes the tiles' parts in
    tile order (ids 1..N over the slide) as they stream; leaving the ``with`` block without an error
    finishes and renames every file at once (none is left half-written otherwise).  ``columns`` then
    holds what the summary needs (``area``, ``eccentricity``, ``mean_hematoxylin``).
    """

    def __init__(self, paths: dict[str, Path], plan: SlidePlan, *, geojson_gz: bool = False) -> None:
        from skimage.segmentation import find_boundaries

        self.paths, self.plan, self.geojson_gz = paths, plan, geojson_gz
        self.overlay = np.array(plan.thumbnail, copy=True)
        self.overlay[find_boundaries(plan.tissue, mode="inner")] = TISSUE_COLOR
        self.kept: dict[str, list[np.ndarray]] = {"area": [], "eccentricity": [], "mean_hematoxylin": []}
        self.next_tile, self.next_id, self._header = 0, 1, False
        self.columns: dict[str, np.ndarray] = {}

    def __enter__(self) -> SlideWriter:
        from contextlib import ExitStack, contextmanager

        gz = contextmanager(_gzip_text)
        self._stack = ExitStack().__enter__()
        self._table = self._stack.enter_context(gz(self.paths["nuclei"]))
        geo = self._stack.enter_context(open(self._stack.enter_context(atomic_path(self.paths["geojson"])), "w",
                                             encoding="utf-8"))
        self._streams = [geo] + ([self._stack.enter_context(gz(self.paths["geojson_gz"]))] if self.geojson_gz else [])
        self._write('{"type": "FeatureCollection", "features": [')
        self._csv = csv.writer(self._table, lineterminator="\n")
        return self

    def _write(self, text: str) -> None:
        for stream in self._streams:
            stream.write(text)

    def add(self, part: TilePart) -> None:
        """The next tile's nuclei (tile ``next_tile``)."""
        from .geojson import feature_collection
        from .viz import draw_rings

        index, n = self.next_tile, part.nuclei
        self.next_tile += 1
        if not n:
            return
        columns = {k: np.asarray(v) for k, v in part.table.items()}
        columns["id"] = columns["id"] + self.next_id - 1
        if not self._header:
            self._csv.writerow(["id", "tile", *[k for k in columns if k != "id"]])
            self._header = True
        for i in range(n):
            self._csv.writerow([int(columns["id"][i]), index, *[columns[k][i].item() for k in columns if k != "id"]])
        polygons = {int(columns["id"][i]): part.rings[i] for i in range(n)}
        for feature in feature_collection(polygons, columns)["features"]:
            self._write(("\n" if self.next_id == 1 else ",\n") + json.dumps(feature))
            self.next_id += 1
        draw_rings(self.overlay, [ring for rings in part.rings for ring in rings], scale=self.plan.scale,
                   color=NUCLEUS_COLOR)
        for k in self.kept:
            self.kept[k].append(columns[k].astype(float))

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            if self.next_tile != len(self.plan.windows):
                raise RuntimeError(f"{self.next_tile} of {len(self.plan.windows)} tiles written")
            if not self._header:  # no nuclei: the header alone
                self._csv.writerow(["id", "tile", "area", "centroid_row", "centroid_col"])
            self._write("\n]}\n")
        self._stack.__exit__(kind, error, trace)  # renames the files, or removes them after an error
        if kind is not None:
            return
        if not self.geojson_gz:
            self.paths["geojson_gz"].unlink(missing_ok=True)  # an earlier run's, asked for then
        write_image(self.paths["thumbnail"], self.overlay)
        with atomic_path(self.paths["tissue"]) as tmp:
            from PIL import Image

            Image.fromarray(self.plan.tissue.astype(np.uint8) * 255).save(tmp, format="PNG")
        self.columns = {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.kept.items()}


# ----------------------------------------------------------------------------- the journal

def _part_path(tiles: Path, index: int) -> Path:
    return tiles / f"{index:06d}.json"


def _write_part(tiles: Path, index: int, part: TilePart) -> None:
    with atomic_path(_part_path(tiles, index)) as tmp:
        tmp.write_text(json.dumps(part.to_json(), allow_nan=True))


def _read_part(tiles: Path, index: int) -> TilePart:
    return TilePart.from_json(json.loads(_part_path(tiles, index).read_text()))


def _journal(root: Path, key: str) -> Path:
    """The journal of this run's key under `root`; journals of other keys (other settings, bytes or code) go."""
    if root.is_dir():
        for other in root.iterdir():
            if other.name != key:
                shutil.rmtree(other, ignore_errors=True) if other.is_dir() else other.unlink(missing_ok=True)
    (root / key).mkdir(parents=True, exist_ok=True)
    return root / key


# ----------------------------------------------------------------------------- a slide

class SlideResult(NamedTuple):
    """What a slide's summary is made of: the nuclei's ``area``, ``eccentricity`` and ``mean_hematoxylin``,
    the level-0 shape, the tiles segmented, what was done with the stains, and the slide's own record."""

    columns: dict[str, np.ndarray]
    shape: tuple[int, int]
    tiles: int
    normalization: str
    slide: dict[str, object]


def segment_slide(path: Path, out: Path, name: str, segmenter: Segmenter, *, key: str, seed: int = DEFAULT_SEED,
                  mpp: float | None = None, slide: SlideConfig = DEFAULT_SLIDE, roi: str = "",
                  geojson_gz: bool = False, client: object | None = None, workers: int = 1,
                  progress: bool = False) -> SlideResult:
    """Segment the slide at `path` into `out` as `name`, tile by tile, resuming from the journal of `key`
    (what keys the outputs: :func:`ssimnet.tool.batch.job_key`).  The caller writes the summary last,
    then calls :func:`finish_slide`.

    The tiles run here, in `workers` processes, or on the Dask `client`'s
    workers; the outputs are the same bytes whichever runs them.  `mpp`
    overrides the slide's pixel size; `roi` is a GeoJSON file of polygons.

    Raises
    ------
    DataError
        If the slide or the annotation cannot be read, or the slide has no tissue.
    """
    from .tissue import read_roi

    start = time.perf_counter()
    paths = slide_paths(out, name)
    polygons = read_roi(roi) if roi else None
    with open_slide(path) as reader:
        plan = plan_slide(reader, settings=segmenter.settings, slide=slide, mpp=mpp, roi=polygons)
        if not plan.windows:
            raise DataError(path, "has no tissue" + (" inside the --roi polygons" if roi else "")
                            + " (nothing saturated enough on its thumbnail)")
        stains = slide_stains(reader, plan, segmenter, slide=slide, seed=seed)
        tiles = _journal(paths["tiles"], key)
        journalled = {i for i in range(len(plan.windows)) if _part_path(tiles, i).is_file()}
        todo = [i for i in range(len(plan.windows)) if i not in journalled]
        task = _Task(path, _light(plan), stains, segmenter.settings, segmenter.pseudo, seed, polygons)
        if client is not None:
            finished = _on_dask(client, task, todo, segmenter)
        elif workers > 1 and len(todo) > 1:
            finished = _in_pool(workers, task, todo, segmenter)
        else:
            finished = ((i, segment_slide_tile(reader, plan.windows[i], segmenter, stains, plan=plan, seed=seed,
                                               roi=polygons)) for i in todo)
        from tqdm.auto import tqdm

        finished = tqdm(finished, total=len(todo), unit="tile", disable=not progress, desc=name, leave=False)
        waiting: dict[int, TilePart] = {}  # finished out of order: written once the tiles before them are
        with SlideWriter(paths, plan, geojson_gz=geojson_gz) as writer:

            def write_ready() -> None:  # the outputs grow while the tiles run, in tile order
                while writer.next_tile in waiting or writer.next_tile in journalled:
                    following = writer.next_tile
                    writer.add(waiting.pop(following) if following in waiting else _read_part(tiles, following))

            write_ready()  # what an earlier run journalled
            for index, part in finished:
                _write_part(tiles, index, part)
                waiting[index] = part
                write_ready()
        columns = writer.columns
        seconds = time.perf_counter() - start
        record = {
            "format": reader.format, "levels": len(reader.shapes), "mpp": plan.mpp, "level": plan.level,
            "level_mpp": plan.level_mpp, "tiles": plan.total, "tissue_tiles": len(plan.windows),
            "tissue_megapixels": round(plan.tissue_megapixels(), 3),
            "tissue_megapixels_per_second": round(plan.tissue_megapixels() / seconds, 3),
            "resumed_tiles": len(plan.windows) - len(todo),
        }
        return SlideResult(columns, reader.shapes[0], len(plan.windows), stains.note, record)


def finish_slide(out: Path, name: str) -> None:
    """Remove a finished slide's journal (after its summary is written)."""
    shutil.rmtree(slide_paths(out, name)["tiles"], ignore_errors=True)


# ----------------------------------------------------------------------------- other processes

class _Task(NamedTuple):
    """What a worker needs to segment any tile of a slide (the plan without its pictures)."""

    path: Path
    plan: SlidePlan
    stains: Stains
    settings: InferenceConfig
    pseudo: PseudoLabelConfig
    seed: int
    roi: list[Polygon] | None


def _tile(task: _Task, index: int, carried: object | None = None) -> tuple[int, TilePart]:
    """One tile in a worker process (of a pool, or of Dask), which keeps the slide open and its network
    between tiles (:func:`ssimnet.tool.workers.worker_segmenter`)."""
    from .segmenter import Segmenter

    base = worker_segmenter(carried)  # type: ignore[arg-type]
    if WORKER.get("path") != task.path:
        if isinstance(WORKER.get("reader"), SlideReader):
            WORKER["reader"].close()  # type: ignore[union-attr]
        WORKER["reader"], WORKER["path"] = open_slide(task.path), task.path
    segmenter = Segmenter(base.network, task.settings, pseudo=task.pseudo)
    return index, segment_slide_tile(WORKER["reader"], task.plan.windows[index], segmenter, task.stains,  # type: ignore[arg-type]
                                     plan=task.plan, seed=task.seed, roi=task.roi)


def _light(plan: SlidePlan) -> SlidePlan:
    """The plan without its pictures: what a worker needs of it."""
    return plan._replace(thumbnail=np.zeros((0, 0, 3), np.uint8), tissue=np.zeros((0, 0), bool), stain_windows=[])


def _in_pool(workers: int, task: _Task, todo: list[int], segmenter: Segmenter) -> Iterator[tuple[int, TilePart]]:
    """The tiles `todo` in `workers` processes of this machine, the CPUs shared out between them; yields
    each as it finishes."""
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    network = segmenter.network
    device = None if isinstance(network, OnnxNetwork) else str(network.device)
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(min(workers, len(todo)), initializer=worker_init,
                             initargs=(portable(network), device, threads, os.getpid())) as pool:
        futures = [pool.submit(_tile, task, index) for index in todo]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _on_dask(client: object, task: _Task, todo: list[int], segmenter: Segmenter) -> Iterator[tuple[int, TilePart]]:
    """The tiles `todo` on the Dask `client`'s workers; yields each as it finishes."""
    from distributed import as_completed

    carried, shared = client.scatter([portable(segmenter.network), task], broadcast=True)  # type: ignore[attr-defined]
    futures = [client.submit(_tile, shared, index, carried, pure=False) for index in todo]  # type: ignore[attr-defined]
    for future in as_completed(futures):
        yield future.result()
