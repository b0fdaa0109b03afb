"""Runs of the method on a dataset on disk: cached stages, training, scoring, the repeated-runs protocol.

- :mod:`ssimnet.runs.store` -- stage keys (settings, data content, code fingerprints), pseudo-label files,
  checkpoints
- :mod:`ssimnet.runs.pipeline` -- the pseudo labels of a split, training and self-training
- :mod:`ssimnet.runs.evaluate` -- every method's segmentation of a split, scored
- :mod:`ssimnet.runs.experiments` -- the repeated-runs protocol, Tables 1 and 3, the studies' tables
- :mod:`ssimnet.runs.stress` -- the stain stress test: colour transforms that keep the labels
- :mod:`ssimnet.runs.guard_choice` -- the stain guard's one-stain settings, chosen on the stress test's training rows
- :mod:`ssimnet.runs.pixel_choice` -- the pixel-size check's references and fractions, chosen on training rows
- :mod:`ssimnet.runs.fallback_choice` -- the watershed fallback's threshold, chosen on training rows
- :mod:`ssimnet.runs.ties` -- the tie-break those choices share: the middle one of the best
"""
