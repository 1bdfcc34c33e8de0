"""`jaring.cni.spawn.run` does for a plugin binary what `subprocess.run` with
`input=`, `capture_output=True` and `timeout=` did: stdin in, both outputs out,
the exit code (negative for a signal), a deadline that kills and reaps."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jaring.cni import spawn


def script(tmp_path: Path, body: str, name: str = "plugin") -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_stdin_reaches_the_binary_and_both_outputs_come_back(tmp_path: Path) -> None:
    path = script(tmp_path, 'read line; echo "out:$line:$CNI_COMMAND"; echo err >&2; exit 3\n')
    done = spawn.run(path, stdin=b"hello\n", env={"CNI_COMMAND": "ADD"}, timeout=10)
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out:hello:ADD\n", b"err\n")


def test_the_environment_is_exactly_the_one_given(tmp_path: Path) -> None:
    path = script(tmp_path, "/usr/bin/env\n")
    done = spawn.run(path, stdin=b"", env={"ONLY": "this"}, timeout=10)
    names = {line.split("=")[0] for line in done.stdout.decode().splitlines()}
    assert names - {"PWD"} == {"ONLY"}  # the shell adds PWD; nothing comes from us


def test_megabytes_both_ways_do_not_deadlock(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)  # far beyond a pipe's 64 KiB, in and out at once
    done = spawn.run(script(tmp_path, "cat; cat /dev/null >&2\n"), stdin=data, env={}, timeout=30)
    assert done.returncode == 0
    assert done.stdout == data


def test_a_binary_that_never_reads_its_stdin_still_answers(tmp_path: Path) -> None:
    path = script(tmp_path, "echo done\n")
    done = spawn.run(path, stdin=b"x" * (1 << 20), env={}, timeout=10)
    assert (done.returncode, done.stdout) == (0, b"done\n")


def test_the_deadline_kills_and_reaps_the_binary(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    path = script(tmp_path, f"echo $$ > {pidfile}; exec sleep 30\n")
    start = time.monotonic()
    with pytest.raises(spawn.TimedOutError):
        spawn.run(path, stdin=b"", env={}, timeout=0.5)
    assert time.monotonic() - start < 10
    pid = int(pidfile.read_text())
    with pytest.raises(ChildProcessError):  # already reaped: no zombie left behind
        os.waitpid(pid, os.WNOHANG)


def test_a_binary_that_closes_its_outputs_but_runs_on_is_still_bounded(tmp_path: Path) -> None:
    path = script(tmp_path, "exec >&- 2>&-; sleep 30\n")
    with pytest.raises(spawn.TimedOutError):
        spawn.run(path, stdin=b"", env={}, timeout=0.5)


def test_death_by_signal_is_a_negative_code(tmp_path: Path) -> None:
    done = spawn.run(script(tmp_path, "kill -9 $$\n"), stdin=b"", env={}, timeout=10)
    assert done.returncode == -9


def test_sigpipe_is_back_to_its_default_in_the_binary(tmp_path: Path) -> None:
    # Python ignores SIGPIPE, and an ignored signal would stay ignored in the child.
    path = script(tmp_path, "grep SigIgn /proc/$$/status\n")
    done = spawn.run(path, stdin=b"", env={}, timeout=10)
    ignored = int(done.stdout.split()[-1], 16)
    assert not ignored & (1 << (13 - 1)), hex(ignored)


def test_a_file_that_cannot_be_executed_is_an_oserror_and_leaks_no_pipe(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("not a program")
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError):
        spawn.run(str(plain), stdin=b"", env={}, timeout=10)
    with pytest.raises(OSError):
        spawn.run(str(tmp_path / "missing"), stdin=b"", env={}, timeout=10)
    spawn.run(script(tmp_path, "exit 0\n"), stdin=b"x", env={}, timeout=10)
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_caller_started_with_stdio_closed_still_wires_the_binary(tmp_path: Path) -> None:
    # With 0-2 closed, pipes land there; the child's stdin/stdout must still be ours.
    plugin = script(tmp_path, "read line; echo got:$line\n")
    report = tmp_path / "report"
    code = (
        "from jaring.cni import spawn\n"
        f"done = spawn.run({plugin!r}, stdin=b'hi\\n', env={{}}, timeout=10)\n"
        f"open({str(report)!r}, 'w').write(repr((done.returncode, done.stdout)))\n"
    )
    shell = 'exec 0<&- 1>&- 2>&-; exec "$0" -c "$1"'
    subprocess.run(["/bin/sh", "-c", shell, sys.executable, code], check=True, timeout=30)
    assert report.read_text() == repr((0, b"got:hi\n"))


@pytest.mark.parametrize("pidfd", ["pidfd", "no pidfd (Linux < 5.3)"])
def test_the_exit_is_awaited_with_or_without_pidfd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pidfd: str
) -> None:
    if pidfd != "pidfd":

        def old_kernel(pid: int) -> int:
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(os, "pidfd_open", old_kernel)
    # Closes its outputs first, then exits a little later: the wait, not the EOF, ends it.
    path = script(tmp_path, "echo out; exec >&- 2>&-; sleep 0.2; exit 4\n")
    done = spawn.run(path, stdin=b"", env={}, timeout=10)
    assert (done.returncode, done.stdout) == (4, b"out\n")
    hung = script(tmp_path, "exec >&- 2>&-; sleep 30\n", name="hung")
    with pytest.raises(spawn.TimedOutError):
        spawn.run(hung, stdin=b"", env={}, timeout=0.5)
