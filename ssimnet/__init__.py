"""ssimnet: label-free nuclei segmentation using intra-image self similarity.

A reproducible implementation of SSimNet (Chen, Li & Zhou, MICCAI 2023), and a
tool that segments nuclei in H&E images without a single manual label:
``ssimnet.Segmenter.pretrained().segment(image).labels``.

The folders follow the architecture:

The method (array in, array out; the paper's stages)
    :mod:`ssimnet.pseudo` -- pseudo labels (Sec. 2.1: stains, candidates,
    softening, USMI purification, Voronoi labels);
    :mod:`ssimnet.net` -- the network and its training (Sec. 2.2: U-Net,
    loss, fine-tuning, and the levers beyond the paper);
    :mod:`ssimnet.predict` -- probability maps, instances, one image segmented;
    :mod:`ssimnet.baselines` -- the comparison methods of Table 1;
    :mod:`ssimnet.metrics` -- Dice, AJI, AJI+, PQ.
The tool
    :mod:`ssimnet.tool` -- :class:`~ssimnet.tool.segmenter.Segmenter`, the
    shipped network, stain normalisation, resampling, large regions, batches,
    GeoJSON; it never imports the book machinery.
The reproduction
    :mod:`ssimnet.runs` -- cached stages on a dataset on disk, training,
    scoring, the repeated-runs protocol;
    :mod:`ssimnet.book` -- executing the book, results and provenance, publishing.
Shared
    :mod:`ssimnet.config` (every setting and the run profiles),
    :mod:`ssimnet.data` (image I/O, the dataset layout, input checks),
    :mod:`ssimnet.datasets` (converters, the synthetic dataset),
    :mod:`ssimnet.synthetic` (synthetic H&E tiles with exact ground truth),
    :mod:`ssimnet.fingerprint` (the code a cached stage ran),
    :mod:`ssimnet.cli` (the ``ssimnet`` command).

The flat module names of version 0.1 (``ssimnet.stain`` is now
:mod:`ssimnet.pseudo.stain`, ``ssimnet.infer`` :mod:`ssimnet.predict`, ...)
still import, with a :class:`DeprecationWarning`, until version 0.3 (:data:`MOVED`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings

__version__ = "0.2.0"

__all__ = ["Segmenter", "MOVED", "__version__"]

#: Where the modules of version 0.1's flat layout went (relative to ``ssimnet``).
MOVED: dict[str, str] = {
    "architecture": "net.architecture",
    "augment": "net.augment",
    "batch": "tool.batch",
    "bookext": "book.sphinx",
    "boundary": "net.boundary",
    "candidates": "pseudo.candidates",
    "evaluate": "runs.evaluate",
    "experiments": "runs.experiments",
    "generators": "pseudo.generators",
    "geojson": "tool.geojson",
    "infer": "predict",
    "model": "net.model",
    "normalize": "tool.normalize",
    "onnxnet": "net.onnxnet",
    "paper": "book.paper",
    "pipeline": "runs.pipeline",
    "publish": "book.publish",
    "purify": "pseudo.purify",
    "region": "tool.region",
    "report": "book.report",
    "resample": "tool.resample",
    "results": "book.results",
    "selftrain": "net.selftrain",
    "separation": "net.separation",
    "shipped": "tool.shipped",
    "soften": "pseudo.soften",
    "stain": "pseudo.stain",
    "store": "runs.store",
    "touching": "pseudo.touching",
    "train": "net.train",
    "viz": "tool.viz",
    "voronoi": "pseudo.voronoi",
}


def __getattr__(name: str) -> object:
    # `ssimnet.Segmenter` is imported when first used, so that `import ssimnet` stays light
    if name == "Segmenter":
        from .tool.segmenter import Segmenter

        return Segmenter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old flat module name (:data:`MOVED`) as its new module, with a DeprecationWarning."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        old = fullname.removeprefix(__name__ + ".")
        return importlib.util.spec_from_loader(fullname, self) if old != fullname and old in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> object:
        new = f"{__name__}.{MOVED[spec.name.removeprefix(__name__ + '.')]}"
        warnings.warn(f"{spec.name} is now {new}; the old name goes in ssimnet 0.3", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: object) -> None:
        pass


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
