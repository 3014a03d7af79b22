"""Flask extension: `BlobCache`\\ s per application, configured from ``app.config``.

.. code-block:: python

    from flask import Flask
    from blobcache.contrib.flask import FlaskBlobCache

    blobcache = FlaskBlobCache()

    def create_app() -> Flask:
        app = Flask(__name__)
        app.config["BLOBCACHE_URL"] = "sqlite:////var/lib/app/blobcache.db"
        blobcache.init_app(app)
        return app

    # in a view: blobcache.cache.get(digest), or blobcache.get_or_404(digest)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, cast

from flask import Flask, abort, current_app

from blobcache import AsyncBlobCache, BlobCache, CacheMiss, ConfigurationError, InvalidDigest
from blobcache.contrib._config import UnknownSettingWarning, closest, open_cache, warn_unknown

if TYPE_CHECKING:
    from blobcache.cli import HostedGroup

__all__ = [
    "BINDS_KEY",
    "EXTENSION_KEY",
    "SETTINGS",
    "FlaskBlobCache",
    "UnknownSettingWarning",
    "get_cache",
]

#: The key of ``app.extensions`` that holds the application's default `BlobCache`.
EXTENSION_KEY = "blobcache"
#: The key of ``app.extensions`` that holds the binds: a dict of name to `BlobCache`.
BINDS_KEY = "blobcache.binds"
#: Every configuration key the extension reads; any other ``BLOBCACHE_*`` key is warned about.
SETTINGS = ("BLOBCACHE_URL", "BLOBCACHE_ROOT", "BLOBCACHE_OPTIONS", "BLOBCACHE_BINDS")
_BIND_KEYS = ("URL", "ROOT", "OPTIONS")


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
    ``BLOBCACHE_BINDS``
        More caches, by name, as Flask-SQLAlchemy's ``SQLALCHEMY_BINDS``: each a
        URL, or a dict with the keys ``URL``, ``ROOT`` and ``OPTIONS``.

    .. versionadded:: 0.1
    """

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate ``app``'s configuration, open its caches and mount ``flask blobcache``.

        Everything that can be checked without a request is checked here, so a
        mistake stops the app at start-up: a wrong type or option, a SQLite file in
        a directory that does not exist, a DynamoDB URL with no region, a root that
        is not a directory. An unknown ``BLOBCACHE_*`` key (``BLOBCACHE_URI``) is
        warned about (`UnknownSettingWarning`), naming the closest valid key.

        Each request's end (``teardown_appcontext``) releases the connection its
        thread holds (`BlobCache.release`).

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
        warn_unknown(
            (key for key in config if key.startswith("BLOBCACHE_")), SETTINGS, "app.config"
        )
        config.setdefault("BLOBCACHE_URL", None)
        config.setdefault("BLOBCACHE_ROOT", None)
        config.setdefault("BLOBCACHE_OPTIONS", {})
        config.setdefault("BLOBCACHE_BINDS", {})
        binds = {name: _open_configured(app, name, check=True) for name in _bind_names(app)}
        app.extensions[EXTENSION_KEY] = _open_configured(app, None, check=True)
        app.extensions[BINDS_KEY] = binds
        app.teardown_appcontext(_release)
        app.cli.add_command(_command_group(), "blobcache")

    @property
    def cache(self) -> BlobCache:
        """The `BlobCache` of the current application (needs an application context)."""
        return get_cache()

    @property
    def async_cache(self) -> AsyncBlobCache:
        """The current application's cache for ``async def`` views: calls run off the loop."""
        return AsyncBlobCache(get_cache())

    @property
    def binds(self) -> Mapping[str, BlobCache]:
        """The current application's ``BLOBCACHE_BINDS`` caches, by name."""
        get_cache()  # the same error as cache for an app without init_app
        binds: Mapping[str, BlobCache] = current_app.extensions[BINDS_KEY]
        return binds

    def get_or_404(self, digest: str, *, bind: str | None = None) -> str:
        """The original path of ``digest``, or abort with 404 (400 for a malformed digest).

        Like Flask-SQLAlchemy's ``get_or_404``: a view needs no ``try`` for the
        common case, and a miss is a 404 rather than a 500.
        """
        try:
            return get_cache(bind=bind).get(digest)
        except (CacheMiss, InvalidDigest) as exc:
            _abort_for(exc)

    def get_all_or_404(self, digest: str, *, bind: str | None = None) -> list[str]:
        """Every path of ``digest`` (original first), or abort with 404 (400: malformed)."""
        try:
            return get_cache(bind=bind).get_all(digest)
        except (CacheMiss, InvalidDigest) as exc:
            _abort_for(exc)


