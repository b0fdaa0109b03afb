"""What defines a network's shape, apart from torch.

:class:`Architecture` is stored in every checkpoint (to refuse mismatches)
and in the metadata of a network's ONNX export (:mod:`ssimnet.net.onnxnet`), so
that a network can be described, and its outputs read, without importing torch.

Examples
--------
>>> Architecture(depth=4, width=8, out_channels=3, boundary=True).has_distance
False
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["Architecture"]


@dataclass(frozen=True)
class Architecture:
    """What defines a network's shape; stored in checkpoints to refuse mismatches."""

    depth: int = 4
    width: int = 64
    in_channels: int = 3
    out_channels: int = 2
    boundary: bool = False  # the last output is the boundary class (:mod:`ssimnet.net.boundary`)

    @property
    def has_distance(self) -> bool:
        """Whether output 2 is the learned separation's rim distance (:mod:`ssimnet.net.separation`)."""
        return self.out_channels - self.boundary > 2

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
