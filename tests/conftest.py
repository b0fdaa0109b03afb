"""Settings and networks the tests share.

``TINY`` and ``PSEUDO`` are the small network and the fast pseudo-label
settings most tests train with.  :func:`segmenting_checkpoint` is a small
network trained once per session on synthetic tiles' ground truth (a
supervised stand-in: what the plumbing tests need is a network that separates
many nuclei, so that they fail when a worker loads other weights); an untrained
network answers about 0.5 everywhere and finds one nucleus per image.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from ssimnet.config import TOOL_INFERENCE, PseudoLabelConfig, TrainConfig, get_profile

#: The small network most tests train (a few seconds on two cores).
TINY = TrainConfig(depth=2, width=4, epochs=2, batch_size=4, lr=3e-3)
#: Pseudo-label settings of 64-pixel patches that sample few pixels.
PSEUDO = PseudoLabelConfig(patch_size=64, patch_stride=32, stain_samples=4000, fcm_samples=4000)
#: The smoke profile, as the tests that run commands use it.
SMOKE = get_profile("smoke")
#: How the trained test network segments: the smoke tool's settings.
SEGMENTING = replace(TOOL_INFERENCE, instances="distance")


@pytest.fixture(scope="session")
def segmenting_checkpoint(tmp_path_factory) -> Path:
    """A depth-3, width-8 network trained for 12 epochs on four synthetic tiles' ground truth, with its
    inference settings (:data:`SEGMENTING`), checked to find many nuclei on a tile it did not see."""
    import torch

    from ssimnet.baselines.supervised import supervised_patches
    from ssimnet.net.checkpoint import save_model
    from ssimnet.net.train import Trainer
    from ssimnet.synthetic import synthetic_tile
    from ssimnet.tool.segmenter import Segmenter

    torch.set_num_threads(2)
    tiles = {f"t{i}": synthetic_tile((128, 128), seed=100 + i) for i in range(4)}
    data = supervised_patches({k: (t.image, t.label) for k, t in tiles.items()}, size=64, stride=32)
    config = TrainConfig(depth=3, width=8, epochs=12, batch_size=8, lr=1e-2)
    trainer = Trainer.new(config, seed=0, device="cpu").fit(data, config.epochs, progress=False)
    path = tmp_path_factory.mktemp("segmenting") / "net.pt"
    save_model(path, trainer.state(), asdict(SEGMENTING))
    unseen = synthetic_tile((96, 128), seed=12)
    found = Segmenter.from_checkpoint(path).segment(unseen.image).labels.max()
    assert found >= 0.5 * unseen.label.max() and found >= 5, (found, unseen.label.max())  # a network that separates
    return path


def same_weights(a: object, b: object) -> bool:
    """Whether two torch networks hold the same weights, bit for bit."""
    import torch

    sa, sb = a.state_dict(), b.state_dict()  # type: ignore[attr-defined]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two label maps' foregrounds."""
    return float(((a > 0) & (b > 0)).sum() / max(1, ((a > 0) | (b > 0)).sum()))
