"""A whole slide planned and segmented tile by tile: the level, the tissue tiles, one stain measurement.

:func:`plan_slide` reads a low-resolution image of the slide, finds its tissue
(:func:`ssimnet.tool.tissue.find_tissue`, restricted to a QuPath annotation when
given one), picks the pyramid level whose pixel size is closest to the
network's, and cuts that level into the region tiles of
:mod:`ssimnet.tool.region` -- a core and a halo -- keeping those whose core
touches tissue.  :func:`stain_mosaic` gathers crops of tissue tiles spread over
the slide into one image, on which the stains are measured once for every tile
(:meth:`ssimnet.tool.segmenter.Segmenter.measure_stains`).
:func:`segment_slide_tile` segments one tile and returns its own nuclei --
those whose centroid lies in its core, so that a nucleus across a seam is kept
once and whole -- measured and outlined in level-0 pixels.

Everything here computes; :mod:`ssimnet.tool.slide_files` writes the outputs,
resumes and runs the tiles on Dask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..config import DEFAULT_SEED, DEFAULT_SLIDE, InferenceConfig, SlideConfig
from .region import Window, own_nuclei, tile_windows
from .slide_reader import SlideReader, best_level, read_downsampled
from .tissue import Polygon, find_tissue, inside_polygons, paint_polygons

if TYPE_CHECKING:
    from .segmenter import Segmenter, Stains

__all__ = ["SlidePlan", "plan_slide", "tissue_windows", "stain_mosaic", "slide_stains", "TilePart", "segment_slide_tile"]


class SlidePlan(NamedTuple):
    """What of a slide is segmented, and how."""

    level: int  # the pyramid level read
    downsample: float  # level-0 pixels per pixel of that level
    mpp: float | None  # microns per level-0 pixel (the slide's, or --mpp); None: unknown, read as it is
    shape: tuple[int, int]  # (height, width) of the level
    windows: list[Window]  # the tiles whose core touches tissue (within the annotation, if any), row-major,
    # each core shrunk to the tissue in it
    total: int  # tiles of the whole level
    thumbnail: np.ndarray  # the slide at low resolution
    scale: float  # level-0 pixels per thumbnail pixel
    tissue: np.ndarray  # tissue mask on the thumbnail's grid (within the annotation, if any)
    stain_windows: list[Window]  # the tiles touching tissue anywhere on the slide: where its stains are measured

    @property
    def level_mpp(self) -> float | None:
        """Microns per pixel of the level read."""
        return None if self.mpp is None else self.mpp * self.downsample

    def tissue_megapixels(self) -> float:
        """Tissue area in megapixels of level 0."""
        return float(np.count_nonzero(self.tissue)) * self.scale**2 / 1e6


def tissue_windows(windows: list[Window], mask: np.ndarray, *, scale: float, shape: tuple[int, int],
                   halo: int, margin: int = 2) -> list[Window]:
    """The `windows` whose core touches `mask` (a grid of `scale` of their pixels per mask pixel), each core
    shrunk to the bounding box of the tissue in it, `margin` mask pixels wider, and read with its `halo`
    within `shape`: edge tiles of a fragment segment its tissue, not the glass beside it.  Shrunk cores
    still never overlap, so every nucleus still belongs to one tile.

    >>> mask = np.zeros((4, 4), bool); mask[3, 0] = True
    >>> [w.core for w in tissue_windows(tile_windows((40, 40), tile=20, halo=2), mask, scale=10, shape=(40, 40),
    ...                                 halo=2, margin=0)]
    [(slice(30, 40, None), slice(0, 10, None))]
    """
    kept = []
    for window in windows:
        rows, cols = window.core
        r0, r1 = int(rows.start // scale), int(np.ceil(rows.stop / scale))
        c0, c1 = int(cols.start // scale), int(np.ceil(cols.stop / scale))
        inside = mask[r0:r1, c0:c1]
        if not inside.any():
            continue
        hit_r, hit_c = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        core_r = slice(max(rows.start, int((r0 + hit_r[0] - margin) * scale)),
                       min(rows.stop, int(np.ceil((r0 + hit_r[-1] + 1 + margin) * scale))))
        core_c = slice(max(cols.start, int((c0 + hit_c[0] - margin) * scale)),
                       min(cols.stop, int(np.ceil((c0 + hit_c[-1] + 1 + margin) * scale))))
        read = (slice(max(core_r.start - halo, 0), min(core_r.stop + halo, shape[0])),
                slice(max(core_c.start - halo, 0), min(core_c.stop + halo, shape[1])))
        kept.append(Window((core_r, core_c), read))
    return kept


def plan_slide(reader: SlideReader, *, settings: InferenceConfig, slide: SlideConfig = DEFAULT_SLIDE,
               mpp: float | None = None, roi: list[Polygon] | None = None) -> SlidePlan:
    """The plan of a slide: the level closest to the network's pixel size, and its tiles that touch tissue.

    Parameters
    ----------
    reader : SlideReader
    settings : InferenceConfig
        The segmenter's: its ``network_mpp``, ``region_tile`` and ``region_halo``.
    slide : SlideConfig
        How the tissue is found.
    mpp : float, optional
        Microns per level-0 pixel, overriding the slide's own; None: the slide's,
        and when it has none, the slide is read as it is at level 0.
    roi : list of polygons, optional
        Level-0 polygons (:func:`ssimnet.tool.tissue.read_roi`) outside which nothing is segmented.
    """
    from .resample import scale_factor

    mpp = reader.mpp if mpp is None else mpp
    level = best_level(reader, mpp, settings.network_mpp)
    downsample = reader.downsamples[level]
    thumb = read_downsampled(reader, slide.thumbnail_side)
    pixel = thumb.scale * (mpp if mpp is not None else 1.0)  # microns (or level-0 pixels) per thumbnail pixel
    tissue = find_tissue(thumb.image, min_area=round(slide.min_tissue_area / pixel**2),
                         min_saturation=slide.min_saturation, closing=round(slide.tissue_closing / pixel))
    factor = 1.0 if mpp is None else scale_factor(mpp * downsample, network_mpp=settings.network_mpp)
    tile, halo = round(settings.region_tile / factor), round(settings.region_halo / factor)
    windows = tile_windows(reader.shapes[level], tile=tile, halo=halo)
    shape = reader.shapes[level]
    everywhere = tissue_windows(windows, tissue, scale=thumb.scale / downsample, shape=shape, halo=halo)
    if roi:  # the stains are still the whole slide's: an annotation's nuclei are the slide's nuclei there
        tissue &= paint_polygons(roi, tissue.shape, scale=thumb.scale)
    kept = tissue_windows(windows, tissue, scale=thumb.scale / downsample, shape=shape, halo=halo) if roi else everywhere
    return SlidePlan(level, downsample, mpp, shape, kept, len(windows), thumb.image, thumb.scale, tissue, everywhere)


def stain_mosaic(reader: SlideReader, plan: SlidePlan, *, crops: int, side: int) -> np.ndarray | None:
    """Up to `crops` crops of `side` pixels from the centres of tissue tiles spread evenly over the slide
    (``plan.stain_windows``), side by side in one image (white between): what a slide's one stain
    measurement is made on.  None when no tile touches tissue."""
    windows = plan.stain_windows
    if not windows:
        return None
    picks = np.unique(np.linspace(0, len(windows) - 1, min(crops, len(windows))).round().astype(int))
    across = int(np.ceil(np.sqrt(len(picks))))
    down = -(-len(picks) // across)
    mosaic = np.full((down * side, across * side, 3), 255, np.uint8)
    for k, pick in enumerate(picks):
        rows, cols = windows[pick].core
        h, w = min(side, rows.stop - rows.start), min(side, cols.stop - cols.start)
        r0, c0 = (rows.start + rows.stop - h) // 2, (cols.start + cols.stop - w) // 2
        crop = reader.read(plan.level, slice(r0, r0 + h), slice(c0, c0 + w))
        r, c = divmod(k, across)
        mosaic[r * side : r * side + h, c * side : c * side + w] = crop
    return mosaic


def slide_stains(reader: SlideReader, plan: SlidePlan, segmenter: Segmenter, *, slide: SlideConfig = DEFAULT_SLIDE,
                 seed: int = DEFAULT_SEED) -> Stains:
    """A slide's one stain measurement (:meth:`ssimnet.tool.segmenter.Segmenter.measure_stains`) on its
    :func:`stain_mosaic`, which serves every tile."""
    mosaic = stain_mosaic(reader, plan, crops=slide.stain_crops, side=slide.stain_crop_side)
    if mosaic is None:
        raise ValueError("the plan has no tissue tile to measure the stains on")
    return segmenter.measure_stains(mosaic, seed=seed)


class TilePart(NamedTuple):
    """One tile's own nuclei: their measurements and outlines, in level-0 pixels, numbered 1..n within the tile.

    ``table`` has the columns of :func:`ssimnet.predict.nuclei.measure_nuclei`
    (centroids and areas in level-0 pixels) plus ``area_um2`` when the pixel
    size is known; ``rings`` holds each nucleus's outline rings (QuPath's
    corner convention, :func:`ssimnet.tool.geojson.nucleus_polygons`), in the table's order.
    """

    table: dict[str, list[float]]
    rings: list[list[list[list[float]]]]

    def to_json(self) -> dict[str, object]:
        return {"table": self.table, "rings": self.rings}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> TilePart:
        return cls(data["table"], data["rings"])  # type: ignore[arg-type]

    @property
    def nuclei(self) -> int:
        """How many nuclei the tile holds."""
        return len(self.rings)


def segment_slide_tile(reader: SlideReader, window: Window, segmenter: Segmenter, stains: Stains, *,
                       plan: SlidePlan, seed: int = DEFAULT_SEED, roi: list[Polygon] | None = None) -> TilePart:
    """Segment one tile of a slide (its haloed window read at the plan's level); return its own nuclei,
    within `roi` (by centroid) when given, in level-0 pixels."""
    from ..predict.nuclei import measure_nuclei
    from .geojson import nucleus_polygons

    rows, cols = window.read
    ds = plan.downsample
    rgb = reader.read(plan.level, rows, cols)
    density = stains.unmix(rgb)  # once, for the normalisation and the table
    label = segmenter.segment_tile(rgb, stains, mpp=plan.level_mpp, seed=seed, density=density)
    keep = own_nuclei(label, window)
    lut = np.zeros(int(label.max(initial=0)) + 1, np.int32)
    lut[keep] = keep
    label = lut[label]
    table = measure_nuclei(label, density[..., 0])
    row0 = (np.asarray(table["centroid_row"], float) + rows.start + 0.5) * ds - 0.5
    col0 = (np.asarray(table["centroid_col"], float) + cols.start + 0.5) * ds - 0.5
    if roi:
        inside = inside_polygons(np.column_stack([col0 + 0.5, row0 + 0.5]), roi)
        lut[:] = 0
        lut[np.asarray(table["id"])[inside]] = np.asarray(table["id"])[inside]
        label = lut[label]
        table = {k: np.asarray(v)[inside] for k, v in table.items()}
        row0, col0 = row0[inside], col0[inside]
    polygons = nucleus_polygons(label, offset=(rows.start, cols.start))
    ids = np.asarray(table["id"]).tolist()
    out: dict[str, list[float]] = {}
    for name, values in table.items():
        values = np.asarray(values)
        if name == "id":
            values = np.arange(1, len(ids) + 1)
        elif name == "centroid_row":
            values = row0
        elif name == "centroid_col":
            values = col0
        elif name == "area":
            values = values * ds**2
        out[name] = values.tolist()
    if plan.mpp is not None:
        out["area_um2"] = (np.asarray(out["area"], float) * plan.mpp**2).tolist()
    rings = [polygons[i] if ds == 1 else [np.round(np.asarray(ring) * ds, 2).tolist() for ring in polygons[i]]
             for i in ids]
    return TilePart(out, rings)
