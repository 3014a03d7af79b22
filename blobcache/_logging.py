"""structlog loggers that always route to stdlib ``blobcache.*`` loggers.

The library never configures logging or structlog. Each event reaches the
stdlib logger as a dict (so structlog's ``ProcessorFormatter`` sees every
field) that renders as ``event key=value ...`` for plain formatters.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog


class _Event(dict[str, Any]):
    """An event dict whose ``str()`` reads well in a plain ``logging.Formatter``."""

    def __str__(self) -> str:
        fields = " ".join(f"{key}={value!r}" for key, value in self.items() if key != "event")
        return f"{self.get('event')} {fields}".rstrip()


def _to_stdlib(
    logger: logging.Logger, method_name: str, event_dict: structlog.typing.EventDict
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    # The same shape as ProcessorFormatter.wrap_for_formatter, so an application
    # that renders through ProcessorFormatter gets the fields, not a string.
    return (_Event(event_dict),), {"extra": {"_logger": logger, "_name": method_name}}


class _LevelCheckedLogger(structlog.stdlib.BoundLogger):
    """Skips the processor chain when the stdlib logger would drop the event anyway.

    ``filter_by_level`` drops by raising, which costs more per call than a cache read
    on SQLite; ``isEnabledFor`` is cached by the logging module and answers at once.
    """

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.DEBUG):
            return None
        return super().debug(event, *args, **kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.INFO):
            return None
        return super().info(event, *args, **kw)


def get_logger(name: str, **context: Any) -> structlog.stdlib.BoundLogger:
    """A bound logger for stdlib logger ``name``, independent of structlog's global config."""
    logger: structlog.stdlib.BoundLogger = structlog.wrap_logger(
        logging.getLogger(name),
        processors=[structlog.stdlib.filter_by_level, _to_stdlib],
        wrapper_class=_LevelCheckedLogger,
        context_class=dict,
        cache_logger_on_first_use=True,
    ).bind(**context)
    return logger
