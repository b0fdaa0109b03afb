"""ssimnet: label-free nuclei segmentation using intra-image self similarity.

A reproducible implementation of SSimNet (Chen, Li & Zhou, MICCAI 2023).
Modules follow the paper's stages:

- :mod:`ssimnet.stain` -- Beer-Lambert optics and stain separation (Eq. 1-2)
- :mod:`ssimnet.data` -- datasets on disk, raw-format readers
- :mod:`ssimnet.synthetic` -- synthetic H&E tiles with exact ground truth
- :mod:`ssimnet.metrics` -- Dice, AJI, AJI+, PQ
- :mod:`ssimnet.config` -- run profiles (smoke, cpu, paper)
- :mod:`ssimnet.cli` -- the ``ssimnet`` command
"""

__version__ = "0.1.0"
