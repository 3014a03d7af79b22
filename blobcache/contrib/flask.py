"""Flask extension: one `BlobCache` per application, configured from ``app.config``.

.. code-block:: python

    from flask import Flask
    from blobcache.contrib.flask import FlaskBlobCache

    blobcache = FlaskBlobCache()

    def create_app() -> Flask:
        app = Flask(__name__)
        app.config["BLOBCACHE_URL"] = "sqlite:////var/lib/app/blobcache.db"
        blobcache.init_app(app)
        return app

    # in a view: blobcache.cache.get(digest)
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from blobcache import BlobCache, ConfigurationError
from blobcache.contrib._settings import open_cache

if TYPE_CHECKING:
    import click

__all__ = ["EXTENSION_KEY", "FlaskBlobCache", "get_cache"]

#: The key of ``app.extensions`` that holds the application's `BlobCache`.
EXTENSION_KEY = "blobcache"


class FlaskBlobCache:
    """The blobcache extension for Flask, in the ``init_app`` pattern.

    The extension never keeps an application: each application registered with
    `init_app` gets its own `BlobCache` in ``app.extensions["blobcache"]``, so
    one extension object serves application factories and several applications
    in one process.

    Configuration keys, read once by `init_app`:

    ``BLOBCACHE_URL``
        The cache URL (``sqlite:///...`` or ``dynamodb:///TABLE?region=...``);
        unset or ``None`` means ``$BLOBCACHE_URL``, else the per-user SQLite file.
    ``BLOBCACHE_ROOT``
        A directory for relative-path mode, or ``None``.
    ``BLOBCACHE_OPTIONS``
        A dict of `blobcache.Options` fields, such as ``{"read_timeout": 2}``.

    .. versionadded:: 0.1
    """

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate ``app``'s configuration, open its cache and mount ``flask blobcache``.

        Raises:
            ConfigurationError: a ``BLOBCACHE_*`` key is wrong (the message says
                which and how to fix it), or blobcache is already registered on ``app``.
        """
        if EXTENSION_KEY in app.extensions:
            raise ConfigurationError(
                "blobcache is already registered on this Flask app; call init_app once "
                "per app and reach the cache through that extension or get_cache()"
            )
        config = app.config
        config.setdefault("BLOBCACHE_URL", None)
        config.setdefault("BLOBCACHE_ROOT", None)
        config.setdefault("BLOBCACHE_OPTIONS", {})
        app.extensions[EXTENSION_KEY] = _open_configured(app)
        app.cli.add_command(_command_group(), "blobcache")

    @property
    def cache(self) -> BlobCache:
        """The `BlobCache` of the current application (needs an application context)."""
        return get_cache()


def get_cache(app: Flask | None = None) -> BlobCache:
    """The `BlobCache` registered on ``app``, by default the current application.

    Raises:
        ConfigurationError: `FlaskBlobCache.init_app` was not called for the app.
        RuntimeError: no ``app`` was given and no application context is active.
    """
    target: Flask = app if app is not None else current_app
    cache = target.extensions.get(EXTENSION_KEY)
    if not isinstance(cache, BlobCache):
        raise ConfigurationError(
            f"blobcache is not registered on the Flask app {target.name!r}. "
            "Did you forget to call init_app?"
        )
    return cache


def _open_configured(app: Flask, root: str | None = None, **overrides: Any) -> BlobCache:
    """A new cache from ``app``'s configuration; ``root`` and ``overrides`` win over it."""
    config = app.config
    return open_cache(
        config["BLOBCACHE_URL"],
        root or config["BLOBCACHE_ROOT"],
        config["BLOBCACHE_OPTIONS"],
        names={
            "url": "app.config['BLOBCACHE_URL']",
            "root": "app.config['BLOBCACHE_ROOT']",
            "options": "app.config['BLOBCACHE_OPTIONS']",
        },
        overrides=overrides,
    )


def _command_group() -> click.Group:
    """The standalone ``blobcache`` commands, run against the current app's configuration.

    The commands are the very objects of `blobcache.cli.cli`; only the group's
    callback differs: it tells them to open the app's cache unless ``--url`` is given.
    """
    import click
    from flask.cli import with_appcontext

    from blobcache import cli as standalone

    @with_appcontext
    def callback(**params: Any) -> None:
        ctx = click.get_current_context()
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        ctx.meta[standalone.OPEN_CACHE] = functools.partial(_open_configured, app)
        ctx.invoke(standalone.cli.callback, **params)  # type: ignore[arg-type]

    return click.Group(
        "blobcache",
        commands=standalone.cli.commands,
        params=standalone.cli.params,
        callback=callback,
        help="Maintain this app's blobcache (BLOBCACHE_URL); the same commands as 'blobcache'.",
        context_settings=standalone.cli.context_settings,
    )
