"""Write every ``>=`` floor that pyproject.toml declares for the library and its tests as
an exact pin (``name==floor``), for ``tox -e min``: a floor nobody tests is a guess."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

#: The extras whose floors are tested; dev's tools (mypy, sphinx, tox...) run only at their
#: newest, in their own tox environments.
TESTED_EXTRAS = ("cli", "flask", "django", "test")
FLOOR = re.compile(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*([^,;\s]+)")


def pins(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project["optional-dependencies"]
    requirements = [*project["dependencies"], *(r for e in TESTED_EXTRAS for r in extras[e])]
    found = {}
    for requirement in requirements:
        match = FLOOR.fullmatch(requirement)
        if match:
            found[match[1].lower()] = match[2]
    return [f"{name}=={version}" for name, version in sorted(found.items())]


if __name__ == "__main__":
    Path(sys.argv[1]).write_text("\n".join(pins(Path("pyproject.toml"))) + "\n")
