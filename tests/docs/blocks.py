"""The fenced code blocks of README.md and docs/*.md, and what each one is."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\S*)\s*$")
_COVERED = re.compile(r"^<!-- covered by (\S+?)::(\S+) -->$")
_FILE_HEADER = re.compile(r"^# (\w+\.py)$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its info string, its text, and its marker if any."""

    page: Path
    line: int
    info: str
    text: str
    #: ``(test file, test name)`` from a ``<!-- covered by FILE::NAME -->`` line before it.
    covered_by: tuple[str, str] | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    @property
    def filename(self) -> str | None:
        """``settings.py`` for a Python block whose first line is ``# settings.py``."""
        match = _FILE_HEADER.match(self.text.split("\n", 1)[0])
        return match.group(1) if match else None


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, in order."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        start, info = index, match.group(1)
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
        previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marker = _COVERED.match(previous.strip())
        found.append(
            Block(
                page,
                start + 1,
                info,
                "\n".join(lines[start + 1 : end]) + "\n",
                (marker.group(1), marker.group(2)) if marker else None,
            )
        )
        index = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page)]
