"""Fingerprints of the code a stage runs: what keys its cache besides its settings and its data.

A cached result is stale when the code that made it has changed.  Rather than
judge that, each cached stage is keyed (:func:`ssimnet.runs.store.stage_key`) by a
fingerprint of the source of the modules it runs: :func:`module_closure` finds
them by reading the ``import`` statements of the package's modules (those
inside functions too, where the package imports lazily), and
:func:`code_fingerprint` hashes their syntax trees with docstrings left out,
so that editing a docstring, a comment or the layout moves no key while
changing a line of code does.  A stage whose code changed is recomputed; an
unrelated module can change freely.  Parsing the trees takes about half a
second; ``normalized=False`` hashes the files' bytes instead, in milliseconds,
for keys that a docstring edit may move (``ssimnet segment``'s resumable
outputs).

:data:`STAGES` names the modules each stage starts from.  The run profiles
(:mod:`ssimnet.config.profiles`) are not code a stage runs: their values enter
the keys as settings.

Examples
--------
>>> "ssimnet.pseudo.soften" in module_closure(("ssimnet.pseudo",))
True
>>> "ssimnet.metrics" in module_closure(("ssimnet.pseudo",))
False
>>> len(code_fingerprint("pseudo"))
12
"""

from __future__ import annotations

import ast
import hashlib
import re
from functools import lru_cache
from pathlib import Path

__all__ = ["STAGES", "module_closure", "code_fingerprint", "module_fingerprints", "imported_modules", "source_tree"]

_PACKAGE = "ssimnet"
_ROOT = Path(__file__).resolve().parent

#: Modules whose values are settings (keyed as such), not code a stage runs.
_SETTINGS_ONLY = frozenset({"ssimnet.config.profiles"})

#: The modules each cached stage starts from; its fingerprint covers everything they import (a name
#: written ``=module`` counts that module's own code only, not what it imports).
STAGES: dict[str, tuple[str, ...]] = {
    "pseudo": ("ssimnet.pseudo", "ssimnet.pseudo.purify"),
    "train": ("ssimnet.net.train", "ssimnet.pseudo"),
    "selftrain": ("ssimnet.net.train", "ssimnet.net.selftrain", "ssimnet.predict"),
    "supervised": ("ssimnet.net.train", "ssimnet.baselines.supervised"),
    "segment": ("ssimnet.tool.segmenter",),
    "baseline": ("ssimnet.baselines",),
    "score": ("ssimnet.metrics",),
    "evaluate": ("=ssimnet.runs.evaluate",),
    "attribution": ("=ssimnet.runs.attribution",),
    "segment_files": ("ssimnet.tool.batch",),
    "stress": ("ssimnet.runs.stress", "ssimnet.tool.segmenter", "ssimnet.baselines", "ssimnet.metrics"),
}


def _path(module: str, root: Path) -> Path | None:
    parts = module.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


#: An import statement at the start of a line, indented or not (inside a function): ``import a.b`` or
#: ``from .a import b, c`` / ``from .a import (b,\n c)``.
_IMPORT = re.compile(r"^[ \t]*(?:import[ \t]+([\w.]+)|from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*))",
                     re.MULTILINE)


def _imports(module: str, source: str, is_package: bool) -> set[str]:
    """The package's modules that `source` (of `module`) imports, anywhere in it.

    Read from the text, which is twenty times faster than parsing it; a line
    that only looks like an import can add a module, never hide one.
    """
    found = set()
    package = module if is_package else module.rpartition(".")[0]
    for plain, origin, names in _IMPORT.findall(source):
        if plain:
            found.add(plain)
            continue
        level = len(origin) - len(origin.lstrip("."))
        if level:
            base = package.split(".")
            base = base[: len(base) - level + 1]
            origin = ".".join(base + ([origin[level:]] if origin[level:] else []))
        found.add(origin)
        # `from . import x` imports a module x; names that are not modules are dropped when no file has them
        found |= {f"{origin}.{name.split()[0]}" for name in re.split(r"[,()\s]+as\s+\w+|[,()]", names) if name.strip()
                  and name.split()[0].isidentifier()}
    return {name for name in found if name == _PACKAGE or name.startswith(_PACKAGE + ".")}


def source_tree(module: str, root: Path = _ROOT) -> str | None:
    """The syntax tree of a module's source with its docstrings removed, as text; None if it has no source.

    Two sources that differ only in docstrings, comments or layout give the same text.
    """
    path = _path(module, root)
    return None if path is None else _tree(path.read_text())


@lru_cache(maxsize=None)
def _tree(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def module_closure(modules: tuple[str, ...], root: Path = _ROOT) -> tuple[str, ...]:
    """Every module of the package that `modules` import, directly or not, themselves included; sorted.

    The parent packages' ``__init__`` modules are not followed unless imported by name; a name written
    ``=module`` is that module alone.
    """
    alone = {m[1:] for m in modules if m.startswith("=")}
    todo = [m for m in modules if not m.startswith("=")]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen or module in _SETTINGS_ONLY:
            continue
        path = _path(module, root)
        if path is None:
            continue
        seen.add(module)
        todo += sorted(_imports(module, path.read_text(), path.name == "__init__.py") - seen)
    return tuple(sorted(seen | {m for m in alone if _path(m, root) is not None}))


def imported_modules(source: str) -> tuple[str, ...]:
    """The package's modules a script or notebook's `source` imports (absolute imports), sorted.

    >>> imported_modules("import numpy\\nfrom ssimnet.metrics import score\\n")
    ('ssimnet.metrics', 'ssimnet.metrics.score')
    """
    return tuple(sorted(_imports("__main__", source, is_package=False)))


def module_fingerprints(modules: tuple[str, ...], *, normalized: bool = True, root: Path = _ROOT) -> dict[str, str]:
    """Each module of the closure of `modules` and a short hash of its code (:func:`source_tree`), or of
    its file's bytes when not `normalized`."""
    def code(module: str) -> bytes:
        if normalized:
            return (source_tree(module, root) or "").encode()
        path = _path(module, root)
        return path.read_bytes() if path is not None else b""

    return {m: hashlib.sha256(code(m)).hexdigest()[:12] for m in module_closure(tuple(modules), root)}


def code_fingerprint(stage: str, *, normalized: bool = True, root: Path = _ROOT) -> str:
    """A short hash of the code of `stage` (a key of :data:`STAGES`): the modules it runs, by name and code.

    Raises
    ------
    KeyError
        If `stage` is not one of :data:`STAGES`.
    """
    fingerprints = module_fingerprints(STAGES[stage], normalized=normalized, root=root)
    blob = "\n".join(f"{m} {h}" for m, h in fingerprints.items())
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
