"""Stain optics and separation (paper Eq. 1-2) against synthetic tiles with known stains."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import nnls

from ssimnet.pseudo.stain import (
    RUIFROK_HE,
    StainFallbackWarning,
    VahadaneSeparator,
    _lightness,
    factorize_stains,
    hematoxylin_image,
    nonnegative_unmix,
    od_to_rgb,
    rgb_to_od,
    sparse_stain_codes,
)
from ssimnet.synthetic import synthetic_tile


def _angles(estimated, true):
    return np.degrees(np.arccos(np.clip((estimated * true).sum(1), -1, 1)))


def test_od_round_trip_and_beer_lambert():
    rgb = np.arange(1, 256, dtype=np.uint8).reshape(-1, 1, 3)[:85]
    assert np.array_equal(od_to_rgb(rgb_to_od(rgb)), rgb)
    # two layers of the same stain transmit the product of their transmittances
    od = np.array([0.3, 0.5, 0.1])
    assert np.allclose(od_to_rgb(2 * od) / 255, (od_to_rgb(od) / 255) ** 2, atol=0.01)
    assert rgb_to_od(np.zeros((1, 3), np.uint8)).max() == pytest.approx(np.log(255))  # black stays finite


def test_rgb_to_od_table_equals_the_formula():
    levels = np.arange(256, dtype=np.uint8)
    table = rgb_to_od(np.stack([levels] * 3, axis=-1))  # uint8: read from the table
    formula = np.log(255.0 / np.clip(levels.astype(np.float64), 1.0, 255.0))
    assert np.array_equal(table, np.stack([formula] * 3, axis=-1))
    assert np.array_equal(rgb_to_od(levels.astype(np.float32)[:, None].repeat(3, 1)), table)  # the computed path
    table[0, 0] = -1.0  # each call returns its own array
    assert rgb_to_od(np.zeros((1, 3), np.uint8))[0, 0] == pytest.approx(np.log(255))


@pytest.mark.parametrize("solver", ["cd", "exact"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_vahadane_recovers_the_stains_of_synthetic_tiles(seed, solver):
    tile = synthetic_tile((256, 256), seed=seed)
    sep = VahadaneSeparator(seed=0, solver=solver).fit(tile.image)
    assert not sep.fallback_
    h_angle, e_angle = _angles(sep.stain_matrix_, tile.stains)
    # hematoxylin -- the stain Eq. 2 uses -- within 3 degrees; eosin is blurred by
    # the hematoxylin background of the stroma and lies within 8 degrees
    assert h_angle < 3.0 and e_angle < 8.0
    density = sep.transform(tile.image)
    assert density.shape == (256, 256, 2) and (density >= 0).all()
    assert np.corrcoef(density[..., 0].ravel(), tile.density[..., 0].ravel())[0, 1] > 0.9


@pytest.mark.parametrize("solver", ["cd", "exact"])
def test_hematoxylin_is_identified_by_colour_not_order(solver):
    tile = synthetic_tile((256, 256), seed=5)
    sep = VahadaneSeparator(seed=0, solver=solver).fit(tile.image)
    assert sep.stain_matrix_[0, 0] > sep.stain_matrix_[1, 0]  # hematoxylin absorbs more red
    assert _angles(sep.stain_matrix_[::-1], tile.stains).min() > 20  # the other order is clearly wrong


@pytest.mark.parametrize("solver", ["cd", "exact"])
def test_fit_is_deterministic(solver):
    image = synthetic_tile((256, 256), seed=7).image
    a = VahadaneSeparator(seed=3, solver=solver).fit(image).stain_matrix_
    b = VahadaneSeparator(seed=3, solver=solver).fit(image).stain_matrix_
    assert np.array_equal(a, b)


def _objective(od, stains, sparsity):
    codes = sparse_stain_codes(od, stains, sparsity=sparsity)
    return 0.5 * ((od - codes @ stains) ** 2).sum() + sparsity * codes.sum()


def test_sparse_stain_codes_are_the_exact_nonnegative_lasso():
    from scipy.optimize import minimize

    rng = np.random.default_rng(1)
    stains = RUIFROK_HE
    od = np.abs(rng.normal(0.3, 0.4, size=(60, 3)))
    ours = sparse_stain_codes(od, stains, sparsity=0.1)
    assert (ours >= 0).all()
    for v, c in zip(od, ours):
        f = lambda x: 0.5 * ((v - x @ stains) ** 2).sum() + 0.1 * x.sum()  # noqa: E731
        ref = minimize(f, np.full(2, 0.1), bounds=[(0, None)] * 2, method="L-BFGS-B", options={"ftol": 1e-15}).x
        assert f(c) <= f(ref) + 1e-9  # never worse than a numerical optimiser
        assert np.allclose(c, ref, atol=1e-4)
    # without the L1 term it is non-negative least squares
    assert np.allclose(sparse_stain_codes(od, stains, sparsity=0.0), nonnegative_unmix(od, stains), atol=1e-9)


def test_factorize_stains_lowers_the_objective_below_scikit_learns():
    tile = synthetic_tile((256, 256), seed=2)
    od = rgb_to_od(tile.image).reshape(-1, 3)
    od = od[od.sum(1) > 0.15][::4]
    exact = factorize_stains(od, sparsity=0.1)
    assert np.allclose(np.linalg.norm(exact, axis=1), 1.0) and (exact >= 0).all()
    assert _angles(exact, tile.stains)[0] < 3.0
    atoms = VahadaneSeparator(seed=0, solver="cd")._fit_cd(od)
    assert _objective(od, exact, 0.1) <= _objective(od, atoms, 0.1) + 1e-9
    # a stain that codes no pixel keeps its starting colour, and a start at the answer stays there
    single = np.outer(np.linspace(0.1, 1, 50), RUIFROK_HE[0])
    assert np.allclose(factorize_stains(single, sparsity=0.0, init=RUIFROK_HE), RUIFROK_HE, atol=1e-6)


def test_lightness_is_rgb2lab_bit_for_bit():
    from skimage.color import rgb2lab

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    image[0, :3] = [[0, 0, 0], [255, 255, 255], [10, 10, 10]]  # both branches of both curves
    assert np.array_equal(_lightness(image), rgb2lab(image)[..., 0])


def test_unknown_solver_is_refused():
    with pytest.raises(ValueError, match="solver"):
        VahadaneSeparator(solver="svd")


def test_nonnegative_unmix_matches_scipy_nnls():
    rng = np.random.default_rng(0)
    stains = RUIFROK_HE
    od = rng.normal(0.3, 0.4, size=(300, 3))
    ours = nonnegative_unmix(od, stains)
    ref = np.array([nnls(stains.T, v)[0] for v in od])
    assert np.allclose(ours, ref, atol=1e-9)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        nonnegative_unmix(od, np.eye(3))


@pytest.mark.parametrize("value", [255, 0, 128])
def test_blank_tiles_fall_back_to_the_reference_matrix(value):
    image = np.full((64, 64, 3), value, np.uint8)
    with pytest.warns(StainFallbackWarning):
        sep = VahadaneSeparator().fit(image)
    assert sep.fallback_ and np.array_equal(sep.stain_matrix_, RUIFROK_HE)
    h = hematoxylin_image(sep.transform(image), sep.stain_matrix_)
    assert h.dtype == np.uint8 and h.shape == image.shape


@pytest.mark.parametrize("solver", ["cd", "exact"])
def test_uniform_colour_tissue_degenerates_to_fallback(solver):
    image = np.full((64, 64, 3), 255, np.uint8)
    image[8:56, 8:56] = (80, 40, 140)  # one colour only: the two atoms cannot differ
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sep = VahadaneSeparator(solver=solver).fit(image)
    assert sep.fallback_ and any(issubclass(w.category, StainFallbackWarning) for w in caught)
    assert np.isfinite(sep.transform(image)).all()


def test_transform_before_fit():
    with pytest.raises(RuntimeError, match="fit"):
        VahadaneSeparator().transform(np.zeros((4, 4, 3), np.uint8))


def test_hematoxylin_image_keeps_only_hematoxylin():
    stains = RUIFROK_HE
    density = np.zeros((2, 2, 2))
    density[0, 0] = (1.0, 0.0)  # hematoxylin only
    density[0, 1] = (0.0, 1.0)  # eosin only
    h = hematoxylin_image(density, stains)
    assert np.array_equal(h[0, 1], [255, 255, 255])  # eosin is gone
    assert np.array_equal(h[0, 0], od_to_rgb(stains[0]))
