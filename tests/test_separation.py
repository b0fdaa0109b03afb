"""Beyond the paper: the learned separation output (rim-distance targets, loss term, prediction, instances)."""

from __future__ import annotations

import dataclasses

import conftest
import numpy as np
import pytest
import torch
from conftest import PSEUDO

from ssimnet.config import InferenceConfig
from ssimnet.net.separation import IGNORE_DISTANCE, rim_distance_target
from ssimnet.net.train import PatchData, Trainer, output_channels, ssimnet_loss
from ssimnet.predict import instances, predict_maps, segment_image
from ssimnet.pseudo import pseudo_labels
from ssimnet.synthetic import synthetic_tile

TINY = dataclasses.replace(conftest.TINY, distance_weight=1.0)


def test_rim_distance_target_hand_computed():
    mask = np.zeros((12, 30), dtype=bool)
    mask[1:8, 1:8] = True  # 7x7 square: centre 4 px from the outside, solidity 1
    mask[2:5, 12:15] = True  # 3x3 square: centre 2 px from the outside
    mask[1:11, 20:22] = True  # an L (solidity 0.55): two nuclei merged, say
    mask[9:11, 20:29] = True
    target = rim_distance_target(mask, min_solidity=0.9)
    assert target[4, 4] == 1.0 and target[1, 1] == pytest.approx(1 / 4) and target[2, 4] == pytest.approx(2 / 4)
    assert target[3, 13] == 1.0 and target[2, 12] == pytest.approx(1 / 2)  # each nucleus peaks at 1
    assert (target[mask[:, :] & (np.arange(30) >= 20)[None, :]] == IGNORE_DISTANCE).all()
    assert (target[~mask] == 0).all()
    kept_all = rim_distance_target(mask, min_solidity=0.0)
    assert (kept_all[mask] > 0).all() and kept_all[mask].max() == 1.0
    with pytest.raises(ValueError, match="2-D"):
        rim_distance_target(np.zeros((2, 2, 2), bool))


def test_distance_loss_hand_computed_and_ignores_pixels():
    logits = torch.zeros(1, 3, 2, 2)  # p = 0.5, predicted distance sigmoid(0) = 0.5
    soft = torch.full((1, 1, 2, 2), 0.5)
    tri = torch.tensor([[[1, 0], [2, 2]]])
    target = torch.tensor([[[1.0, 0.0], [IGNORE_DISTANCE, 0.5]]])
    terms = ssimnet_loss(logits, soft, tri, lam=0.9, distance=target, distance_weight=2.0)
    mse = (0.25 + 0.25 + 0.0) / 3
    assert float(terms.distance) == pytest.approx(mse)
    assert float(terms.total) == pytest.approx(np.log(2) + 2.0 * mse, rel=1e-6)
    plain = ssimnet_loss(logits, soft, tri, lam=0.9)  # no targets: Eq. (5) alone, from the first two channels
    assert float(plain.total) == pytest.approx(np.log(2), rel=1e-6) and plain.distance == 0.0
    with pytest.raises(ValueError, match="no distance output"):
        ssimnet_loss(logits[:, :2], soft, tri, distance=target, distance_weight=1.0)


def _two_touching_discs(shape=(60, 90), centres=((30, 30), (30, 46)), radii=(14, 11)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    inside, bumps = np.zeros(shape, dtype=bool), np.zeros(shape)
    for (r, c), radius in zip(centres, radii):
        d = np.sqrt((yy - r) ** 2 + (xx - c) ** 2)
        inside |= d <= radius
        bumps = np.maximum(bumps, np.clip(1 - d / radius, 0, 1))
    return np.where(inside, 0.9, 0.05), bumps


def test_learned_instances_follow_the_predicted_distance():
    prob, bumps = _two_touching_discs()
    # the foreground's own distance transform sees one blob unless its marker height is tiny (the waist is shallow) ...
    assert instances(prob, method="distance", h=3.0).max() == 1
    # ... the predicted distance has one bump per nucleus, and the watershed on it splits them
    split = instances(prob, method="learned", distance=bumps)
    assert split.max() == 2 and split[30, 30] != split[30, 46]
    assert ((split > 0) == (instances(prob, method="cc") > 0)).all()  # same foreground, only cut
    flat = instances(prob, method="learned", distance=np.where(prob > 0.5, 0.5, 0.0))
    assert flat.max() == 1  # no bump, no split
    with pytest.raises(ValueError, match="needs the network's distance map"):
        instances(prob, method="learned")
    with pytest.raises(ValueError, match="needs the network's distance map"):
        instances(prob, method="learned", distance=bumps[:10])


@pytest.fixture(scope="module")
def tile():
    return synthetic_tile((128, 128), seed=21)


def test_network_with_distance_output_trains_predicts_and_segments(tile):
    pseudo = pseudo_labels(tile.image, PSEUDO)
    data = PatchData.from_pseudo_labels({"t": (tile.image, pseudo)}, size=64, keep=1.0, distance_solidity=0.9)
    target = data.distance["t"]
    assert target.shape == tile.image.shape[:2] and target.max() == 1.0 and (target[~pseudo.candidates] == 0).all()
    assert output_channels(TINY) == 3 and output_channels(dataclasses.replace(TINY, distance_weight=0.0)) == 2
    config = dataclasses.replace(TINY, epochs=8, lr=1e-2)
    trainer = Trainer.new(config, seed=0, device="cpu").fit(data, config.epochs, progress=False)
    history = trainer.history
    assert history[-1]["distance"] < history[0]["distance"]  # the distance term is learned
    assert trainer.model.architecture.out_channels == 3
    maps = predict_maps(trainer.model, tile.image, tile=64, overlap=16, device="cpu")
    assert maps.distance is not None and maps.distance.shape == maps.probability.shape
    assert 0 <= maps.distance.min() and maps.distance.max() <= 1
    # nuclei centres (the target's peaks) score higher than the background
    assert maps.distance[target == 1].mean() > maps.distance[target == 0].mean()
    settings = InferenceConfig(instances="learned", finetune_epochs=1, tile_overlap=16)
    seg = segment_image(tile.image, trainer, settings, pseudo_config=PSEUDO, pseudo=pseudo)
    assert seg.distance is not None and seg.label.max() > 0 and seg.finetune_history[0]["distance"] > 0
    two = Trainer.new(dataclasses.replace(config, distance_weight=0.0), seed=0, device="cpu")
    assert predict_maps(two.model, tile.image, tile=64, overlap=16, device="cpu").distance is None
