"""The package's layout shows its architecture: no import circle, the tool apart from the book, short modules."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

import ssimnet
from ssimnet.fingerprint import _imports

PACKAGE = Path(ssimnet.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _graph() -> dict[str, set[str]]:
    """Every module's imports of the package's modules, those inside functions included."""
    return {name: {m for m in _imports(name, path.read_text(), path.name == "__init__.py") if m in MODULES and m != name}
            for name, path in MODULES.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_circle():
    graph = _graph()
    assert _circles(graph) == []
    graph["ssimnet.metrics"].add("ssimnet.predict.nuclei")  # the check finds one when there is one
    graph["ssimnet.predict.nuclei"].add("ssimnet.metrics")
    assert _circles(graph) == [["ssimnet.metrics", "ssimnet.predict.nuclei"]]


def test_the_method_and_the_tool_never_import_the_book_machinery():
    graph = _graph()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo += graph[module]
        return seen

    for part in ("ssimnet.tool", "ssimnet.pseudo", "ssimnet.net", "ssimnet.predict"):
        for module in (m for m in MODULES if m.startswith(part)):
            reached = reach(module)
            assert not {m for m in reached if m.startswith("ssimnet.book")}, module
    assert not {m for m in reach("ssimnet.tool.segmenter") if m.startswith("ssimnet.runs")}


def test_no_module_is_longer_than_500_lines():
    lengths = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert max(lengths.values()) <= 500, sorted(lengths.items(), key=lambda kv: -kv[1])[:3]


@pytest.mark.parametrize("old", sorted(ssimnet.MOVED))
def test_the_old_flat_names_still_import_with_a_warning(old):
    sys.modules.pop(f"ssimnet.{old}", None)  # the alias only: the new module stays the one every test uses
    with pytest.warns(DeprecationWarning, match=f"ssimnet.{old} is now ssimnet.{ssimnet.MOVED[old]}"):
        module = importlib.import_module(f"ssimnet.{old}")
    assert module is importlib.import_module(f"ssimnet.{ssimnet.MOVED[old]}")


def test_the_old_calls_still_work_with_a_warning(tmp_path):
    import numpy as np

    from ssimnet.config import get_profile
    from ssimnet.net.train import Trainer
    from ssimnet.predict import segment_image
    from ssimnet.synthetic import synthetic_tile
    from ssimnet.tool.batch import load_network

    smoke = get_profile("smoke")
    trainer = Trainer.new(smoke.train, seed=0, device="cpu")
    image = synthetic_tile((64, 64), seed=1).image
    with pytest.warns(DeprecationWarning, match="segment_image\\(image, network, profile"):
        old = segment_image(image, trainer, smoke, finetune_epochs=0, method="cc")
    new = segment_image(image, trainer, smoke.inference.__class__(instances="cc", finetune_epochs=0),
                        pseudo_config=smoke.pseudo)
    np.testing.assert_array_equal(old.probability, new.probability)
    with pytest.raises(TypeError, match="unexpected keyword arguments: colour"):
        segment_image(image, trainer, smoke, colour=1)
    with pytest.warns(DeprecationWarning, match="Trainer.finetune_lr"):
        assert trainer.finetune_lr == trainer.learning_rate
    with pytest.warns(DeprecationWarning, match="load_network is deprecated"):
        network, path = load_network(None, predict_only=True)
    assert path.suffix == ".onnx" and network.architecture.boundary
