"""The label-free network shipped inside the package: what ``ssimnet segment`` uses when given no other.

It is the ``cpu`` profile's tool network (:meth:`ssimnet.config.Profile.for_tool`)
trained by ``studies/ship_model.py`` on the pseudo labels of the 30 MoNuSeg
*training* images -- never their labels -- and stored twice: as a compact
torch checkpoint (:func:`compact_state`), which can be fine-tuned, and as its
ONNX export (:mod:`ssimnet.net.onnxnet`), which ``ssimnet segment`` predicts with
when it only predicts, without importing torch.  Its model card, ``<name>.json`` beside the weights,
records how it was made (commit, settings, data digest, training time, the
file's SHA-256), the inference settings it segments with (which both files
also carry, :class:`ssimnet.tool.segmenter.Segmenter`) and its scores on the
MoNuSeg test images, which ``tests/test_shipped.py`` checks again.

The weights were trained on MoNuSeg images, which are licensed CC BY-NC-SA 4.0;
see the README.

Examples
--------
>>> shipped_model_path().name, shipped_model_path(onnx=True).name
('ssimnet-cpu-monuseg.pt', 'ssimnet-cpu-monuseg.onnx')
>>> shipped_card_path().suffix
'.json'
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import SHIPPED_MODEL
from ..data import DataError, file_sha256

__all__ = ["shipped_model_path", "shipped_card_path", "read_card", "check_shipped", "compact_state", "describe"]

_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def shipped_model_path(*, onnx: bool = False) -> Path:
    """Where the shipped checkpoint lies (inside the installed package); with `onnx`, its ONNX export."""
    return _WEIGHTS / f"{SHIPPED_MODEL}.{'onnx' if onnx else 'pt'}"


def shipped_card_path() -> Path:
    """Where the shipped checkpoint's model card lies."""
    return _WEIGHTS / f"{SHIPPED_MODEL}.json"


def read_card() -> dict:
    """The shipped model's card.

    Raises
    ------
    DataError
        If the card is missing or is not JSON (a damaged installation).
    """
    path = shipped_card_path()
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "the shipped model's card is missing (reinstall ssimnet, or give --model)") from None
    except (OSError, ValueError) as exc:
        raise DataError(path, f"damaged model card ({exc})") from None
    needed = ("name", "sha256", "onnx_sha256", "trained_on", "commit", "training_seconds", "inference")
    if not isinstance(card, dict) or any(k not in card for k in needed):
        raise DataError(path, f"damaged model card (it must be a JSON object with {', '.join(needed)}; reinstall "
                              "ssimnet)")
    return card


def check_shipped(*, onnx: bool = False) -> Path:
    """The shipped checkpoint (with `onnx`, its ONNX export), after checking its bytes against the
    SHA-256 its card records (``sha256``, ``onnx_sha256``).

    Raises
    ------
    DataError
        If the file is missing or its bytes are not those the card records.
    """
    path = shipped_model_path(onnx=onnx)
    card = read_card()
    if not path.is_file():
        raise DataError(path, "the shipped model is missing (reinstall ssimnet, or give --model)")
    if file_sha256(path) != card.get("onnx_sha256" if onnx else "sha256"):
        raise DataError(path, "the shipped model's bytes differ from its card's SHA-256 (reinstall ssimnet)")
    return path


def compact_state(state: dict) -> dict:
    """A checkpoint's contents (:meth:`ssimnet.net.train.Trainer.state`) with smaller floating-point tensors.

    The weights become float16 and Adam's moments bfloat16 (float16's range
    would flush the small second moments to zero, and a zero second moment
    makes the first fine-tuning step huge).  Loading casts both back to the
    network's float32: ``load_state_dict`` copies into float32 parameters,
    and the optimiser casts its state to the parameters' dtype.  The step
    counts and everything else are kept as they are.

    >>> import torch
    >>> state = {"model": {"w": torch.ones(2)}, "optimizer": {"state": {0: {"step": torch.tensor(3.0),
    ...          "exp_avg": torch.ones(2), "exp_avg_sq": torch.full((2,), 1e-10)}}, "param_groups": []}}
    >>> small = compact_state(state)
    >>> small["model"]["w"].dtype, small["optimizer"]["state"][0]["exp_avg_sq"].dtype
    (torch.float16, torch.bfloat16)
    >>> small["optimizer"]["state"][0]["step"].dtype, bool(small["optimizer"]["state"][0]["exp_avg_sq"][0] > 0)
    (torch.float32, True)
    """
    import torch

    def smaller(value: object, dtype: torch.dtype) -> object:
        return value.to(dtype) if isinstance(value, torch.Tensor) and value.is_floating_point() else value

    optimizer = dict(state["optimizer"])
    optimizer["state"] = {k: {name: value if name == "step" else smaller(value, torch.bfloat16)
                              for name, value in moments.items()} for k, moments in optimizer["state"].items()}
    return {**state, "model": {k: smaller(v, torch.float16) for k, v in state["model"].items()}, "optimizer": optimizer}


def describe(card: dict) -> str:
    """A few lines about the shipped model from its card, for ``ssimnet segment --version``.

    >>> print(describe({"name": "m", "commit": "abc", "trained_on": "MoNuSeg train (30 images)",
    ...                 "sha256": "0123456789abcdef0123", "training_seconds": 1200.0, "test": {}}))
    shipped model m (sha256 0123456789abcdef)
      trained label-free on MoNuSeg train (30 images), commit abc, 20 min
    """
    onnx = f", ONNX {card['onnx_sha256'][:16]}" if card.get("onnx_sha256") else ""
    lines = [f"shipped model {card['name']} (sha256 {card['sha256'][:16]}{onnx})",
             f"  trained label-free on {card['trained_on']}, commit {str(card['commit'])[:12]}, "
             f"{card['training_seconds'] / 60:.0f} min"]
    if card.get("inference"):
        lines.append("  segments with: " + ", ".join(f"{k} {v}" for k, v in card["inference"].items()))
    for split, scores in card.get("test", {}).items():
        lines.append(f"  {split}: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in scores.items()))
    if card.get("licence"):
        lines.append(f"  {card['licence']}")
    return "\n".join(lines)
