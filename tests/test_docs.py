"""The documentation stays inside the repository and true to the code.

* No project file points at paths outside the repository (the team's working folders).
* Every relative link in README.md and docs/*.md leads to a file of the repository (and, for a
  ``#fragment`` into a Markdown file, to one of its headings).
* Every JSON block of docs/segment-format.md marked ``<!-- segment -->`` is a valid segment
  definition for heapseg's model, and the format's three example segments are the seeds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import unicodedata
from pathlib import Path

import pytest

from heapseg.model import Group
from tests.spec_examples import NEW_TRIALS, POSSIBLE_CHURN, WINDOW_SHOPPERS

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# Built from pieces, so that this file does not contain what it looks for.
OUTSIDE = ("/".join(("..", "shared")), "/".join(("", "work", "shared")))
# Fixed by its own owner; see the module docstring of tests/reference.py.
NOT_CHECKED = {"tests/reference.py"}
SKIPPED_DIRS = {".git", ".venv", "build", "dist", "node_modules", "__pycache__"}
SEGMENT_MARKER = "<!-- segment -->"


def _project_files() -> list[str]:
    """Tracked files and new files not ignored by git, relative to the repository."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.decode("utf-8", "surrogateescape")
        return sorted({name for name in listing.split("\0") if name})
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked sdist)
        found = []
        for folder, dirs, files in os.walk(REPO):
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".")]
            found += [(Path(folder) / f).relative_to(REPO).as_posix() for f in files]
        return sorted(found)


def test_no_project_file_points_outside_the_repository() -> None:
    offenders = []
    for name in _project_files():
        path = REPO / name
        if name in NOT_CHECKED or not path.is_file():  # deleted in the working tree
            continue
        data = path.read_bytes()
        for needle in OUTSIDE:
            if needle.encode() in data:
                line = data[: data.index(needle.encode())].count(b"\n") + 1
                offenders.append(f"{name}:{line}: {needle}")
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


# ------------------------------------------------------------------------------------ links

_FENCE_RE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.M | re.S)
_CODE_SPAN_RE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_INLINE_LINK_RE = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_REFERENCE_RE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
_HTML_RE = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"", re.I)
_HEADING_RE = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def _prose(text: str) -> str:
    """The Markdown without code blocks and code spans (links there are only examples)."""
    without_blocks = _FENCE_RE.sub("", text)
    return _CODE_SPAN_RE.sub("", without_blocks)


def _links(text: str) -> list[str]:
    prose = _prose(text)
    return [
        *_INLINE_LINK_RE.findall(prose),
        *_REFERENCE_RE.findall(prose),
        *_HTML_RE.findall(prose),
    ]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower case, punctuation dropped, - for spaces."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in ("L", "N"))
    return kept.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for heading in _HEADING_RE.findall(_FENCE_RE.sub("", path.read_text(encoding="utf-8"))):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _documents() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("document", _documents(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_lead_to_files_of_the_repository(document: Path) -> None:
    broken = []
    for target in _links(document.read_text(encoding="utf-8")):
        if _SCHEME_RE.match(target) or target.startswith("//"):
            continue  # a web address
        path_part, _, fragment = target.partition("#")
        path_part = path_part.split("?", 1)[0]
        resolved = (document.parent / path_part).resolve() if path_part else document
        if not resolved.is_relative_to(REPO):
            broken.append(f"{target}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in _anchors(resolved):
            broken.append(f"{target}: {resolved.name} has no heading #{fragment}")
    assert not broken, f"broken links in {document.name}:\n" + "\n".join(broken)


def test_the_link_checker_sees_links() -> None:
    text = (
        '[a](docs/x.md) ![b](img.png "title") `[c](code.md)`\n'
        '```\n[d](block.md)\n```\n[e]: ref.md\n<img src="pic.svg">\n'
    )
    assert _links(text) == ["docs/x.md", "img.png", "ref.md", "pic.svg"]
    assert _slug("`then`: sequences") == "then-sequences"
    assert _slug("Checks at `connect`") == "checks-at-connect"
    assert _slug("`user_migrations`: identity merges") == "user_migrations-identity-merges"


def test_the_readme_links_the_format_references() -> None:
    links = _links((REPO / "README.md").read_text(encoding="utf-8"))
    for name in ("data-model.md", "segment-format.md", "catalog-format.md"):
        assert f"docs/{name}" in links


# ------------------------------------------------------------------------------------ examples


def _segment_blocks() -> list[tuple[int, str]]:
    """(line, JSON text) of every block marked as a segment definition in segment-format.md."""
    text = (DOCS / "segment-format.md").read_text(encoding="utf-8")
    blocks = []
    for marker in re.finditer(re.escape(SEGMENT_MARKER), text):
        line = text.count("\n", 0, marker.start()) + 1
        block = re.match(r"\s*```json[ \t]*\n(.*?)\n```", text[marker.end() :], re.S)
        assert block, f"segment-format.md:{line}: {SEGMENT_MARKER} is not followed by a json block"
        blocks.append((line, block.group(1)))
    return blocks


SEGMENT_BLOCKS = _segment_blocks()


@pytest.mark.parametrize(
    "text", [text for _, text in SEGMENT_BLOCKS], ids=[f"line-{n}" for n, _ in SEGMENT_BLOCKS]
)
def test_segment_examples_are_valid_definitions(text: str) -> None:
    definition = json.loads(text)
    segment = Group.from_dict(definition)
    assert Group.from_dict(segment.to_dict()) == segment


def test_the_format_shows_the_three_seed_segments() -> None:
    assert len(SEGMENT_BLOCKS) >= 10, "segment-format.md lost its marked examples"
    shown = [Group.from_dict(json.loads(text)) for _, text in SEGMENT_BLOCKS]
    for seed in (NEW_TRIALS, WINDOW_SHOPPERS, POSSIBLE_CHURN):
        assert Group.from_dict(seed) in shown
