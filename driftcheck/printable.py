"""Text from a host or a file, made safe for a terminal: every control character shown, never obeyed.

A container's label or name, a mount source, an image ref, a manifest's value or folder name, and a
tampered --compare-with plan all reach the terminal. Raw, `\\x1b]0;…\\x07` retitles the terminal,
`\\x1b[2K\\x1b[1A` erases a line and moves up (so a forged row reads "in sync"), `\\x9b` is a CSI on
terminals that take C1 controls, and U+202E shows what follows reversed. printable() writes each
such character as an escape (`\\x1b`, `\\x9b`, `\\u202e`), so it shows as text. It is applied at every
terminal boundary: the summary table, the checks' failure lines, pytest's skip reasons, make
import's lines and the manifest errors. plan.json, report.json and the page keep the exact value
(JSON and HTML escape it on their own).

No I/O, no pytest: a pure function.
"""

from __future__ import annotations


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """text with every character a terminal would not print as itself escaped visibly.

    Escaped: C0 and C1 controls (ESC, BEL, CR, NEL ...), DEL, line and paragraph separators, and
    format characters, the bidi overrides and isolates among them: everything str.isprintable()
    refuses, the ASCII space aside. A line break is escaped too: one value stays on one line.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)

