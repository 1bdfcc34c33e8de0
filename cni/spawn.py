"""Run one plugin binary: stdin in, stdout and stderr out, a deadline.

What `subprocess.run(..., input=, capture_output=True, timeout=)` does for
`invoke.BinaryExecutor`, over `os.posix_spawn` and `poll`: `subprocess`
with the `signal`, `threading`, `selectors` and `locale` it loads costs the
`jaring` binary ~5 ms a call before it has run anything (STYLE.md #9).
"""

from __future__ import annotations

import os
import select
from time import monotonic, sleep

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from signal import SIGKILL, SIGPIPE, SIGXFSZ
else:  # the same numbers, without the enums `signal` builds at import
    from _signal import SIGKILL, SIGPIPE, SIGXFSZ

_CHUNK = 1 << 16
# Python ignores SIGPIPE (and SIGXFSZ); an ignored signal stays ignored across
# exec, so the child gets the defaults back, as `subprocess` restores them.
_DEFAULT_SIGNALS = (SIGPIPE, SIGXFSZ)


class TimedOutError(Exception):
    """The binary ran past its deadline; it was killed and reaped."""


class Finished:
    """How the binary ended: `returncode` as `subprocess` reports it
    (negative: killed by that signal), and everything it printed."""

    __slots__ = ("returncode", "stderr", "stdout")

    def __init__(self, returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def run(path: str, *, stdin: bytes, env: Mapping[str, str], timeout: float) -> Finished:
    """Execute `path` with `env`, feed it `stdin`, collect its output.

    OSError when it cannot be executed; `TimedOutError` after `timeout` seconds.
    Only its stdin, stdout and stderr are passed on (every descriptor Python
    opens is close-on-exec).
    """
    pipes: list[int] = []
    try:
        in_read, in_write = os.pipe()
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        pipes += (in_read, in_write, out_read, out_write, err_read, err_write)
        pid = os.posix_spawn(
            path,
            [path],
            env,
            # Safe when our own 0-2 are closed and pipes land there: stdin's read
            # end is taken first and dup2 onto itself clears close-on-exec; the
            # later ends are always above the slots they are dup'd onto.
            file_actions=[
                (os.POSIX_SPAWN_DUP2, in_read, 0),
                (os.POSIX_SPAWN_DUP2, out_write, 1),
                (os.POSIX_SPAWN_DUP2, err_write, 2),
            ],
            setsigdef=_DEFAULT_SIGNALS,
        )
        for fd in (in_read, out_write, err_write):  # the child's ends
            pipes.remove(fd)
            os.close(fd)
        deadline = monotonic() + timeout
        try:
            out, err = _exchange(
                in_write, out_read, err_read, data=stdin, deadline=deadline, open_fds=pipes
            )
            status = _wait(pid, deadline)
        except BaseException:
            _kill(pid)
            raise
        return Finished(os.waitstatus_to_exitcode(status), out, err)
    finally:
        for fd in pipes:
            os.close(fd)


def _exchange(
    to_child: int,
    from_out: int,
    from_err: int,
    *,
    data: bytes,
    deadline: float,
    open_fds: list[int],
) -> tuple[bytes, bytes]:
    """Write `data` and read both outputs until EOF on both, or raise TimedOutError."""
    poller = select.poll()
    chunks: dict[int, list[bytes]] = {from_out: [], from_err: []}
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    view, written = memoryview(data), 0
    if data:
        os.set_blocking(to_child, False)
        poller.register(to_child, select.POLLOUT)
    else:
        _close(to_child, open_fds)
    reading = len(chunks)
    while reading or written < len(data):
        left = deadline - monotonic()
        if left <= 0:
            raise TimedOutError
        for fd, _event in poller.poll(left * 1000):
            if fd == to_child:
                try:
                    written += os.write(fd, view[written : written + _CHUNK])
                except BlockingIOError:
                    continue
                except BrokenPipeError:  # it stopped reading: what it printed still counts
                    written = len(data)
                if written >= len(data):
                    poller.unregister(fd)
                    _close(fd, open_fds)
                continue
            chunk = os.read(fd, _CHUNK)
            if chunk:
                chunks[fd].append(chunk)
            else:
                poller.unregister(fd)
                reading -= 1
    return b"".join(chunks[from_out]), b"".join(chunks[from_err])


def _wait(pid: int, deadline: float) -> int:
    """The exit status once it exits, or TimedOutError at the deadline.

    At EOF it has closed its pipes but, two times in three, not yet exited: a
    pidfd wakes us the moment it does (a 1 ms sleep here was ~1 ms per exec).
    """
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        return status
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # Linux before 5.3 (RHEL 8's 4.18 among them)
        return _wait_polling(pid, deadline)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        left = deadline - monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            raise TimedOutError
    finally:
        os.close(pidfd)
    return os.waitpid(pid, 0)[1]


def _wait_polling(pid: int, deadline: float) -> int:
    pause = 0.0001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if monotonic() >= deadline:
            raise TimedOutError
        sleep(pause)
        pause = min(pause * 2, 0.01)


def _close(fd: int, open_fds: list[int]) -> None:
    open_fds.remove(fd)
    os.close(fd)


def _kill(pid: int) -> None:
    """Kill and reap a child that has not been reaped yet."""
    try:
        os.kill(pid, SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
