"""Beyond the paper: the boundary-aware target (inside / boundary / background), its loss, output and instances."""

from __future__ import annotations

import dataclasses

import conftest
import numpy as np
import pytest
import torch
from conftest import PSEUDO

from ssimnet.config import InferenceConfig, TrainConfig, get_profile, key_fields
from ssimnet.net.boundary import boundary_target
from ssimnet.net.selftrain import self_training_labels
from ssimnet.net.train import PatchData, Trainer, output_channels, ssimnet_loss
from ssimnet.predict import instances, predict_maps, segment_image
from ssimnet.pseudo import PseudoLabels, pseudo_labels
from ssimnet.pseudo.touching import separate_touching
from ssimnet.runs.store import stage_key
from ssimnet.synthetic import synthetic_tile

TINY = dataclasses.replace(conftest.TINY, boundary_width=2)


def test_boundary_target_hand_computed():
    mask = np.zeros((12, 24), dtype=bool)
    mask[1:10, 1:10] = True  # 9x9 square: distances to the outside 1..5
    mask[3:6, 14:17] = True  # 3x3 square: all of it within 2 pixels of its rim
    target = boundary_target(mask, width=2)
    assert target.dtype == np.float32 and set(np.unique(target)) == {0.0, 1.0}
    assert target[5, 1:10].tolist() == [1, 1, 0, 0, 0, 0, 0, 1, 1]
    assert (target[3:6, 14:17] == 1).all() and (target[~mask] == 0).all()
    thin = boundary_target(mask, width=1)
    assert thin[5, 1:10].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1] and thin[4, 15] == 0  # the 3x3's centre is inside
    gap = np.zeros_like(mask)
    gap[0, 0] = True
    assert boundary_target(mask, width=1, gap=gap)[0, 0] == 1  # gap pixels are boundary, though not candidates
    with pytest.raises(ValueError, match="2-D"):
        boundary_target(np.zeros((2, 2, 2), bool), width=1)
    with pytest.raises(ValueError, match="at least 1 pixel"):
        boundary_target(mask, width=0)


def test_boundary_loss_hand_computed_over_nucleus_pixels_only():
    logits = torch.zeros(1, 3, 2, 2)  # p = 0.5, boundary sigmoid(0) = 0.5
    logits[0, 2, 1, 1] = 5.0  # a confident boundary where the soft label is 0: not part of the loss
    soft = torch.tensor([[[[0.5, 0.75], [0.6, 0.0]]]])
    tri = torch.tensor([[[2, 2], [2, 2]]])  # no Voronoi label: CE = 0
    target = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    terms = ssimnet_loss(logits, soft, tri, lam=0.9, boundary=target, boundary_weight=2.0)
    assert float(terms.boundary) == pytest.approx(np.log(2))  # BCE at sigmoid(0) over the three nucleus pixels
    bce = -np.mean([0.5 * np.log(0.5) + 0.5 * np.log(0.5)] * 4)  # soft labels vs p = 0.5: log 2 whatever y is
    assert float(terms.total) == pytest.approx(0.9 * bce + 2.0 * np.log(2), rel=1e-6)
    with pytest.raises(ValueError, match="no boundary output"):
        ssimnet_loss(logits[:, :2], soft, tri, boundary=target)
    both = torch.zeros(1, 4, 2, 2)  # distance is channel 2, the boundary the last one
    both[0, 3] = 10.0
    terms = ssimnet_loss(both, soft, tri, distance=torch.zeros(1, 2, 2), distance_weight=1.0, boundary=target)
    assert float(terms.distance) == pytest.approx(0.25) and float(terms.boundary) > 3  # wrong where target is 0


def test_boundary_instances_cut_touching_nuclei_on_the_inside_class():
    yy, xx = np.mgrid[:60, :90]
    discs = [np.hypot(yy - 30, xx - c) for c in (30, 46)]
    inside = (discs[0] <= 14) | (discs[1] <= 11)
    prob = np.where(inside, 0.9, 0.05)
    # a foreground whose distance transform is one blob for a high marker ...
    assert instances(prob, method="distance", h=3.0).max() == 1
    # ... the boundary output runs along each rim and across the contact, so the inside class has two cores
    label = np.where(xx < 40, 1, 2) * inside  # the two nuclei, cut where they meet
    kept_apart = separate_touching(label)
    rim = np.where(boundary_target(kept_apart, width=3, gap=inside & ~kept_apart) > 0, 0.95, 0.05)
    split = instances(prob, method="boundary", boundary=rim)
    assert split.max() == 2 and split[30, 30] != split[30, 46] and split[30, 30] > 0
    assert ((split > 0) == (instances(prob, method="cc") > 0)).all()  # same foreground, only cut
    assert instances(prob, method="boundary", boundary=np.full(prob.shape, 0.05)).max() == 1  # no boundary, no cut
    with pytest.raises(ValueError, match="needs the network's boundary map"):
        instances(prob, method="boundary")


