"""Which kind of run a command line asks for: offline validation or drift checks."""

from __future__ import annotations

import re

#: the file of the offline checks (pytest -m manifest, make validate); every other test file in
#: checks/ holds drift checks
MANIFEST_FILE = "test_manifest.py"
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def requires_manifest(markexpr: str) -> bool:
    """Whether a -m expression selects only items marked `manifest`: an offline run.

    It does when `manifest` is one of the top-level terms joined by `and`: `manifest`,
    `manifest and tier0`, `(manifest) and not tier9`. Anything else (`not manifest`,
    `manifest or tier0`, no -m) can select drift checks, so it is a drift run.
    """
    depth = 0
    term: list[str] = []
    terms: list[list[str]] = []
    for token in _TOKEN.findall(markexpr):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        if depth == 0 and token == "or":
            return False  # a top-level `or`: some branch may select drift checks
        if depth == 0 and token == "and":
            terms.append(term)
            term = []
        else:
            term.append(token)
    terms.append(term)
    return any(_bare_manifest(t) for t in terms)


def _bare_manifest(term: list[str]) -> bool:
    while len(term) >= 2 and term[0] == "(" and term[-1] == ")":
        term = term[1:-1]
    return term == ["manifest"]
