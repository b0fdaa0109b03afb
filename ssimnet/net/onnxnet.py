"""A trained network without torch: its ONNX export, run by ONNX Runtime.

``ssimnet segment`` predicts with the shipped network's ONNX export when it
only predicts (no fine-tuning, on the CPU): importing ONNX Runtime takes
0.1 to 0.3 s here, importing torch 2 to 3 s, which was most of the start-up
of segmenting one image.

:func:`export_onnx` turns a torch network (:class:`ssimnet.net.model.UNet`) into
the bytes of an ONNX model of :class:`ssimnet.net.model.Predictor` -- uint8 images
in, the network's maps out (nucleus probability, then rim distance and
boundary when it has them) -- with its :class:`~ssimnet.net.architecture.Architecture`
in the model's metadata; it needs torch and the ``onnx`` package.
:class:`OnnxNetwork` runs those bytes on the CPU and needs neither; it stands
in for a torch network in :func:`ssimnet.predict.maps.predict_maps` and
:func:`ssimnet.predict.segment.segment_image`.

Examples
--------
>>> import torch
>>> from ssimnet.net.model import UNet
>>> torch.manual_seed(0) and None
>>> net = OnnxNetwork(export_onnx(UNet(depth=2, width=4)))
>>> net.architecture.depth, net.maps(np.zeros((1, 3, 8, 8), np.uint8)).shape
(2, (1, 1, 8, 8))
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import ONNX_OPSET
from ..data import DataError
from ..errors import first_line
from .architecture import Architecture
from .onnxwire import external_tensors

if TYPE_CHECKING:
    from .model import UNet

__all__ = ["ONNX_FORMAT", "ONNX_INFERENCE", "export_onnx", "with_inference", "OnnxNetwork"]

#: Metadata key of an ssimnet ONNX export; its value is the network's Architecture as JSON.
ONNX_FORMAT = "ssimnet-onnx-1"
#: Metadata key of the inference settings an export carries (:class:`ssimnet.config.InferenceConfig` as JSON).
ONNX_INFERENCE = "ssimnet-inference"


def export_onnx(model: UNet, *, opset: int = ONNX_OPSET, inference: dict[str, object] | None = None) -> bytes:
    """The bytes of an ONNX model of `model` that maps a uint8 (N, 3, H, W) batch to its maps.

    `inference`, the network's inference settings
    (:func:`dataclasses.asdict` of an :class:`ssimnet.config.InferenceConfig`),
    travels in the model's metadata (:func:`with_inference`).

    Batch size, height and width are free (height and width multiples of
    ``2 ** depth``).  The weights are `model`'s, in float32, in inference
    mode (batch normalisation by its running statistics).  `model` is left
    unchanged.  Needs torch and the ``onnx`` package.
    """
    import copy
    import io
    import warnings

    import onnx
    import torch

    from .model import Predictor

    arch = model.architecture
    predictor = Predictor(copy.deepcopy(model).cpu().float().eval())
    side = 2 ** arch.depth
    example = torch.zeros(1, arch.in_channels, side, side, dtype=torch.uint8)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the exporter's notices: TorchScript tracing, its own deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(predictor, (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=["image"], output_names=["maps"],
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                        "maps": {0: "batch", 2: "height", 3: "width"}})
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_FORMAT, json.dumps(arch.as_dict())
    return proto.SerializeToString() if inference is None else with_inference(proto.SerializeToString(), inference)


def with_inference(model: bytes, inference: dict[str, object]) -> bytes:
    """An ONNX export's bytes with `inference` as its stored inference settings (replacing any); the
    network itself is unchanged.  Needs the ``onnx`` package."""
    import onnx

    proto = onnx.load_from_string(model)
    kept = [p for p in proto.metadata_props if p.key != ONNX_INFERENCE]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_INFERENCE, json.dumps(inference, sort_keys=True)
    return proto.SerializeToString()


def _architecture(stored: str) -> Architecture:
    """The :class:`Architecture` an export's metadata describes, or a ValueError saying what is wrong with it."""
    try:
        values = json.loads(stored)
    except ValueError:
        raise ValueError(f"its {ONNX_FORMAT} metadata is not JSON") from None
    fields = set(Architecture.__dataclass_fields__)
    if not isinstance(values, dict) or set(values) - fields:
        raise ValueError(f"its {ONNX_FORMAT} metadata is not an architecture ({', '.join(sorted(fields))})")
    arch = Architecture(**values)
    ints = (arch.depth, arch.width, arch.in_channels, arch.out_channels)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints) or not isinstance(arch.boundary, bool) \
            or not (1 <= arch.depth <= 8 and arch.width >= 1 and arch.in_channels == 3
                    and 2 + arch.boundary <= arch.out_channels <= 4):
        raise ValueError(f"its {ONNX_FORMAT} metadata describes no ssimnet network: {values}")
    return arch


