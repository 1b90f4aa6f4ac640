"""Every reference to documentation points at a file this repository contains.

A clone has only what is committed: a docstring that sends the reader to a design note or research
file outside the repository is a dead end. This test scans the sources, configs, scripts and docs
(`.py`, `.yaml`/`.yml`, `.md`, `.sh`, `.txt`, `Makefile`; not `.venv*`, `build/` or other hidden or
generated folders) and fails on

* a `docs/...` path, or any `NAME.md` / `path/NAME.md`, that does not resolve to a file here (relative
  to the repository root or to the referring file; a bare name may be any file of that name);
* a `§N` section, written right after a reference to one of our `docs/*.md` pages, that the page has
  no numbered heading for;
* a reference to the design note or the research notes by their old names (`DESIGN.md`, `evo1.md`,
  `xarm.md`, `lerobot.md`, `ros2.md`, `docs/reference`): their content now lives in `docs/`.

External sources are cited as URLs, which are not references to files here and are skipped.

Two more checks keep docs/ honest: every path of this repository a docs page names exists, and
docs/architecture.md names every ROS params file in config/ and lists every key of each node's file
in that node's parameter table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
SELF = Path(__file__).resolve()

SUFFIXES = {".py", ".yaml", ".yml", ".md", ".sh", ".txt"}
FILE_NAMES = {"Makefile"}
SKIP_DIRS = {"build", "__pycache__", "node_modules"}  # plus every hidden folder (.venv*, .git, caches)

URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
OLD_NAMES = re.compile(r"(?<![\w-])(?:DESIGN|evo1|xarm|lerobot|ros2)\.md\b|(?<![\w-])docs/reference\b")
MD_REF = re.compile(r"(?<![\w/.\-*])((?:[\w.-]+/)*[\w-][\w.-]*\.md)\b")
DOCS_REF = re.compile(r"(?<![\w/.-])docs/[\w./-]*")
SECTIONS_AFTER = re.compile(r"^[`)\]]*\s*((?:§\s*\d+(?:\.\d+)*(?:\s*(?:[-–,/]|and)\s*)?)+)")
SECTION_NUMBER = re.compile(r"\d+(?:\.\d+)*")
HEADING_NUMBER = re.compile(r"^#+\s+(\d+(?:\.\d+)*)\.?\s", re.M)


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text}"


def scanned_files(root: Path = REPO) -> Iterator[Path]:
    """Source, config, script and doc files of the repository, outside hidden and generated folders."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if (path.suffix in SUFFIXES or name in FILE_NAMES) and path.resolve() != SELF:
                yield path


def _file_names(root: Path) -> set[str]:
    """Names of every file outside hidden and generated folders (a bare `NAME.md` may be any of them)."""
    names: set[str] = set()
    for _dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS]
        names.update(filenames)
    return names


def _resolves(ref: str, referrer: Path, root: Path, names: set[str]) -> bool:
    ref = ref.split("#", 1)[0].rstrip("/.")
    if not ref:
        return True
    for base in (root, referrer.parent):
        if (base / ref).exists():
            return True
    return "/" not in ref and ref in names


def _headings(page: Path) -> set[str]:
    return set(HEADING_NUMBER.findall(page.read_text(encoding="utf-8")))


def problems_in_text(
    text: str, referrer: Path, root: Path = REPO, names: set[str] | None = None
) -> list[str]:
    """What is wrong with the documentation references in `text` (one string per problem)."""
    if names is None:
        names = _file_names(root)
    text = URL.sub(" ", text)
    found: list[str] = []
    for m in OLD_NAMES.finditer(text):
        found.append(f"old reference {m.group(0)!r}: point to the page in docs/ that holds it now")
    for m in DOCS_REF.finditer(text):
        ref = m.group(0).rstrip(".,;:")
        if not _resolves(ref, referrer, root, names):
            found.append(f"{ref!r} does not exist in the repository")
    for m in MD_REF.finditer(text):
        ref = m.group(1)
        if OLD_NAMES.fullmatch(Path(ref).name) or ref.startswith("docs/"):
            # old names are reported above; docs/ paths by DOCS_REF (but their sections are checked below)
            pass
        elif not _resolves(ref, referrer, root, names):
            found.append(f"{ref!r} does not exist in the repository")
            continue
        page = next(
            (p for p in ((root / ref), (referrer.parent / ref)) if p.is_file() and p.parent == root / "docs"),
            None,
        )
        sections = SECTIONS_AFTER.match(text[m.end() :])
        if page is not None and sections:
            have = _headings(page)
            for number in SECTION_NUMBER.findall(sections.group(1)):
                if number not in have:
                    found.append(f"{ref} has no section §{number}")
    return found


def repository_problems(root: Path = REPO) -> list[Problem]:
    names = _file_names(root)
    out = []
    for path in scanned_files(root):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(lines, 1):
            for text in problems_in_text(line, path, root, names):
                out.append(Problem(str(path.relative_to(root)), number, text))
    return out


