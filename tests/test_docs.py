"""The manual stays true to the code: the settings reference is what ``Settings`` renders, the
README's links reach real files and headings, and no file cites a document the reader cannot open."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from scalr_queue import Settings
from scalr_queue._settings_doc import README_BEGIN, README_END, render_table, rendered_files, replace_between_markers
from tests.support import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """The anchor GitHub and mkdocs give a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower().replace("`", ""))
    return re.sub(r"\s+", "-", text)


def _anchors(path: Path) -> set[str]:
    in_code = False
    anchors = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6}\s+(.*)", line)):
            anchors.add(_slug(m.group(1)))
    return anchors


@pytest.mark.parametrize("name", ["docs/settings.md", ".env.shared"])
def test_settings_reference_is_what_the_settings_class_renders(name: str) -> None:
    expected = rendered_files(ROOT)[ROOT / name]
    assert (ROOT / name).read_text(encoding="utf-8") == expected, f"{name} is out of date: run `make settings-docs`"


def test_settings_table_has_one_row_per_field_with_its_env_name() -> None:
    rows = [row for row in render_table().splitlines()[2:]]
    assert len(rows) == len(Settings.model_fields)
    assert rows[0].startswith("| `REDIS_URL` | `redis://localhost:6379/0` |")
    assert "| `SCALR_QUEUE_MAX_PAYLOAD` | `1MiB` |" in render_table()
    assert "| `SCALR_QUEUE_TASKS` | unset |" in render_table()


def test_generator_check_mode_names_a_stale_file_and_rewrites_it(tmp_path: Path) -> None:
    readme = f"# x\n\n{README_BEGIN}\n| stale |\n{README_END}\n\nafter\n"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "settings.md").write_text(readme)
    (tmp_path / ".env.shared").write_text("REDIS_URL=redis://scalr-redis:6379/0\n")
    cmd = [sys.executable, "-m", "scalr_queue._settings_doc", "--root", str(tmp_path)]
    check = subprocess.run([*cmd, "--check"], capture_output=True, text=True, check=False)
    assert check.returncode == 1
    assert "settings.md is out of date" in check.stderr and ".env.shared is out of date" in check.stderr
    assert subprocess.run(cmd, capture_output=True, check=False).returncode == 0
    assert (tmp_path / "docs" / "settings.md").read_text() == replace_between_markers(readme, render_table())
    assert subprocess.run([*cmd, "--check"], capture_output=True, check=False).returncode == 0


def test_generator_without_markers_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "settings.md").write_text("# no markers\n")
    proc = subprocess.run(
        [sys.executable, "-m", "scalr_queue._settings_doc", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "settings.md needs the lines" in proc.stderr


@pytest.mark.parametrize("doc", ["README.md", "CHANGELOG.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_relative_links_reach_a_file_and_heading_that_exist(doc: str) -> None:
    path = ROOT / doc if (ROOT / doc).exists() else ROOT / "docs" / doc
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.is_file(), f"{doc} links to {target}, which does not exist"
        if anchor:
            assert anchor in _anchors(linked), f"{doc} links to {target}: no such heading"


# "issue 16", "ticket #3", "PR 12", "task 3 of", "the review said": a reader of this repository
# cannot open any of those. Numbers next to other words ("job 42", "invoice #42") are fine.
CITATION = re.compile(
    r"\b(issues?|tickets?|PRs?|pull requests?|requests?|items?)\s*#?\d+\b|\btask \d+ of\b|\bthe review\b",
    re.IGNORECASE,
)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".sh", ".cfg", ".ini", ".txt", ".json", ""}
THIS_FILE = "tests/test_docs.py"  # its examples below are citations on purpose


@pytest.mark.parametrize(
    ("line", "cites"),
    [
        ("fixes issue 16", True),
        ("see ticket #3", True),
        ("as PR 12 did", True),
        ("done in task 3 of the plan", True),
        ("the review said so", True),
        ("Targets of issue 5", True),
        ("sending invoice 42 (job 1f0c, try 1)", False),
        ('subject=f"Your invoice #{invoice_id}"', False),
        ("20150 requests, 1005 req/s", False),
    ],
)
def test_citation_pattern_tells_a_citation_from_a_number(line: str, cites: bool) -> None:
    assert bool(CITATION.search(line)) is cites


def test_no_file_cites_a_numbered_issue_or_a_document_the_reader_cannot_open() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    hits = []
    for name in files:
        path = ROOT / name
        if path.suffix not in TEXT_SUFFIXES or not path.is_file() or name == THIS_FILE:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if CITATION.search(line):
                hits.append(f"{name}:{number}: {line.strip()}")
    assert not hits, "cite what the reader can open instead:\n" + "\n".join(hits)
