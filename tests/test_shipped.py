"""The network shipped in the package: its card, its bytes, its settings and its recorded scores."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import ssimnet.shipped as shipped
from ssimnet.cli import main
from ssimnet.config import get_profile
from ssimnet.data import DataError, file_sha256, list_samples, read_label
from ssimnet.metrics import score
from ssimnet.shipped import check_shipped, compact_state, read_card, shipped_model_path
from ssimnet.store import load_checkpoint, load_trainer, save_checkpoint
from ssimnet.train import Trainer

MONUSEG = Path(__file__).resolve().parents[2] / "shared" / "data" / "monuseg"


def test_the_shipped_file_is_the_one_its_card_records():
    card = read_card()
    path = check_shipped()
    assert path == shipped_model_path() and file_sha256(path) == card["sha256"]
    assert card["bytes"] == path.stat().st_size < 4_000_000  # small enough to ship in the package
    assert "CC BY-NC-SA 4.0" in card["licence"] and "pseudo labels only" in card["trained_on"]


def test_a_changed_byte_is_refused(tmp_path, monkeypatch):
    for name in (shipped_model_path().name, shipped.shipped_card_path().name):
        shutil.copy(shipped.shipped_model_path().parent / name, tmp_path / name)
    monkeypatch.setattr(shipped, "_WEIGHTS", tmp_path)
    check_shipped()  # the copy is intact
    data = bytearray((tmp_path / shipped_model_path().name).read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / shipped_model_path().name).write_bytes(bytes(data))
    with pytest.raises(DataError, match="differ from its card"):
        check_shipped()
    (tmp_path / shipped.shipped_card_path().name).unlink()
    with pytest.raises(DataError, match="card is missing"):
        check_shipped()


def test_the_shipped_network_is_the_tool_of_the_cpu_profile():
    """When the tool's settings change, the shipped network must be retrained (studies/ship_model.py)."""
    tool = get_profile("cpu").for_tool().train
    card = read_card()
    assert card["train"] == dataclasses.asdict(tool)
    trainer = load_trainer(check_shipped())
    arch = trainer.model.architecture
    assert (arch.depth, arch.width, arch.boundary) == (tool.depth, tool.width, True)
    assert trainer.epoch == card["epochs"] == tool.epochs + tool.selftrain_rounds * tool.selftrain_epochs
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
    with pytest.raises(SystemExit) as exit_:
        main(["segment", "--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert read_card()["sha256"][:16] in out and "CC BY-NC-SA" in out


@pytest.mark.skipif(not MONUSEG.is_dir(), reason="MoNuSeg not present beside the checkout")
def test_segment_scores_on_monuseg_test_are_the_recorded_ones(tmp_path):
    recorded = read_card()["monuseg_test_images"]
    samples = list_samples(MONUSEG, "test")[:2]
    assert main(["segment", *(str(s.image_path) for s in samples), "--out", str(tmp_path), "--quiet"]) == 0
    for sample in samples:
        got = score(read_label(sample.label_path), read_label(tmp_path / f"{sample.name}_label.png"))
        want = recorded[sample.name]
        assert np.allclose([got.dice, got.aji, got.pq], [want["dice"], want["aji"], want["pq"]], atol=2e-3), sample.name
