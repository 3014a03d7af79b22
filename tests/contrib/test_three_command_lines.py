"""blobcache, flask blobcache and manage.py blobcache: one set of commands, one output."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from flask import Flask

from blobcache import BlobCache
from blobcache.cli import cli
from blobcache.contrib.flask import FlaskBlobCache
from tests.helpers import digest_of
from tests.test_contrib_django import setup_django

setup_django()

COMMANDS = [
    ["stats"],
    ["stats", "--json"],
    ["verify"],
    ["verify", "--jsonl"],
    ["prune"],
    ["export"],
    ["get", digest_of(1)],
    ["paths", "--json", digest_of(1)],
    ["has", digest_of(1), "/nonexistent/b"],
    ["get", digest_of(9)],
]


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with BlobCache.from_url(url) as cache:
        cache.put(digest_of(1), "/nonexistent/a")
        cache.put(digest_of(1), "/nonexistent/b")
        cache.put(digest_of(2), "/nonexistent/c")
    return url


def standalone(url: str, args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--url", url, *args])
    return result.exit_code, result.stdout, result.stderr


def flask(url: str, args: list[str]) -> tuple[int, str, str]:
    app = Flask("three")
    app.config["BLOBCACHE_URL"] = url
    FlaskBlobCache(app)
    result = app.test_cli_runner().invoke(args=["blobcache", *args])
    return result.exit_code, result.stdout, result.stderr


def django(url: str, args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with override_settings(BLOBCACHE={"default": {"URL": url}}):
        try:
            call_command("blobcache", *args, stdout=out, stderr=err)
        except CommandError as exc:
            code = exc.returncode
    return code, out.getvalue(), err.getvalue()


def as_standalone(result: tuple[int, str, str], program: str) -> tuple[int, str, str]:
    """The result with hints such as 'flask blobcache prune --yes' spelt 'blobcache ...'."""
    code, out, err = result
    return (
        code,
        out.replace(f"'{program} ", "'blobcache "),
        err.replace(f"'{program} ", "'blobcache "),
    )


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_same_exit_code_and_output(url: str, args: list[str]) -> None:
    """The same command gives the same exit code, stdout and stderr on all three (hints
    name the program that was run)."""
    expected = standalone(url, args)
    assert as_standalone(flask(url, args), "flask blobcache") == expected
    assert as_standalone(django(url, args), "python manage.py blobcache") == expected


def test_same_commands() -> None:
    """All three offer every command (manage.py used to lack get, put, paths, ...)."""
    for name in cli.commands:
        assert CliRunner().invoke(cli, [name, "--help"]).exit_code == 0
        app = Flask("three")
        app.config["BLOBCACHE_URL"] = "sqlite:///unused.db"
        FlaskBlobCache(app)
        assert app.test_cli_runner().invoke(args=["blobcache", name, "--help"]).exit_code == 0
        out = io.StringIO()
        call_command("blobcache", name, "--help", stdout=out)
        assert f"Usage: python manage.py blobcache {name}" in out.getvalue()
