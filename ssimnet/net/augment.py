"""Stain and colour augmentation (beyond the paper): HED-space jitter of training patches.

H&E slides from other labs and scanners differ in stain intensity and hue.
Following Tellez et al. (Med. Image Anal. 58, 2019, "HED" augmentation), a
patch's optical densities are decomposed on the Ruifrok-Johnston
hematoxylin, eosin and DAB vectors (the matrix of
:func:`skimage.color.rgb2hed`); each stain density is scaled by ``1 + a`` and
shifted by ``b``, with ``a`` and ``b`` drawn uniformly from
``[-sigma, sigma]`` per patch and per stain, and the patch rebuilt.  With
``a = b = 0`` the patch comes back unchanged (up to rounding).

Examples
--------
>>> import torch
>>> x = torch.rand(3, 8, 8) * 0.8 + 0.1
>>> bool(torch.allclose(hed_jitter(x, torch.ones(3), torch.zeros(3)), x, atol=1e-5))
True
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.color import hed_from_rgb, rgb_from_hed

__all__ = ["hed_jitter", "draw_hed_jitter"]

_TO_HED = torch.from_numpy(np.ascontiguousarray(hed_from_rgb, dtype=np.float32))
_TO_RGB = torch.from_numpy(np.ascontiguousarray(rgb_from_hed, dtype=np.float32))
_MIN = 1.0 / 255.0


def hed_jitter(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """A (3, H, W) RGB patch in [0, 1] with its H, E and D densities scaled by `scale` and shifted by `shift` (each (3,))."""
    od = -torch.log(x.clamp(min=_MIN)).permute(1, 2, 0)  # (H, W, 3)
    hed = od @ _TO_HED
    hed = hed * scale + shift
    return torch.exp(-(hed @ _TO_RGB)).clamp(0.0, 1.0).permute(2, 0, 1).contiguous()


def draw_hed_jitter(generator: torch.Generator, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(scale, shift)`` of one patch: ``1 + U(-sigma, sigma)`` and ``U(-sigma, sigma)`` per stain."""
    a, b = (torch.rand(2, 3, generator=generator) * 2 - 1) * sigma
    return 1.0 + a, b
