"""Project wiring: dependency lists agree, notebooks are wired into the book, profiles are sane."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import jupytext
import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from ssimnet.book import toc_notebooks
from ssimnet.config import PROFILES, SHIPPED_MODEL, get_profile

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch"}
PARAMETERS = {"data_dir", "run_dir", "profile", "seed", "device", "workers"}
OPTIONAL_PARAMETERS = {"cpm17_dir", "results_dir", "gpu_results_dir", "rounds", "runs"}  # cpm17_dir: passed by `ssimnet book --cpm17-dir` only when given; results_dir: committed results; rounds, runs: the study of 09


def _split(spec: str) -> tuple[str, str]:
    name, version = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", spec.strip()).groups()
    return name.lower(), version.replace(" ", "")


def _locked() -> dict[str, str]:
    return {name.lower(): version for name, version in
            re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+?)\s", (ROOT / "requirements.lock").read_text(), flags=re.M)}


def test_lock_environment_yml_and_pyproject_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert "ssimnet[book]" in extras["test"]  # the tests cover the book's machinery too
    pypi = dict(_split(s) for s in project["dependencies"] + extras["test"] + extras["book"] if not s.startswith("ssimnet"))
    assert not {"jupyter-book", "papermill", "ipykernel", "sphinx-exercise"} & {_split(s)[0] for s in project["dependencies"]}
    locked = _locked()
    assert set(pypi) <= set(locked), "every dependency is locked"
    for name, spec in pypi.items():  # the lock satisfies pyproject's ranges
        assert Version(locked[name]) in SpecifierSet(spec, prereleases=True), (name, locked[name], spec)
    assert locked["torch"].endswith("+cpu")  # the CPU build, not the multi-GB CUDA one
    text = (ROOT / "requirements.lock").read_text()
    assert text.count("--hash=sha256:") >= len(locked)  # every package has its hashes
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    for dep in env["dependencies"]:
        for spec in dep.get("pip", []) if isinstance(dep, dict) else [dep]:
            if spec.startswith("-e"):
                continue
            name, version = _split(spec)
            if name not in ("python", "pip"):
                conda[CONDA_TO_PYPI.get(name, name)] = version
    assert set(conda) == set(pypi)  # the same packages ...
    assert conda == {name: "==" + locked[name].split("+")[0] for name in pypi}  # ... at the locked versions


def test_the_readme_installs_from_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements.lock" in makefile and "ifeq ($(LOCK),0)" in makefile


def test_every_book_notebook_has_a_source_and_every_source_is_in_the_book():
    names = toc_notebooks(ROOT / "_toc.yml")
    sources = sorted(p.stem for p in (ROOT / "notebooks").glob("*.py"))
    assert names and sorted(names) == sources
    assert names == sorted(names)  # chapters run in the paper's order


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.py")), ids=lambda p: p.stem)
def test_notebooks_have_the_papermill_parameters_cell(path):
    nb = jupytext.read(path)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    assigned = set(re.findall(r"^(\w+)\s*=", cells[0].source, flags=re.M))
    assert PARAMETERS <= assigned <= PARAMETERS | OPTIONAL_PARAMETERS


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.py")), ids=lambda p: p.stem)
def test_every_chapter_opens_with_its_box_and_closes_with_a_summary(path):
    nb = jupytext.read(path)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    box = markdown[0]  # the chapter's first cell: title, introduction, then the box
    assert "```{admonition} In this chapter" in box and "**You will learn**" in box and "**It runs**" in box
    assert "{glue:md}`chapter_time`" in box
    glued = [c for c in nb.cells if "remove-cell" in c.metadata.get("tags", []) and "glue(" in c.source]
    assert len(glued) == 1 and f'reference_time("{path.stem}", "results/cpu")' in glued[0].source  # its own time
    headings = [re.findall(r"^# (?:## )?(.+)$|^## (.+)$", m, flags=re.M) for m in markdown]
    titles = [t for found in headings for pair in found for t in pair if t]
    assert "Summary" in titles and titles.index("Summary") < titles.index("Exercises")


def test_book_config_does_not_execute_and_ci_calls_the_readme_commands():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ("make test", "make book"):
        assert command in readme and command in ci


def test_profiles():
    assert set(PROFILES) == {"smoke", "cpu", "paper"}
    assert get_profile("paper").inference.instances == "cc" and get_profile("paper").inference.finetune_epochs == 5
    assert get_profile("cpu").inference.instances == "distance" and get_profile("cpu").for_tool().inference.finetune_epochs == 0
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        get_profile("fast")


def test_a_built_wheel_holds_the_shipped_network(tmp_path):
    """A non-editable install gets the network that ``ssimnet segment`` uses by default, and its card."""
    import shutil
    import subprocess
    import sys
    import zipfile

    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "ssimnet", tmp_path / "ssimnet", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(tmp_path)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("ssimnet-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"ssimnet/weights/{SHIPPED_MODEL}.{suffix}" for suffix in ("pt", "onnx", "json")} <= names
