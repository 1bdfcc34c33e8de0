"""Loggers that load `logging` only when a record is let through.

The `jaring` binary logs nothing on a good call at its default level
(`error`), and `logging` with what it pulls in (traceback, string, weakref)
costs every start milliseconds. Modules on the binary's path take their
logger from here; the binary calls `defer` with its level and a setup
function. Everywhere else (daemon, tools, tests) nothing is deferred and
every record goes straight to `logging`, configured as usual.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50

_threshold = 0  # records below it are dropped unseen; 0: `logging` decides
_setup: Callable[[], None] | None = None


def defer(level: int, setup: Callable[[], None]) -> None:
    """Drop records below `level` without loading `logging`; run `setup`
    (which configures `logging`) once, before the first record that passes."""
    global _threshold, _setup
    _threshold, _setup = level, setup


def get_logger(name: str) -> Logger:
    return Logger(name)


class Logger:
    """The subset of `logging.Logger` jaring's binary path uses."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: logging.Logger | None = None

    def debug(self, msg: str, *args: object) -> None:
        if _threshold <= DEBUG:
            self._emit(DEBUG, msg, args, exc_info=False)

    def info(self, msg: str, *args: object) -> None:
        if _threshold <= INFO:
            self._emit(INFO, msg, args, exc_info=False)

    def warning(self, msg: str, *args: object) -> None:
        if _threshold <= WARNING:
            self._emit(WARNING, msg, args, exc_info=False)

    def error(self, msg: str, *args: object, exc_info: bool = False) -> None:
        if _threshold <= ERROR:
            self._emit(ERROR, msg, args, exc_info=exc_info)

    def exception(self, msg: str, *args: object) -> None:
        """An error with the traceback of the exception being handled."""
        if _threshold <= ERROR:
            self._emit(ERROR, msg, args, exc_info=True)

    def _emit(self, level: int, msg: str, args: tuple[object, ...], *, exc_info: bool) -> None:
        global _setup
        if _setup is not None:
            setup, _setup = _setup, None
            setup()
        logger = self._logger
        if logger is None:
            import logging

            logger = self._logger = logging.getLogger(self.name)
        # stacklevel 3: the record names the caller of debug()/info()/..., not this module.
        logger.log(level, msg, *args, exc_info=exc_info, stacklevel=3)
