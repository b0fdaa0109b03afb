"""Cache keys include the code that made the result (ssimnet.fingerprint): changed code, new key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import ssimnet
from ssimnet.fingerprint import STAGES, code_fingerprint, module_closure, module_fingerprints

PACKAGE = Path(ssimnet.__file__).resolve().parent


@pytest.fixture()
def copy(tmp_path) -> Path:
    """A copy of the package's source, to edit."""
    root = tmp_path / "ssimnet"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("weights", "__pycache__"))
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def _all(root: Path) -> dict[str, str]:
    return {stage: code_fingerprint(stage, root=root) for stage in STAGES}


def test_a_stage_whose_code_changed_gets_a_new_key_and_the_others_keep_theirs(copy):
    before = _all(copy)
    assert before == _all(PACKAGE)  # the copy is the package
    _edit(copy / "pseudo" / "soften.py", "return dist.astype(np.int64) - 1", "return dist.astype(np.int64) - 2")  # Eq. (4)'s rings
    after = _all(copy)
    changed = {stage for stage in STAGES if after[stage] != before[stage]}
    assert {"pseudo", "train", "segment"} <= changed  # everything that runs label softening
    assert "score" not in changed and "soften" not in str(module_closure(STAGES["score"], copy))
    _edit(copy / "metrics.py", "\ndef _dense_ids", "\ndef _unused():\n    return 1\n\n\ndef _dense_ids")  # unrelated
    again = _all(copy)
    assert again["pseudo"] == after["pseudo"] and again["score"] != after["score"]


def test_docstrings_comments_and_layout_move_no_key_but_the_bytes_fingerprint(copy):
    before = _all(copy)
    raw = code_fingerprint("pseudo", normalized=False, root=copy)
    _edit(copy / "pseudo" / "soften.py", '"""', '"""A docstring edited. ')
    _edit(copy / "pseudo" / "stain.py", "\nimport ", "\n# a comment\n\nimport ")
    assert _all(copy) == before
    assert code_fingerprint("pseudo", normalized=False, root=copy) != raw  # the fast fingerprint moves


def test_the_closure_follows_lazy_imports_and_skips_the_profiles():
    closure = module_closure(STAGES["segment"])
    assert "ssimnet.tool.normalize" in closure  # imported inside a function of the segmenter
    assert "ssimnet.net.train" in closure  # fine-tuning, imported lazily by segment_image
    assert "ssimnet.config.constants" in closure  # INSTANCE_METHODS' thresholds are code a stage runs
    assert "ssimnet.config.profiles" not in closure  # settings, keyed by value
    assert not {"ssimnet.metrics", "ssimnet.book", "ssimnet.book.publish"} & set(closure)
    fingerprints = module_fingerprints(STAGES["score"])
    assert list(fingerprints) == ["ssimnet.metrics"] and len(fingerprints["ssimnet.metrics"]) == 12


def test_stage_keys_of_the_run_include_their_code(monkeypatch):
    from ssimnet import fingerprint
    from ssimnet.config import PseudoLabelConfig
    from ssimnet.runs.pipeline import pseudo_label_key

    key = pseudo_label_key(PseudoLabelConfig(), 0)
    real = fingerprint.code_fingerprint
    monkeypatch.setattr(fingerprint, "code_fingerprint",
                        lambda stage, **k: "changed" if stage == "pseudo" else real(stage, **k))
    assert pseudo_label_key(PseudoLabelConfig(), 0) != key
    with pytest.raises(KeyError):
        code_fingerprint("no such stage")


def test_a_change_to_the_metrics_scores_the_stored_labels_again_without_segmenting(tmp_path, monkeypatch):
    from ssimnet import fingerprint
    from ssimnet.config import SyntheticConfig, get_profile
    from ssimnet.datasets import write_synthetic_dataset
    from ssimnet.runs import evaluate

    data = write_synthetic_dataset(tmp_path / "data", SyntheticConfig(n_train=0, n_test=2, shape=(96, 96), seed=3))
    calls = []
    real_baseline = evaluate.segment_baseline
    monkeypatch.setattr(evaluate, "segment_baseline", lambda *a, **k: calls.append(1) or real_baseline(*a, **k))
    first, folder = evaluate.evaluate_baseline(data, tmp_path / "run", "watershed", get_profile("smoke"), progress=False)
    assert len(calls) == 2 and (folder / "segmented.csv").is_file()
    again, _ = evaluate.evaluate_baseline(data, tmp_path / "run", "watershed", get_profile("smoke"), progress=False)
    assert len(calls) == 2 and again.equals(first)  # read back
    real = fingerprint.code_fingerprint
    monkeypatch.setattr(fingerprint, "code_fingerprint", lambda stage, **k: "new" if stage == "score" else real(stage, **k))
    monkeypatch.setattr(evaluate, "code_fingerprint", fingerprint.code_fingerprint)
    rescored, same_folder = evaluate.evaluate_baseline(data, tmp_path / "run", "watershed", get_profile("smoke"),
                                                       progress=False)
    assert same_folder == folder and len(calls) == 2  # the metrics changed: scored again, nothing segmented
    assert (folder / "scores-new.csv").is_file() and rescored.drop(columns="seconds").equals(first.drop(columns="seconds"))
    assert rescored.seconds.tolist() == pytest.approx(first.seconds.tolist())  # the segmenting time, kept


def test_a_module_alone_counts_its_own_code_only(copy):
    assert module_closure(("=ssimnet.runs.evaluate",), copy) == ("ssimnet.runs.evaluate",)
    before = code_fingerprint("evaluate", root=copy)
    _edit(copy / "pseudo" / "soften.py", "return dist.astype(np.int64) - 1", "return dist.astype(np.int64) - 2")
    assert code_fingerprint("evaluate", root=copy) == before  # not what it imports
    _edit(copy / "runs" / "evaluate.py", "def segment_split(", "def _unused():\n    return 1\n\n\ndef segment_split(")
    assert code_fingerprint("evaluate", root=copy) != before
