"""A network's ONNX export (ssimnet.net.onnxnet): the same maps as the torch network, without torch at prediction."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from conftest import SMOKE

from ssimnet.config import get_profile
from ssimnet.data import DataError, read_label, write_image
from ssimnet.net.model import Predictor, UNet
from ssimnet.net.onnxnet import ONNX_FORMAT, OnnxNetwork, export_onnx
from ssimnet.net.train import Trainer
from ssimnet.predict import predict_maps, segment_image
from ssimnet.synthetic import synthetic_tile


@pytest.fixture(scope="module")
def unet() -> UNet:
    """A small network with the boundary output and batch-norm statistics of its own (not 0 and 1)."""
    torch.manual_seed(0)
    model = UNet(depth=2, width=4, out_channels=3, boundary=True)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 3, 32, 32) * 0.8)
    return model.eval()


@pytest.fixture(scope="module")
def exported(unet) -> OnnxNetwork:
    return OnnxNetwork(export_onnx(unet))


def _torch_maps(model: UNet, batch: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return Predictor(model).eval()(torch.from_numpy(batch)).numpy()


@pytest.mark.parametrize("shape", [(1, 3, 32, 32), (2, 3, 64, 48)])  # batch, height and width are free
def test_the_export_computes_the_torch_network(unet, exported, shape):
    batch = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    got, want = exported.maps(batch), _torch_maps(unet, batch)
    assert got.dtype == np.float32 and got.shape == (shape[0], 2, *shape[2:])  # probability and boundary
    assert np.abs(got - want).max() < 1e-5
    assert 0 <= got.min() and got.max() <= 1 and got.std() > 0  # a real map, not a constant


def test_the_export_leaves_the_network_unchanged_and_records_its_architecture(unet, exported):
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    data = export_onnx(unet)
    assert all(torch.equal(before[k], v) for k, v in unet.state_dict().items()) and not unet.training
    assert exported.architecture == unet.architecture
    assert OnnxNetwork(data).digest == hashlib.sha256(data).hexdigest()


def test_predict_maps_is_the_same_with_either_network(unet, exported):
    image = synthetic_tile((100, 90), seed=4).image
    for tta in (False, True):
        a = predict_maps(unet, image, tile=64, overlap=16, device="cpu", tta=tta)
        b = predict_maps(exported, image, tile=64, overlap=16, tta=tta)
        assert a.distance is None and b.distance is None
        assert np.abs(a.probability - b.probability).max() < 1e-5 and np.abs(a.boundary - b.boundary).max() < 1e-5
    with pytest.raises(ValueError, match="runs on the CPU"):
        predict_maps(exported, image, tile=64, overlap=16, device="cuda")


def test_it_crosses_processes_and_takes_a_thread_count(exported):
    batch = np.random.default_rng(1).integers(0, 256, (1, 3, 32, 32), dtype=np.uint8)
    copy = pickle.loads(pickle.dumps(exported))
    assert copy.digest == exported.digest and np.array_equal(copy.maps(batch), exported.maps(batch))
    single = exported.with_threads(1)
    assert single.threads == 1 and np.abs(single.maps(batch) - exported.maps(batch)).max() < 1e-6


def test_bad_models_and_batches_are_refused(unet, exported, tmp_path):
    with pytest.raises(ValueError, match="not an ONNX model"):
        OnnxNetwork(b"not a model")
    proto = onnx.load_from_string(export_onnx(unet))
    del proto.metadata_props[:]
    with pytest.raises(ValueError, match=f"no {ONNX_FORMAT} metadata"):
        OnnxNetwork(proto.SerializeToString())
    with pytest.raises(DataError, match="missing.onnx: ONNX network not found"):
        OnnxNetwork.from_file(tmp_path / "missing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"\x00" * 10)
    with pytest.raises(DataError, match="bad.onnx: not an ONNX model"):
        OnnxNetwork.from_file(tmp_path / "bad.onnx")
    with pytest.raises(ValueError, match="uint8"):
        exported.maps(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="not a multiple of 4"):
        exported.maps(np.zeros((1, 3, 30, 32), np.uint8))


def test_segment_image_predicts_with_it_and_refuses_to_fine_tune_it():
    trainer = Trainer.new(SMOKE.train, seed=0, device="cpu")
    exported = OnnxNetwork(export_onnx(trainer.model))
    image = synthetic_tile((128, 128), seed=21).image
    settings = dataclasses.replace(SMOKE.inference, finetune_epochs=0)
    a = segment_image(image, trainer, settings)
    b = segment_image(image, exported, settings)
    assert np.abs(a.probability - b.probability).max() < 1e-5
    assert np.mean(a.label.astype(bool) == b.label.astype(bool)) > 0.999
    with pytest.raises(ValueError, match="only predicts"):
        segment_image(image, exported, dataclasses.replace(settings, finetune_epochs=1))


def test_segment_predicts_without_importing_torch(tmp_path):
    """The default of ssimnet segment (the shipped network, no fine-tuning) never loads torch: its import
    alone took longer than the rest of segmenting a 1000x1000 image."""
    write_image(tmp_path / "tile.png", synthetic_tile((256, 256), seed=2).image)
    write_image(tmp_path / "tiny.png", synthetic_tile((40, 30), seed=3).image)  # one tile smaller than the overlap
    code = ("import sys; from ssimnet.cli import main; "
            f"code = main(['segment', {str(tmp_path / 'tile.png')!r}, {str(tmp_path / 'tiny.png')!r}, "
            f"'--out', {str(tmp_path / 'out')!r}, '--quiet']); print(code, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-2:] == ["0", "False"], done.stdout + done.stderr
    assert read_label(tmp_path / "out" / "tile_label.png").shape == (256, 256)
    assert read_label(tmp_path / "out" / "tiny_label.png").shape == (40, 30)


def test_segment_drops_exactly_the_nuclei_below_the_object_probability(tmp_path, capsys):
    from scipy import ndimage as ndi

    from ssimnet.cli import main
    from ssimnet.tool.shipped import shipped_model_path

    image = synthetic_tile((256, 256), seed=4).image
    write_image(tmp_path / "tile.png", image)
    tool = get_profile("cpu").for_tool()
    assert tool.inference.min_object_probability == 0.5  # the default segment runs with

    def segment(least: str) -> np.ndarray:
        out = tmp_path / f"out{least}"
        assert main(["segment", str(tmp_path / "tile.png"), "--out", str(out), "--quiet", "--no-normalize",
                     "--min-object-probability", least]) == 0
        return read_label(out / "tile_label.png")

    every = segment("0")
    network = OnnxNetwork.from_file(shipped_model_path(onnx=True))
    probability = segment_image(image, network, tool.inference).probability
    means = ndi.mean(probability, every, index=np.arange(1, every.max() + 1))
    least = float(np.round(np.median(means), 3))  # half the nuclei fall below it
    kept = segment(str(least))
    assert 0 < kept.max() < every.max()
    survivors = np.flatnonzero(means >= least) + 1
    assert kept.max() == len(survivors) and ((kept > 0) == np.isin(every, survivors)).all()
    for nucleus in range(1, kept.max() + 1):  # each kept nucleus is one of them, pixel for pixel
        same = np.unique(every[kept == nucleus])
        assert len(same) == 1 and (every == same[0]).sum() == (kept == nucleus).sum()
    assert main(["segment", str(tmp_path / "tile.png"), "--out", str(tmp_path / "bad"),
                 "--min-object-probability", "1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--min-object-probability" in err[0] and "[0, 1)" in err[0]
    assert not (tmp_path / "bad").exists()


def test_the_wire_schema_is_onnx_s_own():
    """The field numbers external_tensors follows are those of the onnx package's own descriptors."""
    from ssimnet.net.onnxwire import SCHEMA

    for message, fields in SCHEMA.items():
        descriptor = getattr(onnx, message).DESCRIPTOR
        for number, held in fields.items():
            field = descriptor.fields_by_number[number]
            assert field.message_type is not None and field.message_type.name == held, (message, number)


