"""The published book: what each executed chapter records, when it is stale, and publishing a run.

``ssimnet book`` executes a run's notebooks into ``book/executed/`` and
stamps each with a :class:`ChapterRecord` (profile, data, commit, hardware,
date, and digests of its source notebook and of the package).
``ssimnet publish`` copies a finished run into the published set,
``book/published/``, that ``make book`` builds without executing anything;
its figures are re-encoded at screen resolution (:func:`compress_outputs`).
When the book is built, :mod:`ssimnet.book.sphinx` opens every chapter with
:meth:`ChapterRecord.line` and, where :func:`chapter_state` finds that the
source changed since, with a note saying so.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import cast

from ..data import atomic_path, file_digest
from ..fingerprint import imported_modules, module_fingerprints

__all__ = [
    "METADATA_KEY", "ChapterRecord", "ChapterState", "PublishError", "file_digest", "package_digest",
    "chapter_record", "chapter_state", "compress_outputs", "publish_run", "read_record",
]

#: Key of the record in an executed notebook's metadata.
METADATA_KEY = "ssimnet"


class PublishError(Exception):
    """A run that cannot be published or a chapter record that cannot be read (one line)."""

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return type(self), (str(self),)


def package_digest(package_dir: str | Path | None = None) -> str:
    """SHA-256 of every ``.py`` file of the package, by relative name and bytes (16 hex digits).

    >>> package_digest() == package_digest()
    True
    """
    root = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ChapterRecord:
    """What an executed chapter was made from, kept in its notebook metadata.

    Attributes
    ----------
    source : str
        The source notebook, relative to the book folder (``notebooks/N.py``).
    source_digest, package_digest : str
        :func:`file_digest` of the source and :func:`package_digest` at execution.
    commit : str or None
        Git commit of the package (None outside a checkout); ``dirty`` if the
        work tree had uncommitted changes.
    profile, data, hardware, executed : str
        Profile name, dataset (name and test images), hardware in words, UTC date.
    lock_digest : str or None
        :func:`file_digest` of ``requirements.lock``, if there was one.
    code : dict or None
        The fingerprint of every package module the chapter ran
        (:func:`ssimnet.fingerprint.module_fingerprints` of the modules its
        source imports); None in records made before there were fingerprints.
    """

    source: str
    source_digest: str
    package_digest: str
    commit: str | None
    dirty: bool | None
    profile: str
    data: str
    hardware: str
    executed: str
    lock_digest: str | None = None
    code: dict[str, str] | None = None

    def line(self) -> str:
        """One-line provenance, as the chapter opens with it.

        >>> r = ChapterRecord("notebooks/01_data.py", "a", "b", "0123456789abcdef", False, "cpu",
        ...                   "monuseg (14 test images)", "2 CPUs (x86_64), no GPU", "2026-11-27")
        >>> r.line()
        'Executed 2026-11-27 with the cpu profile on monuseg (14 test images), commit 0123456, 2 CPUs (x86_64), no GPU.'
        """
        commit = (self.commit or "unknown")[:7] + (" with uncommitted changes" if self.dirty else "")
        return f"Executed {self.executed} with the {self.profile} profile on {self.data}, commit {commit}, {self.hardware}."

    def to_metadata(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_metadata(cls, meta: Mapping[str, object]) -> ChapterRecord:
        """The record kept by :meth:`to_metadata`; unknown keys are ignored.

        Raises
        ------
        PublishError
            If a field is missing.
        """
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in meta and n not in ("lock_digest", "code")]
        if missing:
            raise PublishError(f"chapter record lacks {', '.join(missing)}")
        return cls(**{n: meta[n] for n in names if n in meta})  # type: ignore[arg-type]


def chapter_record(source: str | Path, *, book_dir: str | Path, info: Mapping[str, object]) -> ChapterRecord:
    """The record of executing `source` now; `info` is :func:`ssimnet.book.results.provenance` of the run."""
    book = Path(book_dir)
    hw = cast(Mapping[str, object], info["hardware"])
    gpu = hw.get("gpu")
    hardware = f"{hw.get('cpus')} CPUs ({hw.get('machine')}), " + (f"GPU {gpu}" if gpu else "no GPU")
    data = cast(Mapping[str, object], info["data"])
    return ChapterRecord(
        source=Path(source).resolve().relative_to(book.resolve()).as_posix(),
        source_digest=file_digest(source),
        package_digest=package_digest(),
        commit=cast("str | None", info.get("commit")),
        dirty=cast("bool | None", info.get("dirty")),
        profile=str(info["profile"]),
        data=f"{data['name']} ({data['test_images']} test images)",
        hardware=hardware,
        executed=str(info["created"])[:10],
        lock_digest=cast("str | None", info.get("lock")),  # provenance hashed requirements.lock already
        code=module_fingerprints(imported_modules(Path(source).read_text())),
    )


@dataclass(frozen=True)
class ChapterState:
    """Whether a published chapter still matches the work tree (:func:`chapter_state`)."""

    record: ChapterRecord
    source_changed: bool
    package_changed: bool
    changed_modules: tuple[str, ...] | None = None  # None: a record without code fingerprints

    @property
    def note(self) -> str | None:
        """The note a stale chapter opens with: its source, or code it ran, has changed; None when neither has."""
        if not self.source_changed and not self.changed_modules:
            return None
        commit = (self.record.commit or "unknown")[:7]
        what = ([f"its source {self.record.source}"] if self.source_changed else []) + (
            [f"code it ran ({', '.join(self.changed_modules)})"] if self.changed_modules else [])
        return (f"Executed from commit {commit} on {self.record.executed}; {' and '.join(what)} has changed since, so "
                "what follows may not match it. Re-execute and republish the run to update this chapter.")


def chapter_state(record: ChapterRecord, *, book_dir: str | Path, package_dir: str | Path | None = None) -> ChapterState:
    """Compare `record` with the source notebook under `book_dir` and the package now.

    A missing source counts as changed.  A record with code fingerprints names
    the modules whose code has changed (:mod:`ssimnet.fingerprint`); edits to
    docstrings, comments and other modules do not count.
    """
    source = Path(book_dir) / record.source
    changed = not source.is_file() or file_digest(source) != record.source_digest
    modules = None
    if record.code is not None:
        root = Path(package_dir) if package_dir is not None else None
        now = module_fingerprints(tuple(record.code), **({"root": root} if root else {}))
        modules = tuple(m for m in record.code if now.get(m) != record.code[m])
    return ChapterState(record, source_changed=changed, package_changed=package_digest(package_dir) != record.package_digest,
                        changed_modules=modules)


def compress_outputs(nb: object, *, max_width: int, quality: int, min_bytes: int) -> int:
    """Re-encode a notebook's large PNG outputs as JPEG at most `max_width` pixels wide, in place.

    A PNG output of more than `min_bytes` becomes ``image/jpeg`` (alpha laid
    on white) only if that makes it smaller; line plots, which PNG keeps
    small, stay as they are.  Returns the number of bytes saved.
    """
    from PIL import Image

    saved = 0
    for cell in nb.cells:  # type: ignore[attr-defined]
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            png = data.get("image/png")
            if not isinstance(png, str) or len(png) <= min_bytes:
                continue
            with Image.open(io.BytesIO(base64.b64decode(png))) as im:
                rgba = im.convert("RGBA")
            image = Image.new("RGB", rgba.size, "white")
            image.paste(rgba, mask=rgba.getchannel("A"))
            if image.width > max_width:
                image = image.resize((max_width, round(image.height * max_width / image.width)), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=quality, optimize=True)
            jpeg = base64.b64encode(buffer.getvalue()).decode()
            if len(jpeg) < len(png):
                saved += len(png) - len(jpeg)
                del data["image/png"]
                data["image/jpeg"] = jpeg
                out.get("metadata", {}).pop("image/png", None)
    return saved


def publish_run(
    names: list[str],
    *,
    executed_dir: str | Path,
    published_dir: str | Path,
    results_from: str | Path | None = None,
    results_to: str | Path | None = None,
    max_width: int,
    quality: int,
    min_bytes: int,
) -> dict[str, int]:
    """Copy a finished run's executed chapters `names` (and its results) into the published set.

    Every chapter must be present and stamped, all from one profile and one
    commit; nothing is written unless all are.  Large figures are compressed
    (:func:`compress_outputs`).  The reference results of `results_from`
    (the :data:`ssimnet.book.results.RESULTS` files, as the reproduction report
    writes them), if there, are copied into `results_to`; other studies keep
    their committed files.  Returns each published notebook's size in bytes.

    Raises
    ------
    PublishError
        If a chapter is missing, unstamped or from another run.
    """
    import nbformat

    executed, published = Path(executed_dir), Path(published_dir)
    notebooks = {}
    for name in names:
        path = executed / f"{name}.ipynb"
        if not path.is_file():
            raise PublishError(f"{path}: not executed; run the whole book before publishing")
        nb = nbformat.read(path, as_version=4)
        if METADATA_KEY not in nb.metadata:
            raise PublishError(f"{path}: no chapter record; execute it with `ssimnet book`")
        notebooks[name] = nb
    records = [ChapterRecord.from_metadata(nb.metadata[METADATA_KEY]) for nb in notebooks.values()]
    runs = {(r.profile, r.commit) for r in records}
    if len(runs) > 1:
        raise PublishError(f"{executed}: chapters from more than one run ({sorted(map(str, runs))}); re-execute the book")
    sizes = {}
    published.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        compress_outputs(nb, max_width=max_width, quality=quality, min_bytes=min_bytes)
        target = published / f"{name}.ipynb"
        with atomic_path(target) as tmp:
            nbformat.write(nb, str(tmp))
        sizes[name] = target.stat().st_size
    if results_from is not None and results_to is not None:
        from .results import RESULTS

        sources = [Path(results_from) / name for name in RESULTS.files]
        if all(p.is_file() for p in sources):
            Path(results_to).mkdir(parents=True, exist_ok=True)
            for path in sources:
                with atomic_path(Path(results_to) / path.name) as tmp:
                    shutil.copyfile(path, tmp)
    return sizes


def read_record(path: str | Path) -> ChapterRecord | None:
    """The record of an executed notebook file, or None if it has none."""
    meta = json.loads(Path(path).read_text()).get("metadata", {}).get(METADATA_KEY)
    return None if meta is None else ChapterRecord.from_metadata(meta)