def _threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class OnnxNetwork:
    """A network's ONNX export (:func:`export_onnx`), run by ONNX Runtime on the CPU.

    Parameters
    ----------
    model : bytes
        The ONNX model.
    threads : int, optional
        Threads of one prediction (default: the CPUs this process may use).

    Raises
    ------
    ValueError
        If `model` is not an ssimnet ONNX export, or keeps tensors in other
        files (:func:`ssimnet.net.onnxwire.external_tensors`).
    """

    def __init__(self, model: bytes, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.model = bytes(model)
        self.threads = threads or _threads()
        try:
            external = external_tensors(self.model)
        except ValueError as exc:
            raise ValueError(f"not an ONNX model ({exc})") from None
        if external:
            raise ValueError(f"it keeps tensors in other files (external data: {external}), which ssimnet refuses; "
                             "save the model with every tensor inside it")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no notices on stderr
        try:
            self._session = ort.InferenceSession(self.model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own kinds on a damaged model
            raise ValueError(f"not an ONNX model ({first_line(exc, limit=120)})") from None
        stored = self._session.get_modelmeta().custom_metadata_map.get(ONNX_FORMAT)
        if stored is None:
            raise ValueError(f"an ONNX model, but not an ssimnet network (no {ONNX_FORMAT} metadata)")
        self.architecture = _architecture(stored)
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != "image" or inputs[0].type != "tensor(uint8)" or \
                inputs[0].shape[1] != self.architecture.in_channels:
            found = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
            raise ValueError(f"its input is not the uint8 'image' of {self.architecture.in_channels} channels an "
                             f"ssimnet export takes ({found})")
        settings = self._session.get_modelmeta().custom_metadata_map.get(ONNX_INFERENCE)
        #: The inference settings stored with the export (a dict), or None for an export without them.
        self.inference: dict[str, object] | None = json.loads(settings) if settings else None
        self.digest = hashlib.sha256(self.model).hexdigest()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, threads: int | None = None) -> OnnxNetwork:
        """The network in the ONNX file at `path`.

        Raises
        ------
        DataError
            If the file is missing or is not an ssimnet ONNX export.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "ONNX network not found")
        try:
            return cls(path.read_bytes(), threads=threads)
        except ValueError as exc:
            raise DataError(path, str(exc)) from None

    def maps(self, batch: np.ndarray) -> np.ndarray:
        """The network's maps (N, C, H, W), float32, of a uint8 (N, 3, H, W) batch.

        Raises
        ------
        ValueError
            If the batch is not uint8 of that shape with sides a multiple of ``2 ** depth``.
        """
        batch = np.asarray(batch)
        factor = 2 ** self.architecture.depth
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1] != self.architecture.in_channels:
            raise ValueError(f"expected a uint8 (N, {self.architecture.in_channels}, H, W) batch, "
                             f"got {batch.dtype} of shape {batch.shape}")
        if batch.shape[2] % factor or batch.shape[3] % factor:
            raise ValueError(f"input size {batch.shape[2:]} is not a multiple of {factor}")
        return self._session.run(None, {"image": np.ascontiguousarray(batch)})[0]

    def with_threads(self, threads: int) -> OnnxNetwork:
        """The same network, predicting with `threads` threads (a worker process's share of the CPUs)."""
        return OnnxNetwork(self.model, threads=threads)

    def __reduce__(self) -> tuple[type, tuple[bytes]]:  # the bytes cross a process pool, not the session
        return type(self), (self.model,)
