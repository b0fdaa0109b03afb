"""ssimnet: label-free nuclei segmentation using intra-image self similarity.

A reproducible implementation of SSimNet (Chen, Li & Zhou, MICCAI 2023).
The algorithm modules follow the paper's stages; each is array in, array out:

- :mod:`ssimnet.stain` -- Beer-Lambert optics and stain separation (Eq. 1-2)
- :mod:`ssimnet.candidates` -- candidate nuclei, FCM and active contour (Eq. 3)
- :mod:`ssimnet.generators` -- other candidate generators (beyond the paper)
- :mod:`ssimnet.touching` -- splitting touching nuclei, keeping them apart
- :mod:`ssimnet.soften` -- label softening (Eq. 4)
- :mod:`ssimnet.purify` -- patches, USMI and data purification (Algorithm 1)
- :mod:`ssimnet.voronoi` -- Voronoi tri-labels
- :mod:`ssimnet.pseudo` -- all pseudo-label stages of one image
- :mod:`ssimnet.model` -- the U-Net
- :mod:`ssimnet.train` -- the loss (Eq. 5), training and fine-tuning
- :mod:`ssimnet.augment` -- HED stain jitter (beyond the paper)
- :mod:`ssimnet.infer` -- tiled prediction, instances, per-image segmentation
- :mod:`ssimnet.segmenter` -- :class:`Segmenter`, the one way to segment: a network and the settings it carries
- :mod:`ssimnet.region` -- large regions tile by tile, every nucleus once across seams
- :mod:`ssimnet.geojson` -- nuclei as GeoJSON polygons (QuPath detections)
- :mod:`ssimnet.resample` -- images of another pixel size resampled to the network's and back
- :mod:`ssimnet.selftrain` -- self-training rounds (beyond the paper)
- :mod:`ssimnet.separation` -- the learned separation output (beyond the paper)
- :mod:`ssimnet.baselines` -- the comparison methods of Table 1
- :mod:`ssimnet.metrics` -- Dice, AJI, AJI+, PQ
- :mod:`ssimnet.synthetic` -- synthetic H&E tiles with exact ground truth

Data, orchestration and reporting (the only modules that touch files):

- :mod:`ssimnet.config` -- every setting and the run profiles (smoke, cpu, paper)
- :mod:`ssimnet.data` -- the uniform dataset layout, image I/O, input checks
- :mod:`ssimnet.datasets` -- MoNuSeg and CPM17 converters, the synthetic dataset
- :mod:`ssimnet.store` -- content keys, pseudo-label files, checkpoints
- :mod:`ssimnet.pipeline` -- pseudo labels of a split, training
- :mod:`ssimnet.evaluate` -- scoring every method on a split
- :mod:`ssimnet.experiments` -- the repeated-runs protocol, Tables 1 and 3
- :mod:`ssimnet.results` -- provenance, saving and loading results
- :mod:`ssimnet.report` -- the book's tables from results
- :mod:`ssimnet.paper` -- the paper's reported numbers
- :mod:`ssimnet.viz` -- overlays for figures
- :mod:`ssimnet.batch` -- segmenting folders and large regions to files, in parallel or on Dask
- :mod:`ssimnet.book` -- executing the book's notebooks
- :mod:`ssimnet.publish` -- chapter records, staleness, publishing a run
- :mod:`ssimnet.bookext` -- the book's Sphinx extension (provenance line, stale note)
- :mod:`ssimnet.cli` -- the ``ssimnet`` command
"""

__version__ = "0.1.0"

__all__ = ["Segmenter", "__version__"]


def __getattr__(name: str) -> object:
    # `ssimnet.Segmenter` is imported when first used, so that `import ssimnet` stays light
    if name == "Segmenter":
        from .segmenter import Segmenter

        return Segmenter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
