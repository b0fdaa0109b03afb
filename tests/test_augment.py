"""Stain augmentation and batch-norm-frozen fine-tuning (beyond the paper)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2hed

from ssimnet.config import InferenceConfig, PseudoLabelConfig, TrainConfig
from ssimnet.net.augment import draw_hed_jitter, hed_jitter
from ssimnet.net.train import PatchData, Trainer
from ssimnet.pseudo import pseudo_labels
from ssimnet.synthetic import synthetic_tile


def test_hed_jitter_moves_the_hematoxylin_density_by_the_drawn_amount():
    image = synthetic_tile((32, 32), seed=0).image
    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    darker = hed_jitter(x, torch.tensor([1.5, 1.0, 1.0]), torch.zeros(3))
    hed_before = rgb2hed(image)[..., 0]
    hed_after = rgb2hed((darker.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))[..., 0]
    stained = hed_before > np.quantile(hed_before, 0.5)
    assert np.median(hed_after[stained] / hed_before[stained]) == pytest.approx(1.5, abs=0.15)
    scale, shift = draw_hed_jitter(torch.Generator().manual_seed(0), 0.1)
    assert ((scale - 1).abs() <= 0.1).all() and (shift.abs() <= 0.1).all()


@pytest.fixture(scope="module")
def data():
    config = PseudoLabelConfig(patch_size=64, patch_stride=64)
    tile = synthetic_tile((128, 128), seed=1)
    return PatchData.from_pseudo_labels({"t": (tile.image, pseudo_labels(tile.image, config))}, size=64, keep=1.0)


def test_stain_jitter_changes_only_the_images_and_is_reproducible(data):
    def epoch(jitter):
        return list(data.batches(torch.Generator().manual_seed(3), 4, augment=True, stain_jitter=jitter))

    plain, jittered, again = epoch(0.0), epoch(0.1), epoch(0.1)
    for p, j, a in zip(plain, jittered, again):
        assert torch.equal(j.x, a.x) and not torch.allclose(p.x, j.x, atol=1e-3)
    # the first draws (order, rotation, flip) are shared, so the first patch's labels are the same
    assert torch.equal(plain[0].tri[0], jittered[0].tri[0]) and torch.equal(plain[0].soft[0], jittered[0].soft[0])
    with pytest.raises(ValueError, match="stain_jitter"):
        TrainConfig(stain_jitter=-1)


@pytest.mark.parametrize("norm", ["train", "frozen"])
def test_finetuning_with_frozen_batch_norm_keeps_the_running_statistics(norm, data):
    config = TrainConfig(depth=2, width=4, epochs=1, batch_size=2, lr=1e-3)
    trainer = Trainer.new(config, seed=0, device="cpu").fit(data, 1, progress=False)

    def stats(t):
        return [b.clone() for name, b in t.model.named_buffers() if "running" in name]

    tuned = trainer.finetune_copy(data, 1, norm=norm)
    unchanged = all(torch.equal(a, b) for a, b in zip(stats(trainer), stats(tuned)))
    assert unchanged == (norm == "frozen")
    assert not all(torch.equal(a, b) for a, b in zip(trainer.model.parameters(), tuned.model.parameters()))
    with pytest.raises(ValueError, match="norm must be"):
        trainer.finetune_copy(data, 1, norm="eval")
    with pytest.raises(ValueError, match="finetune_norm"):
        InferenceConfig(finetune_norm="eval")
