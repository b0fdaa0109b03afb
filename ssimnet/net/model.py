"""The segmentation network F of paper Eq. (5): a U-Net.

A standard U-Net (Ronneberger et al. 2015) with configurable depth and base
width: each level has two 3x3 convolutions with batch normalisation and ReLU,
max-pooling down, transposed convolution up, and skip connections.  The
``paper`` profile uses four levels below the input level with base width 64
(the usual U-Net); the ``cpu`` and ``smoke`` profiles narrower and shallower
ones.

The head has two output channels, background and nucleus logits.  One
network yields both terms of Eq. (5) from the same softmax: the nucleus
probability ``p = softmax(F(x))[1]`` is compared with the soft label by binary
cross-entropy, and the two-class log-softmax with the Voronoi tri-label by
cross-entropy (label 2 ignored).  See :func:`ssimnet.net.train.ssimnet_loss`.
With the learned separation output (beyond the paper, :mod:`ssimnet.net.separation`)
a third channel predicts the rim distance (``out_channels=3``).

Examples
--------
>>> import torch
>>> net = UNet(depth=2, width=4)
>>> net(torch.zeros(1, 3, 64, 64)).shape
torch.Size([1, 2, 64, 64])
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import DEFAULT_TRAIN
from .architecture import Architecture

__all__ = ["UNet", "output_maps", "Predictor", "resolve_device"]  # Architecture is ssimnet.net.architecture's


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with `depth` down-sampling steps and `width` channels at the first level.

    Input height and width must be multiples of ``2 ** depth``.
    """

    def __init__(self, *, depth: int = DEFAULT_TRAIN.depth, width: int = DEFAULT_TRAIN.width, in_channels: int = 3,
                 out_channels: int = 2, boundary: bool = False) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be positive, got depth={depth}, width={width}")
        self.architecture = Architecture(depth=depth, width=width, in_channels=in_channels, out_channels=out_channels,
                                         boundary=boundary)
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(in_channels, widths[0])] + [_block(widths[i], widths[i + 1]) for i in range(depth)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))])
        self.merge = nn.ModuleList([_block(2 * widths[i], widths[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    @classmethod
    def from_architecture(cls, arch: Architecture) -> UNet:
        return cls(depth=arch.depth, width=arch.width, in_channels=arch.in_channels, out_channels=arch.out_channels,
                   boundary=arch.boundary)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2 ** self.architecture.depth
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"input size {tuple(x.shape[-2:])} is not a multiple of {factor}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


def output_maps(logits: torch.Tensor) -> torch.Tensor:
    """A network's per-pixel maps from its logits (N, C, H, W): the nucleus probability (the softmax of
    the first two channels), then the sigmoid of each further channel (rim distance, boundary).

    >>> output_maps(torch.zeros(1, 3, 1, 1)).flatten().tolist()
    [0.5, 0.5]
    """
    logits = logits.float()
    probability = torch.softmax(logits[:, :2], dim=1)[:, 1:2]
    return torch.cat([probability, torch.sigmoid(logits[:, 2:])], dim=1) if logits.shape[1] > 2 else probability


class Predictor(nn.Module):
    """`model` from a uint8 (N, 3, H, W) batch to its maps (:func:`output_maps`).

    What :func:`ssimnet.predict.maps.predict_maps` runs, and what a network's ONNX
    export holds (:func:`ssimnet.net.onnxnet.export_onnx`), so that both see the
    same computation from the same bytes.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return output_maps(self.model(x.float() / 255.0))


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device to use: `device` if given, else CUDA when available, else the CPU.

    Raises
    ------
    ValueError
        If `device` names CUDA (or MPS) and this torch has none.
    """
    if device:
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} was asked for, but this torch has no CUDA (use --device cpu)")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {str(device)!r} was asked for, but this torch has no MPS (use --device cpu)")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
