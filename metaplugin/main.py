"""The `jaring` CNI binary: what a container runtime executes.

Reads stdin once, sets up logging from the config (`logFile`, `logLevel`,
`logToStderr`; never stdout), forwards the call to the node daemon when it
answers (`forward.py`), else runs the meta-plugin itself through `skel`.
Standard library and `jaring` only: its imports are budgeted by a test.
"""

from __future__ import annotations

import sys

# `typing` and `collections.abc` cost the forwarded path milliseconds: the
# type checker alone sees them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, NoReturn


def setup_logging(stdin: bytes) -> None:
    """Log where the config says; errors to stderr when it says nothing.

    `logging` is loaded and its handlers made only when a record reaches
    the configured level (`jaring.cni.logs`): a good call at the default
    level loads none of it."""
    from jaring.cni import jsoncodec, logs

    levels = {
        "debug": logs.DEBUG,
        "verbose": logs.INFO,
        "error": logs.ERROR,
        "panic": logs.CRITICAL,
    }
    try:
        doc = jsoncodec.loads(stdin)
    except ValueError:
        doc = None
    conf: Mapping[str, Any] = doc if isinstance(doc, dict) else {}
    level = levels.get(str(conf.get("logLevel") or "error").lower(), logs.ERROR)
    log_file = conf.get("logFile")
    to_stderr = conf.get("logToStderr") is True
    logs.defer(level, lambda: _handlers(level, log_file, to_stderr=to_stderr))


def _handlers(level: int, log_file: object, *, to_stderr: bool) -> None:
    import logging

    root = logging.getLogger()
    root.setLevel(level)
    fmt = logging.Formatter("%(asctime)s jaring[%(process)d] %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = []
    if isinstance(log_file, str) and log_file:
        try:
            handlers.append(logging.FileHandler(log_file))
        except OSError as exc:
            print(f"jaring: cannot open logFile {log_file}: {exc}", file=sys.stderr)
    if to_stderr or not handlers:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)


def cni_environ() -> dict[str, str]:
    """The CNI_* variables, decoded as `os.environ` decodes them (`os` is a
    millisecond the forwarded path does without)."""
    from posix import environ

    encoding = sys.getfilesystemencoding()
    return {
        key.decode(encoding, "surrogateescape"): value.decode(encoding, "surrogateescape")
        for key, value in environ.items()
        if key.startswith(b"CNI_")
    }


def main() -> NoReturn:
    stdin = sys.stdin.buffer.read()
    environ = cni_environ()
    command = environ.get("CNI_COMMAND", "")
    why_standalone: list[str] = []
    if command and command != "VERSION":  # VERSION is answered here, never forwarded
        from .forward import forward, socket_for

        path = socket_for(stdin)
        answer = None
        if path:
            answer = forward(path, environ=environ, stdin=stdin, note=why_standalone.append)
        if answer is not None:
            sys.stdout.buffer.write(answer[1])
            leave(answer[0])
    import os

    setup_logging(stdin)
    if why_standalone:
        from jaring.cni.logs import get_logger

        get_logger("jaring.metaplugin.forward").info("%s", why_standalone[0])
    from jaring.cni import skel

    from .meta import Environment, MetaPlugin

    plugin = MetaPlugin(Environment(defer_events=True))
    code, out = skel.run(
        plugin, environ=os.environ, stdin=stdin, about="jaring multi-network meta-plugin"
    )
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    if plugin.deferred:
        post_after_answer(plugin.run_deferred)
    leave(code)


def leave(code: int) -> NoReturn:
    """Exit with `code` once stdout, stderr and the log are flushed, skipping
    the interpreter's teardown.

    The runtime waits for our exit: unwinding every module and object the
    standalone path loaded cost milliseconds per call, and nothing is left for
    it to do (the cache and IPAM files are closed, sockets need no goodbye).
    """
    from posix import _exit

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 1  # the answer did not reach the runtime: never claim success
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.shutdown()
    _exit(code)


def post_after_answer(job: Callable[[], None]) -> None:
    """Run `job` in a child that holds none of the runtime's pipes.

    The runtime waits for our exit and for EOF on stdout/stderr; the child
    closes both first, so Events (best effort by nature) cost the pod nothing.
    """
    import os

    try:
        pid = os.fork()
    except OSError:
        job()  # no fork: post them now rather than lose them
        return
    if pid:
        return
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        job()
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
