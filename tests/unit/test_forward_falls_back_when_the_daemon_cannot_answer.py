"""The `jaring` binary's client never makes a pod wait on the daemon (LESSONS #6):
missing, refused or silent socket -> standalone; a daemon that dies under a
DEL -> standalone; under an ADD -> CNI error 11 so the runtime DELs first.
The request carries only the CNI variables and the stdin bytes as they are."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jaring.metaplugin import forward

ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "c0ffee",
    "CNI_NETNS": "/var/run/netns/x",
    "CNI_IFNAME": "eth0",
    "CNI_ARGS": "K8S_POD_NAME=web",
    "CNI_PATH": "/opt/cni/bin",
    "HOME": "/root",
    "SECRET": "not for the daemon",
}
STDIN = b'{"cniVersion":"0.4.0","name":"jaring","type":"jaring"}\xff'


class FakeDaemon:
    """A unix socket server running `behave(conn)` for each connection on a thread."""

    def __init__(self, path: Path, behave: Callable[[socket.socket], None]) -> None:
        self.path = path
        self.behave = behave
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                self.behave(conn)

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(5)


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "jaring.sock"


@pytest.fixture
def daemons() -> Iterator[list[FakeDaemon]]:
    made: list[FakeDaemon] = []
    yield made
    for daemon in made:
        daemon.close()


def test_missing_socket_means_standalone(sock_path: Path) -> None:
    assert forward.forward(str(sock_path), environ=ENV, stdin=STDIN) is None


def test_refused_socket_means_standalone(sock_path: Path) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))  # bound, never listening: what a killed daemon leaves
    try:
        assert forward.forward(str(sock_path), environ=ENV, stdin=STDIN) is None
    finally:
        dead.close()


def test_a_daemon_that_never_says_ready_is_given_up_quickly(
    sock_path: Path, daemons: list[FakeDaemon]
) -> None:
    release = threading.Event()
    daemons.append(FakeDaemon(sock_path, lambda conn: release.wait(10) and None))
    start = time.monotonic()
    try:
        answer = forward.forward(str(sock_path), environ=ENV, stdin=STDIN, ready_timeout=0.2)
    finally:
        release.set()
    assert answer is None
    assert time.monotonic() - start < 2


def test_answer_and_request_shape(sock_path: Path, daemons: list[FakeDaemon]) -> None:
    def behave(conn: socket.socket) -> None:
        conn.sendall(forward.READY)
        daemon.received.append(forward.read_all(conn))
        conn.sendall(forward.encode_answer(0, b'{"cniVersion":"0.4.0"}\n'))

    daemon = FakeDaemon(sock_path, behave)
    daemons.append(daemon)
    answer = forward.forward(str(sock_path), environ=ENV, stdin=STDIN)
    assert answer == (0, b'{"cniVersion":"0.4.0"}\n')
    header, body = forward.split_frame(daemon.received[0])
    assert header == {"env": {k: v for k, v in ENV.items() if k.startswith("CNI_")}}
    assert body == STDIN  # bytes as they came, even not UTF-8


def _dies_after_reading(conn: socket.socket) -> None:
    conn.sendall(forward.READY)
    forward.read_all(conn)  # then close without an answer: killed mid-operation


def test_daemon_dying_under_add_is_error_11(sock_path: Path, daemons: list[FakeDaemon]) -> None:
    daemons.append(FakeDaemon(sock_path, _dies_after_reading))
    answer = forward.forward(str(sock_path), environ=ENV, stdin=STDIN.rstrip(b"\xff"))
    assert answer is not None
    code, out = answer
    assert code == 1
    doc = json.loads(out)
    assert doc["code"] == 11
    assert doc["cniVersion"] == "0.4.0"  # the config's version
    assert "DEL" in doc["details"]


@pytest.mark.parametrize("command", ["DEL", "CHECK", "STATUS", "GC"])
def test_daemon_dying_under_a_repeatable_verb_means_standalone(
    sock_path: Path, daemons: list[FakeDaemon], command: str
) -> None:
    daemons.append(FakeDaemon(sock_path, _dies_after_reading))
    env = ENV | {"CNI_COMMAND": command}
    assert forward.forward(str(sock_path), environ=env, stdin=STDIN) is None


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        (b'{"cniVersion":"1.0.0"}', forward.DEFAULT_SOCKET),
        (b'{"daemonSocket":"/tmp/x.sock"}', "/tmp/x.sock"),
        (b'{"daemonSocket":""}', ""),
        (b'{"daemonSocket":null}', forward.DEFAULT_SOCKET),
        (b'{"daemonSocket":7}', ""),
        (b'{"daemon\\u0053ocket":"/tmp/escaped.sock"}', "/tmp/escaped.sock"),
        ('{"daemonSocket":"/tmp/wide.sock"}'.encode("utf-16"), "/tmp/wide.sock"),
        (b'{"plugins":[{"daemonSocket":"/tmp/inner.sock"}]}', forward.DEFAULT_SOCKET),
        (b"not json, daemonSocket", ""),
        (b'["daemonSocket"]', ""),
        # Naming no socket, the default: the daemon answers the decode error
        # exactly as standalone would.
        (b"not json", forward.DEFAULT_SOCKET),
        (b"[]", forward.DEFAULT_SOCKET),
    ],
)
def test_socket_from_config(stdin: bytes, expected: str) -> None:
    assert forward.socket_for(stdin) == expected


def test_a_config_naming_no_socket_is_forwarded_without_a_json_parser() -> None:
    probe = (
        "import sys\n"
        "from jaring.metaplugin import forward\n"
        'assert forward.socket_for(b\'{"cniVersion":"1.0.0","name":"k8s"}\')'
        " == forward.DEFAULT_SOCKET\n"
        "print(sorted(m for m in sys.modules if 'json' in m))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_default_socket_matches_the_config_default() -> None:
    from jaring.metaplugin.config import DEFAULT_SOCKET

    assert forward.DEFAULT_SOCKET == DEFAULT_SOCKET
