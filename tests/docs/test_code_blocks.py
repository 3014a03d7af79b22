"""Every code block of README.md and docs/ runs, or is a transcript another test checks."""

from __future__ import annotations

import doctest
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import PAGES, REPO, Block, all_blocks, blocks

# MyST directives that hold markup for Sphinx, not code.
_MARKUP = {"{toctree}", "{eval-rst}"}
# Sphinx's doctest builder runs {doctest} blocks (make docs); this suite runs them too.
_DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL


def _is_markup(block: Block) -> bool:
    if block.info == "{toctree}":
        return True
    # eval-rst may only hold directives (autodoc), never code to run.
    return all(
        not line.strip() or line.startswith(("..", "   ")) for line in block.text.splitlines()
    )


def _covering_test_exists(path: str, name: str) -> bool:
    source = REPO / path
    if not source.is_file():
        return False
    top = name.split("::")[0]
    return re.search(rf"^\s*(def|class) {re.escape(top)}\b", source.read_text(), re.M) is not None


@pytest.mark.parametrize("block", all_blocks(), ids=lambda block: block.where)
def test_every_block_is_run_or_covered(block: Block) -> None:
    """A block is Python (run below), a doctest (run below and by Sphinx), a JSON document
    (parsed here), Sphinx markup, or a console transcript marked
    '<!-- covered by FILE::TEST -->' naming a test that exists. Anything else fails, so a
    new block cannot go unchecked."""
    if block.info in ("python", "{doctest}", "{testsetup}", "{testcleanup}"):
        return
    if block.info == "json":
        json.loads(block.text)  # an IAM policy, a --json document: it must at least parse
        return
    if block.info in _MARKUP:
        assert _is_markup(block), f"{block.where}: {block.info} holds code"
        return
    assert block.info in ("console", "text"), f"{block.where}: a ```{block.info} block nobody runs"
    assert block.covered_by is not None, (
        f"{block.where}: a {block.info} block needs '<!-- covered by FILE::TEST -->' before it"
    )
    assert _covering_test_exists(*block.covered_by), f"{block.where}: {block.covered_by}"


def _pages_with(info: str) -> list[Path]:
    return [page for page in PAGES if any(block.info == info for block in blocks(page))]


@pytest.mark.parametrize("page", _pages_with("{doctest}"), ids=lambda page: page.name)
def test_doctest_blocks(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's doctest blocks pass, in order, in one namespace, between its
    ``{testsetup}`` and ``{testcleanup}`` code as Sphinx's doctest builder runs them."""
    monkeypatch.chdir(tmp_path)
    page_blocks = blocks(page)
    namespace: dict[str, object] = {}
    for block in page_blocks:
        if block.info == "{testsetup}":
            exec(compile(block.text, block.where, "exec"), namespace)
    try:
        text = "\n".join(block.text for block in page_blocks if block.info == "{doctest}")
        test = doctest.DocTestParser().get_doctest(text, namespace, page.name, str(page), 0)
        runner = doctest.DocTestRunner(optionflags=_DOCTEST_FLAGS)
        runner.run(test, clear_globs=False)
        assert runner.summarize(verbose=False).failed == 0
    finally:
        for block in page_blocks:
            if block.info == "{testcleanup}":
                exec(compile(block.text, block.where, "exec"), namespace)


@pytest.mark.parametrize("page", _pages_with("python"), ids=lambda page: page.name)
def test_python_blocks(page: Path, tmp_path: Path) -> None:
    """The page's Python blocks run as a user would: in a fresh directory, under pytest.

    A block whose first line is ``# NAME.py`` becomes that file (``test_*.py`` files are
    test modules, ``settings.py`` makes the directory a Django project); the others run
    in order as one module. The directory has a copy of ``examples/``, so relative paths
    in the docs mean what they mean at the repository's top.
    """
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    loose: list[str] = []
    for block in blocks(page):
        if block.info != "python":
            continue
        if block.filename:
            (tmp_path / block.filename).write_text(block.text)
        else:
            loose.append(f"# {block.where}\n{block.text}")
    module = tmp_path / f"test_{page.stem.lower()}_blocks.py"
    module.write_text("\n\n".join(loose) + "\n\ndef test_the_blocks_ran():\n    pass\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "BLOBCACHE_URL": f"sqlite:///{tmp_path / 'default.db'}",
        "BLOBCACHE_TOOLS_DIR": str(REPO / ".tools"),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if (tmp_path / "settings.py").exists():
        env["DJANGO_SETTINGS_MODULE"] = "settings"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "-W",
            "error::blobcache.contrib._config.UnknownSettingWarning",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
    assert "error" not in result.stdout.splitlines()[-1]
