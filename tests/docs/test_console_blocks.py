"""The console blocks of README.md and docs/, run or checked against what they claim."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.docs.blocks import REPO, Block, all_blocks, blocks

BIN = Path(sys.executable).parent


def console_blocks(covered_by: str) -> list[Block]:
    """The console blocks whose marker names the test ``covered_by``."""
    return [
        block
        for block in all_blocks()
        if block.info == "console" and block.covered_by and block.covered_by[1] == covered_by
    ]


def shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env={**env, "PATH": f"{BIN}{os.pathsep}{env['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_install_commands() -> None:
    """Every 'pip install blobcache[...]' names extras that exist; the bare install brings
    the command line (click is a plain dependency, not an extra)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"])
    assert any(dependency.startswith("click") for dependency in project["dependencies"])
    assert project["scripts"]["blobcache"] == "blobcache.cli:main"
    lines = [
        line
        for block in console_blocks("test_install_commands")
        for line in block.text.splitlines()
    ]
    assert lines
    for line in lines:
        words = shlex.split(line, comments=True)
        assert words[:2] == ["pip", "install"], line
        for requirement in words[2:]:
            name, _, rest = requirement.partition("[")
            if name == "blobcache" and rest:
                assert set(rest.rstrip("]").split(",")) <= extras, line


def test_readme_command_line(tmp_path: Path) -> None:
    """README's command-line tour runs as written, on a copy of examples/registry."""
    [block] = console_blocks("test_readme_command_line")
    registry = shutil.copytree(REPO / "examples" / "registry", tmp_path / "registry")
    script = "set -e\n" + block.text.replace("/var/lib/registry", str(registry))
    env = {**os.environ, "BLOBCACHE_URL": f"sqlite:///{tmp_path / 'cache.db'}"}
    result = shell(script, tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert "16 blobs, 12 digests" in result.stdout
    assert "1 copy linked" in result.stdout
    assert len((tmp_path / "cache.jsonl").read_text().splitlines()) == 12


def test_make_targets() -> None:
    """The make targets README names exist (make -n only prints their commands)."""
    [block] = console_blocks("test_make_targets")
    for line in block.text.splitlines():
        target = shlex.split(line, comments=True)[1]
        result = subprocess.run(
            ["make", "-n", target], cwd=REPO, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr


def _matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


@pytest.mark.parametrize(
    "block", console_blocks("test_maintenance_session"), ids=lambda block: block.where
)
def test_maintenance_session(block: Block, tmp_path: Path) -> None:
    """The example session prints what the page shows, line for line ('...' elides)."""
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    env = dict(os.environ)
    steps: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    assert steps
    for command, expected in steps:
        if command.startswith("export "):
            name, _, value = command.removeprefix("export ").partition("=")
            env[name] = value
            (tmp_path / ".demo").mkdir(exist_ok=True)  # as make demo does
            continue
        result = shell(command, tmp_path, env)
        assert result.returncode == 0, f"{command}: {result.stderr}"
        actual = result.stdout.splitlines()
        assert len(actual) == len(expected), f"{command}:\n{result.stdout}"
        for want, got in zip(expected, actual, strict=True):
            assert _matches(want, got), f"{command}: {got!r} is not {want!r}"


def test_error_tree() -> None:
    """The error tree in docs/api.md is blobcache's: each name an exception under the root,
    with the standard base it says it also is."""
    import builtins

    import blobcache

    [block] = [
        block
        for block in all_blocks()
        if block.covered_by and block.covered_by[1] == "test_error_tree"
    ]
    lines = block.text.splitlines()
    root = getattr(blobcache, lines[0].strip())
    for line in lines[1:]:
        match = re.match(r"^[├└]── (\w+)\s*(?:\(also an? (\w+)\))?", line)
        assert match, line
        error = getattr(blobcache, match.group(1))
        assert issubclass(error, root), line
        if match.group(2):
            assert issubclass(error, getattr(builtins, match.group(2))), line


def test_every_marker_names_a_test_here_or_elsewhere() -> None:
    """The console blocks this module claims are the ones marked with its tests."""
    here = {name for name in globals() if name.startswith("test_")}
    for page_blocks in map(blocks, {block.page for block in all_blocks()}):
        for block in page_blocks:
            if block.covered_by and block.covered_by[0] == "tests/docs/test_console_blocks.py":
                assert block.covered_by[1] in here, block.where
