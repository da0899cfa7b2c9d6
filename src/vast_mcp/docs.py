"""skill.md and references/api.md: shipped in the wheel, read from the tree in a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT_ROOT = Path(__file__).resolve().parents[2]


def read_doc(relative: str) -> str:
    """``relative`` is a path from the repository root, e.g. ``references/api.md``."""
    packaged = resources.files("vast_mcp").joinpath("_docs", relative)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (_CHECKOUT_ROOT / relative).read_text(encoding="utf-8")