def test_every_documentation_reference_resolves():
    problems = repository_problems()
    assert not problems, "broken documentation references:\n" + "\n".join(map(str, problems))


def test_docs_pages_exist_and_are_linked_from_the_architecture_page():
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert "architecture.md" in pages, "docs/architecture.md is the map of the project"
    index = (DOCS / "architecture.md").read_text(encoding="utf-8")
    orphans = [p for p in pages if p != "architecture.md" and f"({p})" not in index]
    assert not orphans, f"docs pages not linked from docs/architecture.md: {orphans}"


REPO_PATH = re.compile(
    r"`((?:evo1_ros|recording|config|tests|scripts|launch|urdf|bench|evo1_msgs|tf2_msgs|docs)/[\w./-]*)`"
)


def test_paths_named_in_docs_exist():
    """A file or folder of this repository named in a docs page (in backticks) exists; an interface
    type such as `evo1_msgs/msg/ActionChunk` counts when its .msg/.srv file exists."""
    missing = []
    for page in sorted(DOCS.glob("*.md")):
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for m in REPO_PATH.finditer(line):
                ref = m.group(1).rstrip("/")
                candidates = [ref] + [
                    ref + ext for ext in (".msg", ".srv") if re.search(r"/(msg|srv)/\w+$", ref)
                ]
                if not any((REPO / c).exists() for c in candidates):
                    missing.append(f"docs/{page.name}:{number}: {ref}")
    assert not missing, "docs name paths the repository does not have:\n" + "\n".join(missing)


def _ros_parameters(data: object) -> dict | None:
    """The `ros__parameters` block of a ROS params file (any node key), else None."""
    if isinstance(data, dict):
        if isinstance(data.get("ros__parameters"), dict):
            return data["ros__parameters"]
        for value in data.values():
            found = _ros_parameters(value)
            if found is not None:
                return found
    return None


PARAM_TABLE = re.compile(r"^#### Parameters \(`config/([\w.-]+)`\)\n\n((?:\|.*\n?)+)", re.M)


def test_architecture_page_documents_every_node_parameter_file():
    """Each ROS params file in config/ is named in docs/architecture.md, and each key of a node's file
    is a row of that node's parameter table (dotted families such as `scene.*` by their prefix)."""
    index = (DOCS / "architecture.md").read_text(encoding="utf-8")
    tables = {
        m.group(1): set(re.findall(r"^\| `([^`]+)` \|", m.group(2), re.M))
        for m in PARAM_TABLE.finditer(index)
    }
    assert tables, "docs/architecture.md has no '#### Parameters (`config/...`)' tables"
    missing = []
    for path in sorted((REPO / "config").glob("*.yaml")):
        params = _ros_parameters(yaml.safe_load(path.read_text(encoding="utf-8")))
        if params is None:
            continue
        if f"config/{path.name}" not in index:
            missing.append(f"config/{path.name} is not mentioned")
            continue
        if path.name not in tables:
            continue
        for key in params:
            prefix = key.split(".", 1)[0]
            if key not in tables[path.name] and f"`{prefix}.*`" not in index and f"`{prefix}.<" not in index:
                missing.append(f"config/{path.name}: parameter {key!r} is not in its table")
    assert not missing, "docs/architecture.md is behind config/:\n" + "\n".join(missing)


# -- the checker itself: each rule must be able to fail --------------------------------------------------


@pytest.fixture
def tiny_repo(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## 1. One\n\n### 1.2 Sub\n\n## 2. Two\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "notes.md").write_text("x\n")
    (tmp_path / "README.md").write_text("x\n")
    return tmp_path


@pytest.mark.parametrize(
    "line",
    [
        '"""See DESIGN.md §2."""',
        "# units as in docs/reference/evo1.md §5.2",
        "(xarm.md §1.6)",
        "reference lerobot.md A.7",
        "ros2.md §2.1",
        "see docs/missing.md",
        "see docs/page.md §3",
        "see docs/page.md §1.3",
        "see docs/page.md §1-§4",
        "other/notes.md",
        "iface.md #1",
    ],
)
def test_checker_flags(tiny_repo: Path, line: str):
    assert problems_in_text(line, tiny_repo / "pkg" / "mod.py", tiny_repo), line


@pytest.mark.parametrize(
    "line",
    [
        "see docs/page.md §1, §1.2 and §2",
        "[page](page.md) §2",
        "README.md and notes.md",
        "pkg/notes.md",
        "https://github.com/org/repo/blob/main/DESIGN.md and https://x.org/docs/source/evo1.mdx",
        "tests/*.md are ignored as globs; docs/ exists",
        "docs/page.md#1-one",
    ],
)
def test_checker_accepts(tiny_repo: Path, line: str):
    referrer = tiny_repo / ("docs/other.md" if line.startswith("[") else "pkg/mod.py")
    assert problems_in_text(line, referrer, tiny_repo) == [], line