def get_cache(app: Flask | None = None, *, bind: str | None = None) -> BlobCache:
    """The `BlobCache` registered on ``app`` (default: the current app), or one of its binds.

    Raises:
        ConfigurationError: `FlaskBlobCache.init_app` was not called for the app, or
            ``bind`` is not in its ``BLOBCACHE_BINDS``.
        RuntimeError: no ``app`` was given and no application context is active.
    """
    target: Flask = app if app is not None else current_app
    cache = target.extensions.get(EXTENSION_KEY)
    if not isinstance(cache, BlobCache):
        raise ConfigurationError(
            f"blobcache is not registered on the Flask app {target.name!r}. "
            "Did you forget to call init_app?"
        )
    if bind is None:
        return cache
    binds: Mapping[str, BlobCache] = target.extensions[BINDS_KEY]
    if bind not in binds:
        raise ConfigurationError(
            f"app.config['BLOBCACHE_BINDS'] has no cache {bind!r}{closest(bind, binds)}; "
            f"its binds are {', '.join(map(repr, binds)) or 'none'}"
        )
    return binds[bind]


def _abort_for(error: CacheMiss | InvalidDigest) -> NoReturn:
    abort(404 if isinstance(error, CacheMiss) else 400, description=str(error))


def _release(exc: BaseException | None = None) -> None:
    """teardown_appcontext: give back the connections this thread took during the request."""
    app = current_app
    for cache in (app.extensions[EXTENSION_KEY], *app.extensions[BINDS_KEY].values()):
        cache.release()


def _bind_names(app: Flask) -> list[str]:
    binds = app.config["BLOBCACHE_BINDS"]
    if not isinstance(binds, Mapping) or not all(isinstance(name, str) for name in binds):
        raise ConfigurationError(
            "app.config['BLOBCACHE_BINDS'] must be a dict of names to a URL or a dict "
            f"with the keys {', '.join(_BIND_KEYS)}, not {type(binds).__name__}"
        )
    return list(binds)


def _open_configured(
    app: Flask, bind: str | None, root: str | None = None, *, check: bool = False, **overrides: Any
) -> BlobCache:
    """A new cache from ``app``'s configuration; ``root`` and ``overrides`` win over it."""
    config = app.config
    if bind is None:
        url, configured_root, options = (
            config["BLOBCACHE_URL"],
            config["BLOBCACHE_ROOT"],
            config["BLOBCACHE_OPTIONS"],
        )
        names = {key.lower(): f"app.config['BLOBCACHE_{key}']" for key in _BIND_KEYS}
    else:
        where = f"app.config['BLOBCACHE_BINDS'][{bind!r}]"
        values = config["BLOBCACHE_BINDS"].get(bind)
        if values is None:
            raise ConfigurationError(
                f"app.config['BLOBCACHE_BINDS'] has no cache {bind!r}"
                f"{closest(bind, config['BLOBCACHE_BINDS'])}"
            )
        if isinstance(values, str):
            values = {"URL": values}
        if not isinstance(values, Mapping):
            raise ConfigurationError(
                f"{where} must be a URL or a dict with the keys {', '.join(_BIND_KEYS)}, "
                f"not {type(values).__name__}"
            )
        unknown = sorted(map(str, set(values) - set(_BIND_KEYS)))
        if unknown:
            raise ConfigurationError(
                f"{where} has the unknown key {unknown[0]!r}{closest(unknown[0], _BIND_KEYS)}; "
                f"the keys are {', '.join(_BIND_KEYS)}"
            )
        url, configured_root, options = values.get("URL"), values.get("ROOT"), values.get("OPTIONS")
        names = {key.lower(): f"{where}[{key!r}]" for key in _BIND_KEYS}
    return open_cache(
        url, root or configured_root, options, names=names, overrides=overrides, check=check
    )


def _command_group() -> HostedGroup:
    """The standalone ``blobcache`` commands, run on the current app's caches."""
    from flask.cli import with_appcontext

    from blobcache import cli as standalone

    def open_for_app(name: str | None, root: str | None, **options: Any) -> BlobCache:
        return _open_configured(current_app, name, root, **options)

    return standalone.HostedGroup(
        program="flask blobcache",
        open_cache=open_for_app,
        url_default="the app's BLOBCACHE_URL (or its bind's URL with --cache)",
        cache_help="A name of the app's BLOBCACHE_BINDS (default: BLOBCACHE_URL's cache).",
        help="Maintain this app's blobcache (BLOBCACHE_URL, or --cache BIND): "
        "the same commands as 'blobcache'.",
        callback=with_appcontext(cast(Callable[..., Any], standalone.cli.callback)),
    )
