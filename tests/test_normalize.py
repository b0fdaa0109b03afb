"""Stain normalisation (ssimnet.tool.normalize): known stains and densities in, the reference's out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ssimnet.config import STAIN_REFERENCE, StainReference
from ssimnet.pseudo.stain import od_to_rgb
from ssimnet.synthetic import synthetic_tile
from ssimnet.tool.normalize import StainNormalizer, max_density

RESULTS = Path(__file__).resolve().parents[1] / "results" / "cpu"


def _rotate(stains: np.ndarray, degrees: float) -> np.ndarray:
    """Each stain colour turned by `degrees` about the grey axis: another lab's hue."""
    axis = np.ones(3) / np.sqrt(3)
    t = np.radians(degrees)
    rotated = stains * np.cos(t) + np.cross(axis, stains) * np.sin(t) + np.outer(stains @ axis, axis) * (1 - np.cos(t))
    return rotated / np.linalg.norm(rotated, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def tile():
    return synthetic_tile((160, 160), seed=3, noise_sigma=0.0, blur_sigma=0.0)


def _grey_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


def test_max_density_uses_tissue_pixels_or_all_when_none():
    density = np.zeros((4, 4, 2))
    density[..., 0] = np.arange(16).reshape(4, 4)
    density[..., 1] = 2.0
    tissue = density[..., 0] < 4
    assert max_density(density, tissue, percentile=100).tolist() == [3.0, 2.0]
    assert max_density(density, np.zeros((4, 4), bool), percentile=100).tolist() == [15.0, 2.0]


def test_a_paler_bluer_copy_is_mapped_back_onto_the_reference(tile):
    reference = od_to_rgb(tile.density @ tile.stains)
    other = od_to_rgb((0.5 * tile.density) @ _rotate(tile.stains, 12))  # half the stain, another hue
    norm = StainNormalizer(seed=0).fit(reference)
    before, after = _grey_error(other, reference), _grey_error(norm.transform(other), reference)
    assert before > 15
    assert after < 0.25 * before
    assert after < 6


def test_min_scale_one_never_darkens(tile):
    reference = od_to_rgb(tile.density @ tile.stains)
    darker = od_to_rgb((1.3 * tile.density) @ tile.stains)
    both = StainNormalizer(seed=0, min_scale=0.0).fit(reference)
    brighten_only = StainNormalizer(seed=0).fit(reference)
    assert _grey_error(both.transform(darker), reference) < 6  # matched down to the reference
    kept = brighten_only.transform(darker)
    assert _grey_error(kept, darker) < 6  # densities kept, only recoloured
    assert kept.astype(float).mean() < reference.astype(float).mean() - 5


def test_a_measured_source_maps_every_tile_as_the_whole_image(tile):
    image = od_to_rgb((0.7 * tile.density) @ _rotate(tile.stains, -8))
    norm = StainNormalizer.from_reference(STAIN_REFERENCE, seed=0)
    source = norm.measure(image)
    whole = norm.transform(image, source=source)
    assert np.array_equal(whole, norm.transform(image))  # the same measurement when not given
    assert np.array_equal(norm.transform(image[40:120, 10:90], source=source), whole[40:120, 10:90])
    # the densities of the measurement, handed on, give the same image without a second unmixing
    measured, density = norm.measure_densities(image)
    assert measured == source and density.shape == (*image.shape[:2], 2)
    assert np.array_equal(norm.transform(image, source=source, density=density), whole)
    with pytest.raises(ValueError, match="density must be of shape"):
        norm.transform(image, source=source, density=density[1:])


def test_reference_round_trip_and_errors(tile):
    norm = StainNormalizer(seed=0).fit([tile.image, tile.image[::-1]])
    again = StainNormalizer.from_reference(norm.reference())
    assert np.array_equal(again.stain_matrix_, norm.stain_matrix_)
    assert np.array_equal(again.max_density_, norm.max_density_)
    assert np.allclose(np.linalg.norm(norm.stain_matrix_, axis=1), 1.0)
    with pytest.raises(RuntimeError, match="fit"):
        StainNormalizer().transform(tile.image)
    with pytest.raises(ValueError, match="percentile"):
        StainNormalizer(percentile=10)
    with pytest.raises(ValueError, match="at least one"):
        StainNormalizer().fit([])
    with pytest.raises(ValueError, match="solver"):
        StainNormalizer(solver="svd")


def test_the_exact_solver_measures_what_scikit_learns_does_and_keys_its_results(tile):
    cd = StainNormalizer(seed=0).fit(tile.image)
    exact = StainNormalizer(seed=0, solver="exact").fit(tile.image)
    angles = np.degrees(np.arccos(np.clip((cd.stain_matrix_ * exact.stain_matrix_).sum(1), -1, 1)))
    assert angles.max() < 3.0
    assert np.allclose(exact.max_density_, cd.max_density_, rtol=0.05)
    assert cd.settings()["solver"] == "cd" and exact.settings()["solver"] == "exact"  # each keys its results


def test_the_package_reference_is_the_one_recorded_with_the_study():
    info = json.loads((RESULTS / "normalization_provenance.json").read_text())
    recorded = info["stain_reference"]
    assert StainReference(stain_matrix=tuple(map(tuple, recorded["stain_matrix"])),
                          max_density=tuple(recorded["max_density"]),
                          percentile=recorded["percentile"]) == STAIN_REFERENCE
    assert info["stain_reference_images"] == {"data": "monuseg", "split": "train", "images": 30}


def test_normalization_study_scores_every_configuration_on_every_dataset(tmp_path):
    from ssimnet.config import SyntheticConfig, get_profile
    from ssimnet.datasets import write_synthetic_dataset
    from ssimnet.net.train import Trainer
    from ssimnet.runs.experiments import fit_stain_reference, normalization_study

    smoke = get_profile("smoke")
    data = write_synthetic_dataset(tmp_path / "syn", SyntheticConfig(n_train=2, n_test=1, shape=(128, 128), seed=5))
    reference = fit_stain_reference(data, "train", progress=False)
    trainer = Trainer.new(smoke.train, device="cpu", seed=0)
    normalizers = {"as it is": None, "normalised": StainNormalizer.from_reference(reference, min_scale=0.0, seed=0),
                   "brighten only": StainNormalizer.from_reference(reference, min_scale=1.0, seed=0)}
    datasets = {"train": (data, "train"), "other": (data, "test")}
    table = normalization_study(datasets, tmp_path / "run", smoke, trainer, normalizers, progress=False)
    counts = table.groupby(["split", "config"]).size().to_dict()
    assert counts == {(s, c): n for s, n in (("train", 2), ("other", 1))
                      for c in ("as it is", "normalised", "brighten only", "classical watershed")}
    assert table[["dice", "aji", "pq"]].apply(lambda c: c.between(0, 1).all()).all()
    # each normalisation is its own cached prediction folder; the unnormalised key is the one without the option
    folders = {p.name for p in (tmp_path / "run" / "predictions").iterdir()}
    assert len(folders) == 3 * 2
    again = normalization_study(datasets, tmp_path / "run", smoke, trainer, normalizers, progress=False)
    assert again.equals(table)
