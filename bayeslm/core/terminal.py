"""Text from a corpus or a model, made safe to print on a terminal.

Text can hold control characters that a terminal obeys instead of showing: escape
sequences (``\\x1b]0;title\\x07`` retitles the window, ``\\x1b[2J`` clears the screen),
carriage returns and backspaces that overwrite what was printed, and the bidirectional
controls that reorder it. :func:`printable` shows each of them as its Python escape
(``\\x1b``, ``\\u202e``), so what is printed is what the text holds. JSON output needs
none of this (``json.dumps`` escapes control characters itself).
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 controls but tab, DEL, C1 controls; line/paragraph separators; bidi embeddings,
# overrides, isolates and marks (U+061C, U+200E/F, U+202A-E, U+2066-9)
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_OR_TAB = re.compile(_UNSAFE.pattern[:1] + "\t" + _UNSAFE.pattern[1:])


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, tabs: bool = False) -> str:
    """``text`` with every character a terminal would act on shown as its escape (``\\x1b``).

    Newlines are escaped too (one line stays one line); tabs are kept unless ``tabs=True``
    (for a field of tab-separated output).
    """
    return (_UNSAFE_OR_TAB if tabs else _UNSAFE).sub(_escape, text)
