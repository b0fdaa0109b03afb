"""Runs of the method on a dataset on disk: cached stages, training, scoring, the repeated-runs protocol.

- :mod:`ssimnet.runs.store` -- stage keys (settings, data content, code fingerprints), pseudo-label files,
  checkpoints
- :mod:`ssimnet.runs.pipeline` -- the pseudo labels of a split, training and self-training
- :mod:`ssimnet.runs.evaluate` -- every method's segmentation of a split, scored
- :mod:`ssimnet.runs.experiments` -- the repeated-runs protocol, Tables 1 and 3, the studies' tables
- :mod:`ssimnet.runs.stress` -- the stain stress test: colour transforms that keep the labels
- :mod:`ssimnet.runs.guard_choice` -- the stain guard's one-stain settings, chosen on the stress test's training rows
"""
