"""Eq. 5 loss, deterministic and resumable training, fine-tuning, tiled inference, instances, checkpoints."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import PSEUDO, TINY
from skimage.draw import disk

from ssimnet.config import InferenceConfig, TrainConfig
from ssimnet.data import DataError
from ssimnet.metrics import pixel_scores
from ssimnet.net.checkpoint import load_checkpoint, save_checkpoint
from ssimnet.net.model import Architecture, UNet
from ssimnet.net.train import PatchData, Trainer, TrainingDiverged, ssimnet_loss
from ssimnet.predict import inference_tile, instances, measure_nuclei, predict_probability, segment_image
from ssimnet.pseudo import pseudo_labels
from ssimnet.synthetic import synthetic_tile


@pytest.fixture(scope="module")
def tile():
    return synthetic_tile((128, 128), seed=21)


@pytest.fixture(scope="module")
def data(tile):
    return PatchData.from_pseudo_labels({"t": (tile.image, pseudo_labels(tile.image, PSEUDO))}, size=64, keep=1.0)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# ----------------------------------------------------------------- loss


def test_loss_hand_computed():
    logits = torch.zeros(1, 2, 2, 2)
    soft = torch.full((1, 1, 2, 2), 0.5)
    tri = torch.tensor([[[1, 0], [2, 2]]])
    terms = ssimnet_loss(logits, soft, tri, lam=0.9)
    assert float(terms.bce) == pytest.approx(math.log(2)) and float(terms.ce) == pytest.approx(math.log(2))
    # nucleus logit 2 vs 0: p = sigmoid(2); BCE against 1 is -log p; CE on a nucleus point is the same
    logits = torch.zeros(1, 2, 1, 1)
    logits[0, 1] = 2.0
    terms = ssimnet_loss(logits, torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, dtype=torch.long), lam=0.3)
    expected = -math.log(1 / (1 + math.exp(-2)))
    assert float(terms.total) == pytest.approx(expected)


def test_loss_over_all_pixels_counts_ignored_ones_as_zero():
    # two labelled pixels of four: logits 0 give CE log 2 on each; over all four pixels the mean halves
    logits = torch.zeros(1, 2, 2, 2)
    soft, tri = torch.full((1, 1, 2, 2), 0.5), torch.tensor([[[1, 0], [2, 2]]])
    terms = ssimnet_loss(logits, soft, tri, lam=0.9, ce_pixels="all")
    assert float(terms.ce) == pytest.approx(math.log(2) / 2)
    assert float(terms.total) == pytest.approx(0.9 * math.log(2) + 0.1 * math.log(2) / 2)
    # nothing ignored: both readings agree
    full = torch.tensor([[[1, 0], [0, 1]]])
    assert float(ssimnet_loss(logits, soft, full, ce_pixels="all").ce) == pytest.approx(
        float(ssimnet_loss(logits, soft, full).ce))
    with pytest.raises(ValueError, match="ce_pixels"):
        TrainConfig(ce_pixels="some")


def test_loss_with_every_pixel_ignored_has_no_ce_term():
    logits = torch.randn(2, 2, 4, 4, requires_grad=True)
    terms = ssimnet_loss(logits, torch.rand(2, 1, 4, 4), torch.full((2, 4, 4), 2), lam=0.9)
    assert float(terms.ce.detach()) == 0.0 and torch.isfinite(terms.total)
    terms.total.backward()
    assert torch.isfinite(logits.grad).all()


def test_bce_term_is_minimal_at_the_soft_label():
    soft = torch.full((1, 1, 1, 1), 0.8)
    tri = torch.full((1, 1, 1), 2)
    losses = {}
    for p in (0.6, 0.8, 0.95):
        logits = torch.zeros(1, 2, 1, 1)
        logits[0, 1] = math.log(p / (1 - p))
        losses[p] = float(ssimnet_loss(logits, soft, tri).bce)
    assert losses[0.8] < losses[0.6] and losses[0.8] < losses[0.95]


# ----------------------------------------------------------------- data and augmentation


def test_augmentation_moves_image_and_labels_together():
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    soft = image[..., 0].astype(np.float32) / 255.0  # the label is the red channel
    tri = (image[..., 1] % 3).astype(np.uint8)
    distance = image[..., 2].astype(np.float32) / 255.0  # the rim-distance target is the blue channel
    data = PatchData({"a": image}, {"a": soft}, {"a": tri}, [("a", 0, 0)] * 8, 64)
    x, y, z, d, b = next(data.batches(torch.Generator().manual_seed(1), 8, augment=True))
    assert torch.allclose(x[:, 0:1], y)
    assert torch.equal((x[:, 1] * 255).round().long() % 3, z)
    assert d is None and b is None  # no distance or boundary targets
    assert len({tuple(t.flatten()[:20].tolist()) for t in y}) > 1  # different samples, different transforms
    data = dataclasses.replace(data, distance={"a": distance})
    batch = next(data.batches(torch.Generator().manual_seed(1), 8, augment=True))
    assert torch.allclose(batch.x[:, 2], batch.distance) and torch.equal(batch.soft, y)  # same draws as before
    assert batch.boundary is None
    data = dataclasses.replace(data, boundary={"a": 1.0 - distance})  # the boundary target: one minus the blue channel
    batch = next(data.batches(torch.Generator().manual_seed(1), 8, augment=True))
    assert torch.allclose(1.0 - batch.x[:, 2], batch.boundary, atol=1e-6) and torch.allclose(batch.x[:, 2], batch.distance)
    assert torch.equal(batch.soft, y)


# ----------------------------------------------------------------- training


def test_same_seed_same_weights(data):
    a = Trainer.new(TINY, seed=3, device="cpu").fit(data, 2, progress=False)
    b = Trainer.new(TINY, seed=3, device="cpu").fit(data, 2, progress=False)
    c = Trainer.new(TINY, seed=4, device="cpu").fit(data, 2, progress=False)
    assert _same_weights(a.model, b.model) and not _same_weights(a.model, c.model)
    assert a.history[0]["lr"] == pytest.approx(TINY.lr) and a.history[1]["lr"] == pytest.approx(TINY.lr * 0.98)


def test_resume_from_checkpoint_gives_the_uninterrupted_result(data, tmp_path):
    straight = Trainer.new(TINY, seed=5, device="cpu").fit(data, 3, progress=False)
    first = Trainer.new(TINY, seed=5, device="cpu").fit(data, 1, progress=False)
    save_checkpoint(tmp_path / "ck.pt", first.state())
    resumed = Trainer.from_state(load_checkpoint(tmp_path / "ck.pt"), TINY, device="cpu").fit(data, 3, progress=False)
    assert resumed.epoch == 3 and _same_weights(straight.model, resumed.model)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(data, tmp_path):
    path = tmp_path / "ck.pt"
    trainer = Trainer.new(TINY, seed=0, device="cpu")
    trainer.fit(data, 1, on_epoch_end=lambda t: save_checkpoint(path, t.state()), progress=False)
    saved = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    poisoned = dataclasses.replace(data, soft={k: np.full_like(v, np.nan) for k, v in data.soft.items()})
    with pytest.raises(TrainingDiverged, match="loss became nan in epoch 2"):
        trainer.fit(poisoned, 2, on_epoch_end=lambda t: save_checkpoint(path, t.state()), progress=False)
    state = load_checkpoint(path)
    assert state["epoch"] == 1
    assert all(torch.equal(state["model"][k], saved[k]) for k in saved)


def test_checkpoint_of_another_architecture_is_refused(data, tmp_path):
    state = Trainer.new(TINY, seed=0, device="cpu").state()
    with pytest.raises(ValueError, match="depth 2, width 4 and 2 outputs, but depth 3, width 4 and 2 outputs"):
        Trainer.from_state(state, dataclasses.replace(TINY, depth=3), device="cpu")
    with pytest.raises(ValueError, match="and 2 outputs, but depth 2, width 4 and 3 outputs"):
        Trainer.from_state(state, dataclasses.replace(TINY, distance_weight=1.0), device="cpu")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.pt: not an ssimnet checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="format tag"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(DataError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_finetune_copy_leaves_the_original_and_continues_its_optimiser(data):
    trainer = Trainer.new(TINY, seed=1, device="cpu").fit(data, 2, progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    tuned = trainer.finetune_copy(data, 2)
    assert all(torch.equal(trainer.model.state_dict()[k], before[k]) for k in before)
    assert not _same_weights(trainer.model, tuned.model)
    assert tuned.epoch == 4 and len(tuned.history) == 2
    assert tuned.history[0]["lr"] == pytest.approx(TINY.lr * 0.98**2)  # the schedule goes on


def test_finetune_lr_overrides_the_schedule(data):
    trainer = Trainer.new(TINY, seed=1, device="cpu").fit(data, 2, progress=False)
    tuned = trainer.finetune_copy(data, 1, lr=0.0)
    assert tuned.history[0]["lr"] == 0.0
    # a zero rate moves no weight; only batch-norm statistics follow the new data
    for (name, a), b in zip(trainer.model.state_dict().items(), tuned.model.state_dict().values()):
        assert torch.equal(a, b) == (not ("running" in name or "num_batches" in name)), name
    tuned = Trainer.new(TINY, seed=1, device="cpu").fit(data, 2, progress=False).finetune_copy(data, 2, lr=1e-4)
    assert [h["lr"] for h in tuned.history] == pytest.approx([1e-4, 1e-4 * 0.98])


def test_network_learns_synthetic_nuclei_from_pseudo_labels(tile, data):
    config = dataclasses.replace(TINY, depth=2, width=8, epochs=25, lr=1e-2)
    trainer = Trainer.new(config, seed=0, device="cpu").fit(data, config.epochs, progress=False)
    prob = predict_probability(trainer.model, tile.image, tile=64, overlap=16, device="cpu")
    _, _, dice = pixel_scores(tile.label, (prob > 0.5).astype(int))
    assert trainer.history[-1]["loss"] < trainer.history[0]["loss"]
    assert dice > 0.8


# ----------------------------------------------------------------- inference


class _PixelModel(torch.nn.Module):
    """Nucleus logit = 8 * (0.5 - red): a per-pixel rule whose probability tiling must not change."""

    architecture = Architecture(out_channels=2)

    def forward(self, x):
        return torch.cat([torch.zeros_like(x[:, :1]), 8 * (0.5 - x[:, :1])], dim=1)


@pytest.mark.parametrize("shape", [(300, 517), (100, 90), (256, 256)])
def test_tiled_prediction_equals_per_pixel_rule(shape):
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    prob = predict_probability(_PixelModel(), image, tile=128, overlap=32, device="cpu")
    expected = 1 / (1 + np.exp(-8 * (0.5 - image[..., 0] / 255.0)))
    assert prob.shape == shape and np.allclose(prob, expected, atol=1e-5)


def test_tta_keeps_a_per_pixel_rule_and_makes_the_unet_rotation_equivariant():
    image = np.random.default_rng(1).integers(0, 256, (200, 150, 3), dtype=np.uint8)
    # A per-pixel rule is unchanged by averaging over orientations (tiling included).
    plain = predict_probability(_PixelModel(), image, tile=128, overlap=32, device="cpu")
    assert np.allclose(predict_probability(_PixelModel(), image, tile=128, overlap=32, device="cpu", tta=True), plain, atol=1e-5)
    # On one square tile, the average over the 8 orientations commutes with rotations and mirrors.
    torch.manual_seed(0)
    model = UNet(depth=2, width=4)
    tile = np.ascontiguousarray(image[:64, :64])

    def predict(x, tta):
        return predict_probability(model, np.ascontiguousarray(x), tile=64, overlap=0, device="cpu", tta=tta)

    for turn in (lambda a: np.rot90(a, 1), lambda a: a[:, ::-1]):
        assert np.allclose(predict(turn(tile), True), turn(predict(tile, True)), atol=1e-5)
    assert not np.allclose(predict(np.rot90(tile, 1), False), np.rot90(predict(tile, False)), atol=1e-5)


def test_instances_cc_and_watershed():
    yy, xx = np.mgrid[0:60, 0:80]
    prob = np.exp(-((yy - 30) ** 2 + (xx - 28) ** 2) / 120) + np.exp(-((yy - 30) ** 2 + (xx - 50) ** 2) / 120)
    prob = np.clip(prob, 0, 1)
    rr, cc = disk((8, 70), 2)
    prob[rr, cc] = 0.9  # a speck below min_size
    cc_labels = instances(prob, method="cc", min_size=20)
    ws_labels = instances(prob, method="watershed", min_size=20)
    assert cc_labels.max() == 1  # the two touching blobs merge
    assert ws_labels.max() == 2  # the watershed splits them at the saddle
    assert ws_labels[30, 28] != ws_labels[30, 50] and ws_labels[8, 70] == 0
    assert ((ws_labels > 0) == (cc_labels > 0)).all()
    with pytest.raises(ValueError, match="method"):
        instances(prob, method="magic")


def test_instances_drop_the_nuclei_the_network_is_unsure_of():
    prob = np.zeros((40, 90), np.float32)
    prob[5:15, 5:15] = 0.9   # sure: mean 0.9
    prob[5:15, 30:40] = 0.35  # unsure: mean 0.35, above the pixel threshold
    prob[20:30, 55:85] = 0.8  # half sure, half not: mean (0.8 * 150 + 0.25 * 150) / 300 = 0.525
    prob[20:30, 70:85] = 0.25
    for method in ("cc", "distance"):
        every = instances(prob, method=method, threshold=0.2, min_size=20)
        kept = instances(prob, method=method, threshold=0.2, min_size=20, min_object_probability=0.5)
        assert every.max() >= 3 and kept.max() == 2
        assert kept[10, 35] == 0 and every[10, 35] > 0  # the unsure one is gone
        assert kept[10, 10] == 1 and kept[25, 60] == 2  # the others keep their pixels, numbered 1, 2
        assert ((kept > 0) == ((every > 0) & ~(every == every[10, 35]))).all()
        assert (instances(prob, method=method, threshold=0.2, min_size=20, min_object_probability=0.0) == every).all()
    with pytest.raises(ValueError, match="min_object_probability"):
        InferenceConfig(min_object_probability=1.0)


def test_measure_nuclei():
    label = np.zeros((20, 20), np.int32)
    label[2:6, 2:6] = 1
    label[10:12, 5:15] = 4
    hema = np.zeros((20, 20))
    hema[label == 4] = 2.0
    table = measure_nuclei(label, hema)
    assert list(table["id"]) == [1, 4] and list(table["area"]) == [16, 20]
    assert table["centroid_row"][0] == pytest.approx(3.5) and table["centroid_col"][1] == pytest.approx(9.5)
    assert table["eccentricity"][0] == pytest.approx(0.0, abs=1e-9) and table["eccentricity"][1] > 0.9
    assert list(table["mean_hematoxylin"]) == [0.0, 2.0]


def test_measure_nuclei_equals_regionprops_on_random_shapes():
    from skimage.measure import regionprops_table

    rng = np.random.default_rng(3)
    label = np.zeros((300, 400), np.int32)
    for i in range(1, 120):  # overlapping ellipses of every orientation, later ones on top; some ids vanish
        r, c, a, b, t = rng.uniform(0, 300), rng.uniform(0, 400), rng.uniform(1, 15), rng.uniform(1, 15), rng.uniform(0, np.pi)
        yy, xx = np.mgrid[:300, :400]
        u, v = (yy - r) * np.cos(t) + (xx - c) * np.sin(t), -(yy - r) * np.sin(t) + (xx - c) * np.cos(t)
        label[(u / a) ** 2 + (v / b) ** 2 <= 1] = i * 3
    hema = rng.random(label.shape)
    ours = measure_nuclei(label, hema)
    ref = regionprops_table(label, intensity_image=hema, properties=["label", "area", "centroid", "eccentricity", "intensity_mean"])
    assert np.array_equal(ours["id"], ref["label"]) and np.array_equal(ours["area"], ref["area"])
    for mine, theirs in [("centroid_row", "centroid-0"), ("centroid_col", "centroid-1"), ("eccentricity", "eccentricity"),
                         ("mean_hematoxylin", "intensity_mean")]:
        assert np.allclose(ours[mine], ref[theirs], atol=1e-9), mine
    empty = measure_nuclei(np.zeros((5, 5), np.int32))
    assert all(len(v) == 0 for v in empty.values())


def test_segment_image_end_to_end(tile, data):
    settings = InferenceConfig(finetune_epochs=1, tile_overlap=16, tile_size=PSEUDO.patch_size, region_halo=16)
    trainer = Trainer.new(TINY, seed=0, device="cpu").fit(data, 1, progress=False)
    result = segment_image(tile.image, trainer, settings, pseudo_config=PSEUDO)
    assert result.label.shape == tile.label.shape and result.label.dtype == np.int32
    assert len(result.finetune_history) == 1 and trainer.epoch == 1
    plain = segment_image(tile.image, trainer, dataclasses.replace(settings, finetune_epochs=0), pseudo_config=PSEUDO)
    assert plain.finetune_history == [] and not np.array_equal(plain.probability, result.probability)
    # one tile over the whole image predicts what the patch-size tiles do, but at their seams
    whole = segment_image(tile.image, trainer, dataclasses.replace(settings, finetune_epochs=0, tile_size=4096))
    assert whole.label.shape == plain.label.shape
    assert np.abs(whole.probability - plain.probability).mean() < 0.02


def test_inference_tile_is_the_smallest_cover_within_the_limit():
    assert inference_tile((500, 600), largest=1024, multiple=16) == 608
    assert inference_tile((1024, 10), largest=1024, multiple=16) == 1024
    assert inference_tile((5000, 5000), largest=1000, multiple=16) == 992  # the limit, rounded down to a step
    with pytest.raises(ValueError, match="smaller than one step"):
        inference_tile((100, 100), largest=8, multiple=16)


def test_unet_checks_input_size():
    with pytest.raises(ValueError, match="multiple of 4"):
        UNet(depth=2, width=2)(torch.zeros(1, 3, 30, 30))


def test_a_checkpoint_of_the_old_layout_keeps_its_inference_settings(tmp_path):
    from ssimnet.net.checkpoint import load_model

    state = Trainer.new(TINY, seed=0, device="cpu").state()
    state["config"] = {**state["config"], "instances": "distance", "min_size": 12, "finetune_lr": 1e-5,
                       "finetune_epochs": 5, "selftrain_rounds": 1}  # as 0.1 wrote it
    save_checkpoint(tmp_path / "old.pt", state)
    trainer, inference = load_model(tmp_path / "old.pt")
    assert trainer.config == TINY  # fine-tuning, inference and self-training are no training settings
    assert inference == {"instances": "distance", "min_size": 12, "finetune_lr": 1e-5}  # what segment read of them
