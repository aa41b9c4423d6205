"""The README and docs/ (issue 17): a README of at most 10 KB, links that lead somewhere, a quick start that
names what the lab test follows, and an FAQ whose quoted messages are driftcheck's real ones."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from driftcheck.codes import CODES

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, REPO / "SECURITY.md", REPO / "modules" / "README.md", *sorted(DOCS.glob("*.md"))]
#: the code the FAQ's quotes are looked up in: the package, and the conftest that tells a pytest started above
#: the checkout what to run
SOURCES = [*sorted((REPO / "driftcheck").rglob("*.py")), REPO / "conftest.py"]
#: how the FAQ marks the words of another program, right after the quote
FOREIGN = ("(ssh's words)", "(docker's words)", "(pytest's words)", "(the shell's words)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_at_most_10_kb() -> None:
    assert len(README.read_bytes()) <= 10_000


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in page.read_text().splitlines() if re.match(r"#{1,6} ", line)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    links = LINK.findall(page.read_text())
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: {link}"
        if anchor:
            assert anchor in _anchors(target), f"{page.name}: {link}"


def test_the_slug_is_githubs() -> None:
    assert _slug("Quick start: check your own host") == "quick-start-check-your-own-host"
    assert _slug("hosts.yaml and the connection") == "hostsyaml-and-the-connection"
    assert _slug("Compose's own shapes") == "composes-own-shapes"


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_the_quick_start_is_in_the_readme_with_the_steps_the_lab_test_follows() -> None:
    """tests/lab/test_quickstart_against_lab.py types these; the README must still say them, in this order."""
    quick = _section(README.read_text(), "Quick start: check your own host")
    steps = ["`make venv`", "ssh deploy@myhost.tail1234.ts.net true",
             "**The inventory**, `hosts.yaml`: in the `myhost` entry",
             "`make import HOST=myhost`", "`PROJECT=", "`make validate` (exit 0)", "`.venv/bin/python -m pytest`",
             "`reports/latest/index.html`", "tests/lab/test_quickstart_against_lab.py"]
    where = [quick.find(step) for step in steps]
    assert -1 not in where, [s for s, w in zip(steps, where, strict=True) if w < 0]
    assert where == sorted(where)
    # the inventory the user edits holds the entry step 4 names, with the address the lab test replaces
    assert "deploy@myhost.tail1234.ts.net:22" in (REPO / "hosts.yaml").read_text()


def test_the_exit_codes_are_contrasted_once_with_terraform() -> None:
    readme = README.read_text()
    assert readme.count("terraform plan -detailed-exitcode") == 1
    codes = _section(readme, "Exit codes")
    assert "terraform plan -detailed-exitcode" in codes and "**1 is drift and 2 is an error**" in codes


def test_the_bench_tables_in_internals_are_the_last_results() -> None:
    from bench import bench  # imports the lab's labctl, which starts nothing

    internals = (DOCS / "internals.md").read_text()
    assert bench.INTERNALS == DOCS / "internals.md" and bench.BEGIN in internals
    assert bench.with_tables(internals, (REPO / "bench" / "results.md").read_text()) == internals, "run: make bench"
    moved = bench.with_tables(internals, "| N | x |\nN=200 on a host: 9s\n")
    assert "| N | x |\nN=200 on a host: 9s\n<!-- end" in moved and "| 10 | 1 |" not in moved


def _string_shapes() -> list[str]:
    """Every string literal of the sources, an f-string's replacement fields as NUL."""
    shapes = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                shapes.append("".join(v.value if isinstance(v, ast.Constant) else "\0" for v in node.values))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                shapes.append(node.value)
    return shapes


def faq_quotes(faq: str) -> list[tuple[str, bool]]:
    """The quotes of the FAQ's entries: each code span in bold, and whether it is marked as another program's."""
    quotes = []
    for bold in re.findall(r"\*\*(.+?)\*\*", faq, re.S):
        for match in CODE_SPAN.finditer(bold):
            after = " ".join(bold[match.end():].split())
            quotes.append((" ".join(match.group(2).strip().split()), after.startswith(FOREIGN)))
    return quotes


def is_real(quote: str, shapes: list[str]) -> bool:
    """A code, or a message of the code: its parts between `…` in order in one literal, `…` where it varies."""
    if quote in CODES:
        return True
    parts = [p.strip() for p in re.split(r"…|\.\.\.", quote) if p.strip()]
    pattern = re.compile(".*?".join(re.escape(p) for p in parts), re.S)
    return any(pattern.search(shape) for shape in shapes)


def test_every_message_the_faq_quotes_is_a_real_one() -> None:
    faq = _section((DOCS / "operations.md").read_text(), "FAQ: the first errors you will meet")
    quotes = faq_quotes(faq)
    assert len(quotes) >= 25  # the entries are there, each with its code and words
    shapes = _string_shapes()
    unreal = [quote for quote, foreign in quotes if not foreign and not is_real(quote, shapes)]
    assert unreal == []
    assert {quote for quote, foreign in quotes if foreign} == {
        "No ED25519 host key is known for …", "permission denied while trying to connect to the Docker daemon",
        "docker: command not found", "unrecognized arguments: --modules-dir"}


def test_the_faq_check_refuses_a_message_the_code_does_not_say() -> None:
    shapes = _string_shapes()
    assert is_real("is readable by others", shapes) and is_real("presented an unknown … host key", shapes)
    assert not is_real("got an integer", shapes)  # what the FAQ said of a port YAML read as a number
    assert not is_real("host key … presented an unknown", shapes)  # the parts in another order
    assert not is_real("NOT_A_CODE", shapes)
    assert faq_quotes("**`AUTH_FAILED`: `x` (ssh's words)**, **`y`** and `z`") == [
        ("AUTH_FAILED", False), ("x", True), ("y", False)]


def test_the_readme_shows_the_scale_goals_of_the_last_results() -> None:
    from bench import bench

    readme = README.read_text()
    results = (REPO / "bench" / "results.md").read_text()
    assert bench.README == README and bench.GOALS_BEGIN in readme
    assert bench.with_goals(readme, results) == readme, "run: make bench"
    shown = readme.partition(bench.GOALS_BEGIN)[2].partition(bench.GOALS_END)[0]
    assert shown.count("\n| ") >= 6, shown  # a row for each scale goal, met or not
