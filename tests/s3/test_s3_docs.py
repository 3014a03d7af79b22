"""The S3 section of docs/maintenance.md, run against a zot-shaped bucket on moto's server."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from blobcache.cli import cli
from tests.s3.conftest import ZotBucket

DOC = Path(__file__).resolve().parents[2] / "docs" / "maintenance.md"
DOC_LOCATION = "s3://zot-blobs/base?region=eu-west-1"


def section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index("## Blobs in S3") : text.index("## API")]


def test_console_session_runs_as_shown(
    zot: ZotBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command of the session runs; each output line shown (not elided) is printed."""
    (session,) = re.findall(r"```console\n(.*?)```", section(), flags=re.DOTALL)
    monkeypatch.setenv("BLOBCACHE_URL", f"sqlite:///{tmp_path / 'doc.db'}")
    commands: list[tuple[list[str], list[str]]] = []
    for line in session.splitlines():
        if line.startswith("$ blobcache "):
            commands.append((shlex.split(line[2:])[1:], []))
        elif not line.startswith("$ ") and commands:
            commands[-1][1].append(line.strip())
    assert len(commands) == 6
    for args, shown in commands:
        args = [zot.url if arg == DOC_LOCATION else arg for arg in args]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        printed = result.stdout + result.stderr
        assert result.exit_code in (0, 1), printed
        for expected in shown:
            if "..." not in expected:
                assert expected in printed, (args, expected, printed)


def test_python_example_runs() -> None:
    """The Python example runs as written (parsing needs no server)."""
    (example,) = re.findall(r"```python\n(.*?)```", section(), flags=re.DOTALL)
    exec(compile(example, str(DOC), "exec"), {})
