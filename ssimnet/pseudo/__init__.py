"""The method's pseudo labels, label-free (paper Sec. 2.1 and the per-image part of 2.2), one module a stage.

- :mod:`ssimnet.pseudo.stain` -- Beer-Lambert optics and stain separation (Eq. 1-2)
- :mod:`ssimnet.pseudo.candidates` -- candidate nuclei: fuzzy c-means and an active contour (Eq. 3)
- :mod:`ssimnet.pseudo.generators` -- other candidate generators (beyond the paper)
- :mod:`ssimnet.pseudo.touching` -- touching nuclei split and kept apart
- :mod:`ssimnet.pseudo.soften` -- label softening (Eq. 4)
- :mod:`ssimnet.pseudo.purify` -- patches, USMI and data purification (Algorithm 1)
- :mod:`ssimnet.pseudo.voronoi` -- Voronoi tri-labels
- :mod:`ssimnet.pseudo.labels` -- every stage of one image: :func:`pseudo_labels`, :class:`PseudoLabels`

The names of :mod:`ssimnet.pseudo.labels` are importable from here, as they
were when it was the module ``ssimnet.pseudo``.
"""

from __future__ import annotations

__all__ = ["PseudoLabels", "pseudo_labels", "labels_from_candidates"]


def __getattr__(name: str) -> object:  # the stages' modules are imported when a name is first used
    if name.startswith("__") or name == "labels":  # dunders, and the submodule while it is being imported
        raise AttributeError(name)
    from . import labels

    try:
        return getattr(labels, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
