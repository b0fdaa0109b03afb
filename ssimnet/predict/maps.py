"""Probability maps of any image size: the network on overlapping tiles, blended.

:func:`predict_maps` (and :func:`predict_probability`) runs the network on overlapping tiles (the patch
size, overlapping by ``overlap`` pixels, the last ones aligned to the border)
and blends them with a weight that falls linearly towards each tile's edge, so
seams do not show; an image smaller than a tile is reflect-padded.  The network
is a torch :class:`ssimnet.net.model.UNet` or its ONNX export
(:class:`ssimnet.net.onnxnet.OnnxNetwork`), which needs no torch.

Examples
--------
>>> inference_tile((1000, 1000), largest=1024, multiple=16)
1008
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..config import DEFAULT_INFERENCE, DEFAULT_PSEUDO, DEFAULT_TRAIN
from ..net.onnxnet import OnnxNetwork
from ..pseudo.purify import patch_grid

if TYPE_CHECKING:  # torch is imported only where a torch network runs: the ONNX path never loads it
    import torch

    from ..net.model import UNet

__all__ = ["Maps", "predict_maps", "predict_probability", "inference_tile"]


def _blend_window(size: int, overlap: int) -> np.ndarray:
    ramp = np.ones(size, dtype=np.float32)
    if overlap > 0:
        edge = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        ramp[:overlap], ramp[-overlap:] = edge, edge[::-1]
    return np.outer(ramp, ramp)


class Maps(NamedTuple):
    """The network's per-pixel outputs for one image (:func:`predict_maps`)."""

    probability: np.ndarray
    distance: np.ndarray | None
    boundary: np.ndarray | None = None


def _forward(model: UNet | OnnxNetwork, device: str | torch.device | None) -> Callable[[np.ndarray], np.ndarray]:
    """The function from a uint8 (N, 3, H, W) batch to `model`'s maps (N, C, H, W), float32, on `device`."""
    if isinstance(model, OnnxNetwork):
        if device is not None and str(device) != "cpu":
            raise ValueError(f"an ONNX network runs on the CPU, not on {device!r} (use its torch checkpoint)")
        return model.maps
    import torch

    from ..net.model import Predictor, resolve_device

    device = resolve_device(device)
    predictor = Predictor(model.to(device).eval())
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    @torch.no_grad()
    def forward(batch: np.ndarray) -> np.ndarray:
        with autocast:
            return predictor(torch.from_numpy(batch).to(device, memory_format=torch.channels_last)).cpu().numpy()

    return forward


def predict_maps(
    model: UNet | OnnxNetwork,
    image: np.ndarray,
    *,
    tile: int = DEFAULT_PSEUDO.patch_size,
    overlap: int = DEFAULT_INFERENCE.tile_overlap,
    batch_size: int = DEFAULT_TRAIN.batch_size,
    device: str | torch.device | None = None,
    tta: bool = False,
) -> Maps:
    """Nucleus probability of every pixel of an (H, W, 3) uint8 image, and the rim distance and boundary
    probability if the network predicts them.

    Every map is (H, W) float32 in [0, 1]; ``distance`` and ``boundary`` are
    None for a network without that output.  `model` is a torch network
    (:class:`ssimnet.net.model.UNet`, run on `device`) or its ONNX export
    (:class:`ssimnet.net.onnxnet.OnnxNetwork`, on the CPU, without torch).  `tile` must be a multiple of ``2 ** depth`` of the
    network.  With `tta` (test-time augmentation), each tile is predicted in
    its eight orientations (four 90-degree rotations, each also mirrored),
    each prediction turned back, and the eight averaged: 8x the compute.
    """
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must lie in [0, {tile}), got {overlap}")
    forward = _forward(model, device)
    h, w = image.shape[:2]
    padded = np.pad(image, ((0, max(0, tile - h)), (0, max(0, tile - w)), (0, 0)), mode="reflect")
    corners = patch_grid(padded.shape, size=tile, stride=tile - overlap)
    weight = _blend_window(tile, overlap)
    total = None  # (1 to 3, H, W): probability, then distance and boundary when the network has them
    norm = np.zeros(padded.shape[:2], dtype=np.float32)
    views = [(k, flip) for k in range(4) for flip in (False, True)] if tta else [(0, False)]
    for start in range(0, len(corners), batch_size):
        batch = corners[start : start + batch_size]
        x = np.stack([padded[r : r + tile, c : c + tile].transpose(2, 0, 1) for r, c in batch])
        out = 0
        for k, flip in views:
            view = np.rot90(x, k, axes=(2, 3))
            maps = forward(np.ascontiguousarray(view[..., ::-1] if flip else view))
            out = out + np.rot90(maps[..., ::-1] if flip else maps, -k, axes=(2, 3))
        out = out / np.float32(len(views))
        if total is None:
            total = np.zeros((out.shape[1], *padded.shape[:2]), dtype=np.float32)
        for (r, c), o in zip(batch, out):
            total[:, r : r + tile, c : c + tile] += o * weight
            norm[r : r + tile, c : c + tile] += weight
    result = (total / norm)[:, :h, :w]
    arch = model.architecture
    return Maps(result[0], result[1] if arch.has_distance else None, result[-1] if arch.boundary else None)


def inference_tile(shape: tuple[int, ...], *, largest: int, multiple: int) -> int:
    """The tile side that predicts an image of `shape` in as few tiles as possible.

    The image's longer side rounded up to a multiple of `multiple` (the
    network's ``2 ** depth``), at most `largest` rounded down to one.

    Examples
    --------
    >>> inference_tile((1000, 1000), largest=1024, multiple=16), inference_tile((3000, 500), largest=1024, multiple=16)
    (1008, 1024)
    """
    if largest < multiple:
        raise ValueError(f"the largest tile ({largest}) is smaller than one step of {multiple} pixels")
    side = -(-max(int(shape[0]), int(shape[1])) // multiple) * multiple
    return min(side, largest // multiple * multiple)


def predict_probability(model: UNet | OnnxNetwork, image: np.ndarray, **options) -> np.ndarray:
    """Nucleus probability of every pixel of an (H, W, 3) uint8 image, as (H, W) float32 in [0, 1].

    :func:`predict_maps` without the distance map; the same options.
    """
    return predict_maps(model, image, **options).probability
