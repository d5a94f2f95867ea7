"""docs/method.md: every "method.md §N" reference in the code lands on a section of the spec."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
METHOD = ROOT / "docs" / "method.md"
CODE_DIRS = ("rrs", "ui", "pages", "bench")

# "## 4. Exact top-k certificate", "## 6b. …", "### 8.1 …": the id is what "§" cites
HEADING = re.compile(r"^#{1,6}\s+(\d+[a-z]?(?:\.\d+)?)\.?\s+(.*)$")
# "method.md §4", "method.md §4–§6", "method.md §2, §5 and §6b"
REFERENCE = re.compile(r"method\.md\s*(§\s?\d+[a-z]?(?:\s*(?:[–—-]|,|and|or)\s*§?\s?\d+[a-z]?)*)")
SECTION_ID = re.compile(r"\d+[a-z]?")
# "method.md §4, "per-cell certificate"": a quoted phrase that section must contain
QUOTED = re.compile(r"""method\.md\s*§\s?(\d+[a-z]?)\s*,\s*["“]([^"”]+)["”]""")


def sections(text: str) -> dict[str, str]:
    """Section id → its text: heading and body up to the next numbered heading or the next
    unnumbered heading of level 1–2 (an unnumbered "### …" belongs to its section)."""
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = HEADING.match(line)
        if m:
            current = m.group(1)
            out[current] = ""
        elif re.match(r"^#{1,2}\s", line):
            current = None
        if current is not None:
            out[current] += line + "\n"
    return out


def references(text: str) -> list[str]:
    """Every section id cited as "method.md §…" in ``text`` (ranges cite both ends)."""
    return [sid for m in REFERENCE.finditer(text) for sid in SECTION_ID.findall(m.group(1))]


def unresolved(text: str, known: dict[str, str]) -> list[str]:
    bad = [f"§{sid}" for sid in references(text) if sid not in known]
    for sid, phrase in QUOTED.findall(text):
        phrase = " ".join(phrase.split())
        if sid in known and phrase.lower() not in " ".join(known[sid].split()).lower():
            bad.append(f"§{sid} has no {phrase!r}")
    return bad


def code_files():
    for folder in CODE_DIRS:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_method_has_the_numbered_sections():
    known = sections(METHOD.read_text(encoding="utf-8"))
    for sid in ("1", "2", "3", "4", "5", "6", "6b", "7", "8", "9"):
        assert sid in known, f"docs/method.md has no section {sid}"
        assert len(known[sid].split()) > 40, f"section {sid} is nearly empty"


def test_every_code_reference_resolves():
    known = sections(METHOD.read_text(encoding="utf-8"))
    found, bad = 0, []
    for path in code_files():
        text = path.read_text(encoding="utf-8")
        found += len(references(text))
        bad += [f"{path.relative_to(ROOT)}: {b}" for b in unresolved(text, known)]
    assert found >= 10, "the scan found almost no references: the pattern is broken"
    assert not bad, "references to missing sections of docs/method.md:\n" + "\n".join(bad)


@pytest.mark.parametrize("text, expected", [
    ("(method.md §4)", ["4"]),
    ("method.md §4–§6", ["4", "6"]),
    ("method.md §2, §5 and §6b", ["2", "5", "6b"]),
    ("the project's ``method.md``", []),
])
def test_reference_pattern(text, expected):
    assert references(text) == expected


def test_a_reference_to_a_missing_section_is_caught():
    known = sections(METHOD.read_text(encoding="utf-8"))
    assert unresolved("see method.md §42", known) == ["§42"]
    assert unresolved("method.md §4–§12", known) == ["§12"]
    assert unresolved('method.md §4, "no such phrase here"', known) == ["§4 has no 'no such phrase here'"]
    assert unresolved('method.md §4, "per-cell certificate"', known) == []
    assert unresolved('method.md §8, "numerical traps"', known) == []  # a subsection counts
    assert "Holm" not in known["8"] and "References" not in known["9"]


def test_every_module_is_listed_in_the_layout_docs():
    """ui/__init__'s docstring names every ui module (those of its packages too); the README's
    layout table names every module and package of rrs/ and every ui module and package (a
    newcomer finds each one there)."""
    import ui

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    table = readme[readme.index("| path | what |"):]
    table = table[:table.index("\n\n")]
    for path in sorted((root / "ui").glob("*.py")):
        if path.stem != "__init__":
            assert f":mod:`ui.{path.stem}`" in ui.__doc__, path.stem
            assert f"`{path.stem}`" in table, path.stem
    for package in sorted(p for p in (root / "ui").iterdir() if (p / "__init__.py").exists()):
        assert f"`{package.name}/`" in table, package.name            # a package: each module named too
        for path in sorted(package.glob("*.py")):
            if path.stem != "__init__":
                assert f":mod:`ui.{package.name}.{path.stem}`" in ui.__doc__, f"{package.name}/{path.name}"
                assert f"`{path.stem}`" in table, f"{package.name}/{path.name}"
    for path in sorted((root / "rrs").iterdir()):
        if path.suffix == ".py" and path.stem != "__init__":
            assert f"`rrs/{path.name}`" in table, path.name
        elif path.is_dir() and (path / "__init__.py").exists():
            assert f"`rrs/{path.name}/`" in table, path.name
