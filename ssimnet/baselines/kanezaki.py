"""Kanezaki (2018), "Unsupervised image segmentation by backpropagation" (ICASSP), paper ref. [11].

A small CNN is trained on the one image it segments.  At every step the
network's per-pixel argmax labels are made constant within each SLIC
superpixel (each superpixel takes its most frequent label), and these
refined labels are the cross-entropy target of the next update.  Training
stops after a number of steps or once at most ``min_labels`` distinct labels
remain.  The network: ``convs`` blocks of 3x3 convolution, ReLU and batch
normalisation, then a 1x1 convolution and batch normalisation (Kanezaki's
``nChannel`` = 100, ``nConv`` = 2, SGD with learning rate 0.1 and momentum
0.9, at most 1000 steps, ``minLabels`` = 3).

The method yields anonymous segments, often a dozen; the unsupervised rule
used here for which of them are nucleus: every segment whose mean grey level
lies below Otsu's threshold of the image's grey levels (nuclei are the
darkest structures; a single darkest segment is often a small fraction of
them).

Examples
--------
>>> import numpy as np
>>> image = np.full((48, 48, 3), 225, dtype=np.uint8)
>>> image[12:30, 14:32] = (70, 50, 130)
>>> mask = kanezaki_foreground(image, channels=8, iterations=20, superpixel_area=16, seed=0)
>>> bool(mask[20, 20]), bool(mask[2, 2])
(True, False)
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.filters import threshold_otsu
from skimage.segmentation import slic
from skimage.transform import resize
from torch import nn

from ..config import DEFAULT_BASELINES
from ..net.model import resolve_device

__all__ = ["KanezakiNet", "superpixel_refine", "kanezaki_labels", "kanezaki_foreground"]


class KanezakiNet(nn.Module):
    """Kanezaki's feature network: `convs` 3x3 conv-ReLU-BN blocks, then 1x1 conv and BN."""

    def __init__(self, channels: int = DEFAULT_BASELINES.kanezaki_channels, convs: int = DEFAULT_BASELINES.kanezaki_convs,
                 in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(convs):
            layers += [nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(channels)]
        layers += [nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def superpixel_refine(labels: np.ndarray, superpixels: np.ndarray, n_labels: int) -> np.ndarray:
    """Give every pixel the most frequent label of its superpixel (ties: the smallest label).

    Parameters
    ----------
    labels : (N,) int in ``[0, n_labels)``
    superpixels : (N,) int in ``[0, S)``
    n_labels : int

    >>> superpixel_refine(np.array([0, 1, 1, 2, 2, 0]), np.array([0, 0, 0, 1, 1, 1]), 3)
    array([1, 1, 1, 2, 2, 2])
    """
    n_super = int(superpixels.max()) + 1
    counts = np.bincount(superpixels * n_labels + labels, minlength=n_super * n_labels).reshape(n_super, n_labels)
    return counts.argmax(1)[superpixels]


def kanezaki_labels(
    image: np.ndarray,
    *,
    channels: int = DEFAULT_BASELINES.kanezaki_channels,
    convs: int = DEFAULT_BASELINES.kanezaki_convs,
    lr: float = DEFAULT_BASELINES.kanezaki_lr,
    iterations: int = DEFAULT_BASELINES.kanezaki_iterations,
    min_labels: int = DEFAULT_BASELINES.kanezaki_min_labels,
    superpixel_area: int = DEFAULT_BASELINES.kanezaki_superpixel_area,
    compactness: float = DEFAULT_BASELINES.kanezaki_compactness,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Kanezaki's unsupervised segmentation of one image: (H, W) int labels (not consecutive)."""
    device = resolve_device(device)
    h, w = image.shape[:2]
    superpixels = slic(image, n_segments=max(2, h * w // superpixel_area), compactness=compactness, start_label=0)
    superpixels = superpixels.reshape(-1)
    torch.manual_seed(seed)
    net = KanezakiNet(channels, convs).to(device)
    optimiser = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0)[None].to(device)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    labels = np.zeros(h * w, dtype=np.int64)
    for _ in range(iterations):
        optimiser.zero_grad()
        out = net(x)[0].permute(1, 2, 0).reshape(-1, channels)
        labels = out.argmax(1).cpu().numpy()
        if len(np.unique(labels)) <= min_labels:
            break
        target = torch.from_numpy(superpixel_refine(labels, superpixels, channels)).to(device)
        loss = loss_fn(out, target)
        loss.backward()
        optimiser.step()
    return labels.reshape(h, w)


def kanezaki_foreground(image: np.ndarray, *, scale: float = DEFAULT_BASELINES.kanezaki_scale, seed: int = 0, device: str | torch.device | None = None, **options: object) -> np.ndarray:
    """Nucleus mask from :func:`kanezaki_labels`: the segments darker on average than Otsu's threshold.

    Parameters
    ----------
    image : (H, W, 3) uint8
    scale : float
        The image is resized by this factor before segmentation (the CNN's cost
        grows with the pixel count) and the mask resized back.
    seed : int
    device : str, optional
    **options
        Passed to :func:`kanezaki_labels`.

    Returns
    -------
    (H, W) bool
    """
    image = np.asarray(image)
    work = image
    if scale != 1.0:
        shape = (max(8, round(image.shape[0] * scale)), max(8, round(image.shape[1] * scale)))
        work = (resize(image, shape, order=1, anti_aliasing=True, preserve_range=True) + 0.5).astype(np.uint8)
    grey = work.mean(2)
    if np.ptp(grey) == 0:
        return np.zeros(image.shape[:2], dtype=bool)
    labels = kanezaki_labels(work, seed=seed, device=device, **options)
    _, inverse = np.unique(labels.reshape(-1), return_inverse=True)
    mean_grey = np.bincount(inverse, weights=grey.reshape(-1)) / np.bincount(inverse)
    mask = (mean_grey < threshold_otsu(grey))[inverse].reshape(labels.shape)
    if mask.shape != image.shape[:2]:
        mask = resize(mask.astype(np.float32), image.shape[:2], order=1) > 0.5
    return mask