def test_boundary_settings_key_the_training():
    plain = TrainConfig()
    assert key_fields(plain) == dataclasses.asdict(plain)  # every field, at its default or not
    assert stage_key(plain) != stage_key(dataclasses.replace(plain, boundary_width=3))
    assert stage_key(plain) != stage_key(dataclasses.replace(plain, boundary_width=3, boundary_weight=2.0)) != \
        stage_key(dataclasses.replace(plain, boundary_width=3))
    profile = get_profile("cpu")  # nested sections are reduced the same way
    assert key_fields(profile)["train"] == key_fields(profile.train)
    with pytest.raises(ValueError, match="boundary_width"):
        TrainConfig(boundary_width=-1)


@pytest.fixture(scope="module")
def tile():
    return synthetic_tile((128, 128), seed=21)


def test_network_with_boundary_output_trains_predicts_and_segments(tile):
    pseudo = pseudo_labels(tile.image, PSEUDO)
    data = PatchData.from_pseudo_labels({"t": (tile.image, pseudo)}, size=64, keep=1.0, boundary_width=2)
    target = data.boundary["t"]
    assert (target == boundary_target(pseudo.candidates, width=2)).all() and data.distance is None
    assert output_channels(TINY) == 3 and output_channels(dataclasses.replace(TINY, distance_weight=1.0)) == 4
    config = dataclasses.replace(TINY, epochs=8, lr=1e-2)
    trainer = Trainer.new(config, seed=0, device="cpu").fit(data, config.epochs, progress=False)
    assert trainer.history[-1]["boundary"] < trainer.history[0]["boundary"]  # the boundary term is learned
    arch = trainer.model.architecture
    assert arch.boundary and not arch.has_distance and arch.out_channels == 3
    maps = predict_maps(trainer.model, tile.image, tile=64, overlap=16, device="cpu")
    assert maps.distance is None and maps.boundary.shape == maps.probability.shape
    nucleus = pseudo.candidates
    assert maps.boundary[nucleus & (target == 1)].mean() > maps.boundary[nucleus & (target == 0)].mean()
    settings = InferenceConfig(instances="boundary", finetune_epochs=1, tile_overlap=16)
    seg = segment_image(tile.image, trainer, settings, pseudo_config=PSEUDO, pseudo=pseudo)
    assert seg.boundary is not None and seg.label.max() > 0 and seg.finetune_history[0]["boundary"] > 0
    # a checkpoint of this network refuses a profile without the boundary output, and the other way round
    with pytest.raises(ValueError, match="boundary last"):
        Trainer.from_state(trainer.state(), dataclasses.replace(config, boundary_width=0, distance_weight=1.0))
    assert Trainer.from_state(trainer.state()).model.architecture.boundary


def test_self_training_boundary_targets_include_the_gap_between_touching_nuclei():
    shape = (40, 60)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    prob = np.where((np.hypot(yy - 20, xx - 20) <= 10) | (np.hypot(yy - 20, xx - 38) <= 9), 0.9, 0.05)
    image = np.full((*shape, 3), 200, np.uint8)
    empty = np.zeros(shape, dtype=bool)
    first = PseudoLabels(stains=np.eye(2, 3), stain_fallback=False, hematoxylin=image, fcm=empty, candidates=empty,
                         soft=np.zeros(shape, np.float32), voronoi=np.full(shape, 2, np.uint8), patches=[])
    nxt = self_training_labels(first, prob, dataclasses.replace(PSEUDO, patch_size=32, patch_stride=16), h=0.5, min_size=10)
    gap = (nxt.soft > 0) & ~nxt.candidates
    assert gap.any()  # the two nuclei touch, so a gap keeps them apart
    data = PatchData.from_pseudo_labels({"t": (image, nxt)}, patches=[("t", 0, 0)], size=32, boundary_width=1)
    assert (data.boundary["t"][gap] == 1).all()