@pytest.mark.parametrize("where", ["initializer", "constant", "subgraph"])
def test_external_data_is_refused_wherever_the_tensor_is(unet, tmp_path, monkeypatch, where):
    """A crafted export whose tensor points at another file (ONNX Runtime would read it from the working
    directory) is refused before ONNX Runtime sees it: in the graph's initializers, in a Constant node's
    attribute, and in a graph nested in an If node."""
    from onnx import TensorProto, helper
    from onnx.external_data_helper import set_external_data

    from ssimnet.net.onnxwire import external_tensors

    proto = onnx.load_from_string(export_onnx(unet))
    assert external_tensors(proto.SerializeToString()) == 0
    secret = helper.make_tensor("w", TensorProto.FLOAT, [4], np.ones(4, np.float32).tobytes(), raw=True)
    set_external_data(secret, location="secret.bin")
    secret.ClearField("raw_data")
    (tmp_path / "secret.bin").write_bytes(np.full(4, 7, np.float32).tobytes())
    if where == "initializer":
        proto.graph.initializer.append(secret)
    else:
        constant = helper.make_node("Constant", [], ["c"], value=secret)
        if where == "constant":
            proto.graph.node.append(constant)
        else:
            branch = helper.make_graph([constant], "branch", [], [helper.make_tensor_value_info("c", 1, [4])])
            empty = helper.make_graph([], "empty", [], [])
            proto.graph.node.append(helper.make_node("If", ["cond"], ["c"], then_branch=branch, else_branch=empty))
    crafted = proto.SerializeToString()
    assert external_tensors(crafted) == 1
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"keeps tensors in other files \(external data: 1\)"):
        OnnxNetwork(crafted)
    (tmp_path / "crafted.onnx").write_bytes(crafted)
    with pytest.raises(DataError, match="crafted.onnx: it keeps tensors in other files"):
        OnnxNetwork.from_file(tmp_path / "crafted.onnx")


def test_a_truncated_model_is_refused_in_one_line(unet):
    model = export_onnx(unet)
    with pytest.raises(ValueError, match="not an ONNX model"):
        OnnxNetwork(model[: len(model) // 2])
