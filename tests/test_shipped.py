"""The network shipped in the package: its card, its bytes, its settings and its recorded scores."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import ssimnet.tool.shipped as shipped
from ssimnet.cli import main
from ssimnet.config import get_profile
from ssimnet.data import DataError, file_sha256, list_samples, read_label
from ssimnet.metrics import score
from ssimnet.net.checkpoint import load_checkpoint, load_trainer, save_checkpoint
from ssimnet.net.onnxnet import OnnxNetwork
from ssimnet.net.train import Trainer
from ssimnet.predict import predict_maps
from ssimnet.synthetic import synthetic_tile
from ssimnet.tool.shipped import check_shipped, compact_state, read_card, shipped_model_path

MONUSEG = Path(__file__).resolve().parents[2] / "shared" / "data" / "monuseg"


def test_the_shipped_files_are_the_ones_its_card_records():
    card = read_card()
    path, exported = check_shipped(), check_shipped(onnx=True)
    assert path == shipped_model_path() and file_sha256(path) == card["sha256"]
    assert exported == shipped_model_path(onnx=True) and file_sha256(exported) == card["onnx_sha256"]
    assert card["bytes"] == path.stat().st_size < 4_000_000  # small enough to ship in the package
    assert card["onnx_bytes"] == exported.stat().st_size < 4_000_000
    assert "CC BY-NC-SA 4.0" in card["licence"] and "pseudo labels only" in card["trained_on"]


@pytest.mark.parametrize("onnx", [False, True])
def test_a_changed_byte_is_refused(tmp_path, monkeypatch, onnx):
    name = shipped_model_path(onnx=onnx).name
    for copied in (name, shipped.shipped_card_path().name):
        shutil.copy(shipped.shipped_model_path().parent / copied, tmp_path / copied)
    monkeypatch.setattr(shipped, "_WEIGHTS", tmp_path)
    check_shipped(onnx=onnx)  # the copy is intact
    data = bytearray((tmp_path / name).read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / name).write_bytes(bytes(data))
    with pytest.raises(DataError, match="differ from its card"):
        check_shipped(onnx=onnx)
    (tmp_path / name).unlink()
    with pytest.raises(DataError, match="model is missing"):
        check_shipped(onnx=onnx)
    (tmp_path / shipped.shipped_card_path().name).unlink()
    with pytest.raises(DataError, match="card is missing"):
        check_shipped(onnx=onnx)


def test_the_onnx_export_predicts_what_the_checkpoint_predicts():
    """segment runs the export; fine-tuning and --device run the checkpoint: the two are one network."""
    network, exported = load_trainer(check_shipped()), OnnxNetwork.from_file(check_shipped(onnx=True))
    assert exported.architecture == network.architecture
    image = synthetic_tile((256, 256), seed=5).image
    a = predict_maps(network.model, image, tile=256, overlap=0, device="cpu")
    b = predict_maps(exported, image, tile=256, overlap=0)
    assert np.abs(a.probability - b.probability).max() < 1e-4 and np.abs(a.boundary - b.boundary).max() < 1e-4


def test_the_shipped_network_is_the_tool_of_the_cpu_profile():
    """When the tool's settings change, the shipped network must be retrained (studies/ship_model.py)."""
    profile = get_profile("cpu").for_tool()
    tool, selftrain = profile.train, profile.selftrain
    card = read_card()
    assert card["train"] == dataclasses.asdict(tool) and card["selftrain"] == dataclasses.asdict(selftrain)
    assert card["inference"] == dataclasses.asdict(profile.inference)
    trainer = load_trainer(check_shipped())
    arch = trainer.model.architecture
    assert (arch.depth, arch.width, arch.boundary) == (tool.depth, tool.width, True)
    assert trainer.epoch == card["epochs"] == tool.epochs + selftrain.rounds * selftrain.epochs
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # float16 on disk, float32 in use


def test_compaction_keeps_predictions_and_fine_tuning(tmp_path):
    config = dataclasses.replace(get_profile("smoke").train, boundary_width=2)
    trainer = Trainer.new(config, seed=3, device="cpu")
    # give Adam moments, with some second moments far below float16's smallest number
    loss = sum(p.square().sum() for p in trainer.model.parameters()) * 1e-4
    loss.backward()
    trainer.optimizer.step()
    full, small = tmp_path / "full.pt", tmp_path / "small.pt"
    save_checkpoint(full, trainer.state())
    save_checkpoint(small, compact_state(load_checkpoint(full)))
    assert small.stat().st_size < 0.6 * full.stat().st_size
    a, b = load_trainer(full), load_trainer(small)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a.model.eval(), b.model.eval()
        assert torch.allclose(a.model(x), b.model(x), atol=2e-2)
    moments = b.optimizer.state_dict()["state"]  # built from the stored state on first use
    assert all(m["exp_avg_sq"].dtype == torch.float32 for m in moments.values())
    stored = load_checkpoint(small)["optimizer"]["state"]
    nonzero = [bool((m["exp_avg_sq"] > 0).any()) for m in load_checkpoint(full)["optimizer"]["state"].values()]
    assert [bool((m["exp_avg_sq"] > 0).any()) for m in stored.values()] == nonzero  # no moment flushed to zero


def test_segment_uses_it_and_version_describes_it(capsys):
    assert main(["segment", "--version"]) == 0
    out = capsys.readouterr().out
    card = read_card()
    assert card["sha256"][:16] in out and card["onnx_sha256"][:16] in out and "CC BY-NC-SA" in out


@pytest.mark.skipif(not MONUSEG.is_dir(), reason="MoNuSeg not present beside the checkout")
def test_segment_scores_on_monuseg_test_are_the_recorded_ones(tmp_path):
    """As segment runs by default (the ONNX export), image by image."""
    recorded = read_card()["monuseg_test_images"]
    samples = list_samples(MONUSEG, "test")[:2]
    assert main(["segment", *(str(s.image_path) for s in samples), "--out", str(tmp_path), "--quiet"]) == 0
    for sample in samples:
        got = score(read_label(sample.label_path), read_label(tmp_path / f"{sample.name}_label.png"))
        want = recorded[sample.name]
        assert np.allclose([got.dice, got.aji, got.pq], [want["dice"], want["aji"], want["pq"]], atol=2e-3), sample.name
