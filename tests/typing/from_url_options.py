"""Checked by mypy --strict, never run: `BlobCache.from_url`'s options are typed.

Each ``type: ignore`` marks a line mypy must reject; with ``warn_unused_ignores``
(part of --strict) an ignore mypy no longer needs fails the typing gate, so a
regression to ``**options: Any`` is caught.
"""

from __future__ import annotations

from blobcache import BlobCache, OptionsDict


def typed_options() -> None:
    """Correct names and types pass; a misspelt name or a wrong type does not."""
    BlobCache.from_url("sqlite:///c.db", read_timeout=2, must_exist=True)
    BlobCache.from_url("sqlite:///c.db", read_timout=2)  # type: ignore[call-arg]
    BlobCache.from_url("sqlite:///c.db", max_attempts="many")  # type: ignore[arg-type]
    settings: OptionsDict = {"busy_timeout": 5.0, "synchronous": "NORMAL"}
    BlobCache.from_url("sqlite:///c.db", **settings)
    wrong: OptionsDict = {"synchronous": "SOMETIMES"}  # type: ignore[typeddict-item]
    BlobCache.from_url("sqlite:///c.db", **wrong)
