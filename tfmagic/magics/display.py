"""Display helpers the magics share: option values, short texts.

>>> split_names("a, b,c")
('a', 'b', 'c')
>>> first_line("\\n  y = x * 2\\nz = y")
'y = x * 2'
"""

from __future__ import annotations

#: How many option lines and cell texts a magic memoises.
MAX_MEMO = 256


def split_names(text: str | None) -> tuple[str, ...] | None:
    """``"a, b"`` -> ``("a", "b")``; ``None`` stays ``None``."""
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


def first_line(source: str) -> str:
    """A cell's first non-blank line, cut to 40 characters (to name a cell in a table)."""
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= 40 else line[:37] + "..."
