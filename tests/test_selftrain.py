"""Beyond the paper: distance-transform instances, touching-nuclei gaps, self-training labels and rounds."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from conftest import PSEUDO, TINY
from scipy import ndimage as ndi

from ssimnet.config import (
    INSTANCE_METHODS,
    InferenceConfig,
    SelfTrainConfig,
    SyntheticConfig,
    get_profile,
)
from ssimnet.datasets import write_synthetic_dataset
from ssimnet.net.selftrain import self_training_labels, separate_touching
from ssimnet.predict import instances
from ssimnet.pseudo import pseudo_labels
from ssimnet.pseudo.voronoi import BACKGROUND, IGNORE, NUCLEUS
from ssimnet.runs.pipeline import train_self_training
from ssimnet.synthetic import synthetic_tile


def _two_touching_discs(shape=(60, 90), centres=((30, 30), (30, 54)), radius=13):
    """Probability map of two overlapping discs: one foreground blob with a waist."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    inside = np.zeros(shape, dtype=bool)
    for r, c in centres:
        inside |= (yy - r) ** 2 + (xx - c) ** 2 <= radius**2
    return np.where(inside, 0.9, 0.05)


def test_distance_instances_split_a_waist_that_cc_keeps_whole():
    prob = _two_touching_discs()
    assert instances(prob, method="cc").max() == 1
    split = instances(prob, method="distance")
    assert split.max() == 2 and split[30, 30] != split[30, 54]
    assert ((split > 0) == (instances(prob, method="cc") > 0)).all()  # same foreground, only cut
    # the cut runs through the waist, at the middle column between the centres
    assert set(np.unique(split[:, 40:41][split[:, 40:41] > 0])) | set(np.unique(split[:, 44:45][split[:, 44:45] > 0])) == {1, 2}
    assert instances(prob, method="distance", h=50.0).max() == 1  # no marker high enough: whole
    assert set(INSTANCE_METHODS) == {"cc", "watershed", "distance", "learned", "boundary"}


@pytest.mark.parametrize("seed", range(5))
def test_separate_touching_leaves_no_two_nuclei_connected(seed):
    rng = np.random.default_rng(seed)
    seeds = np.zeros((80, 80), dtype=np.int32)
    seeds[rng.integers(0, 80, 25), rng.integers(0, 80, 25)] = rng.permutation(25) + 1
    _, (r, c) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    label = seeds[r, c] * (rng.random((80, 80)) < 0.97)  # a tiling of touching cells, a few holes
    kept = separate_touching(label)
    assert not (kept & (label == 0)).any()
    components, n = ndi.label(kept, structure=np.ones((3, 3)))
    for k in range(1, n + 1):  # every 8-connected piece lies inside one nucleus
        assert len(np.unique(label[components == k])) == 1
    # only pixels with a higher-numbered 8-neighbour are dropped
    dropped = (label > 0) & ~kept
    assert (ndi.maximum_filter(label, size=3)[dropped] > label[dropped]).all()
    lone = np.zeros((20, 20), dtype=np.int32)
    lone[5:15, 5:15] = 7
    assert np.array_equal(separate_touching(lone), lone > 0)


def test_self_training_labels_cut_between_touching_nuclei():
    tile = synthetic_tile((128, 128), seed=3)
    first = pseudo_labels(tile.image, PSEUDO)
    prob = np.zeros((128, 128))
    prob[34:94, 19:109] = _two_touching_discs()
    nxt = self_training_labels(first, prob, PSEUDO, min_size=20)
    label = instances(prob, method="distance", min_size=20)
    gap = (label > 0) & ~nxt.candidates
    assert ndi.label(nxt.candidates, structure=np.ones((3, 3)))[1] == 2 and gap.any()
    assert (nxt.soft[gap] == 0.5).all() and (nxt.soft[nxt.candidates] >= 0.5).all() and (nxt.soft[label == 0] == 0).all()
    assert (nxt.voronoi[gap] == BACKGROUND).all()
    assert not (nxt.candidates & (nxt.voronoi == BACKGROUND)).any()  # no Voronoi edge cuts a nucleus
    assert (nxt.voronoi == NUCLEUS).any() and (nxt.voronoi == IGNORE).any()
    assert nxt.stains is first.stains and np.array_equal(nxt.hematoxylin, first.hematoxylin)
    assert len(nxt.patches) == len(first.patches)
    with pytest.raises(ValueError, match="does not match"):
        self_training_labels(first, prob[:64], PSEUDO)


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    """A synthetic dataset whose training labels are removed: self-training must not need them."""
    root = write_synthetic_dataset(tmp_path_factory.mktemp("st"), SyntheticConfig(n_train=2, n_test=0, shape=(128, 128), seed=5))
    shutil.rmtree(root / "train" / "labels")
    return root


def _profile() -> object:
    return dataclasses.replace(get_profile("smoke"), pseudo=PSEUDO, train=TINY, selftrain=SelfTrainConfig(rounds=2, epochs=1),
                               inference=InferenceConfig(tile_overlap=16))


def test_self_training_rounds_continue_deterministically_and_resume(unlabelled, tmp_path):
    profile = _profile()
    rounds = train_self_training(unlabelled, tmp_path / "a", profile, progress=False)
    assert [t.epoch for t, _ in rounds] == [2, 3, 4]
    assert len({c for _, c in rounds}) == 3 and all(c.is_file() for _, c in rounds)
    weights = [torch.cat([p.detach().flatten() for p in t.model.parameters()]) for t, _ in rounds]
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])
    # same seed in another run directory: the same weights, bit for bit
    again = train_self_training(unlabelled, tmp_path / "b", profile, progress=False)
    assert all(torch.equal(w, torch.cat([p.detach().flatten() for p in t.model.parameters()]))
               for w, (t, _) in zip(weights, again))
    # a finished run is read back, not retrained; asking for fewer rounds gives the first ones
    assert train_self_training(unlabelled, tmp_path / "a", profile, rounds=1, progress=False)[1][1] == rounds[1][1]
    with pytest.raises(ValueError, match="rounds"):
        train_self_training(unlabelled, tmp_path / "a", profile, rounds=-1, progress=False)


def test_the_first_round_is_shared_by_runs_that_differ_in_self_training_only(unlabelled, tmp_path):
    profile = _profile()
    first = train_self_training(unlabelled, tmp_path, profile, rounds=0, progress=False)[0][1]
    longer = dataclasses.replace(profile, selftrain=SelfTrainConfig(rounds=1, epochs=2))
    rounds = train_self_training(unlabelled, tmp_path, longer, progress=False)
    assert rounds[0][1] == first and [t.epoch for t, _ in rounds] == [2, 4]  # round 0 reused, round 1 its own
    other = dataclasses.replace(profile, train=dataclasses.replace(TINY, lr=1e-3))
    assert train_self_training(unlabelled, tmp_path, other, rounds=0, progress=False)[0][1] != first
