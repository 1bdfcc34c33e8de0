"""A non-root user cannot use the daemon (issue 6): the socket is born 0600,
and even on a socket opened to everyone the daemon checks the peer's uid
(SO_PEERCRED) and never says READY, so nothing is run for that user."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from jaring.metaplugin import forward

from .test_daemon_process_serves_the_binary import JARING_NODE, NodeDaemon

pytestmark = pytest.mark.root

NOBODY = 65534


@pytest.fixture(name="public_node")
def public_node_fixture() -> Iterator[NodeDaemon]:
    """A daemon whose socket directory other users can traverse (pytest's tmp is 0700)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: switches to another user")
    if not JARING_NODE.exists():
        pytest.skip(f"{JARING_NODE} is not installed (make venv)")
    tmp = Path(tempfile.mkdtemp(prefix="jaring-t-", dir="/run"))
    tmp.chmod(0o755)
    made = NodeDaemon(tmp)
    made.socket = tmp / "jaring.sock"
    try:
        made.start()
        yield made
    finally:
        made.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def as_nobody(path: Path) -> dict[str, object]:
    """Connect and forward an ADD as uid 65534 in a forked child; what it saw."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, try, report, never return into pytest
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            seen: dict[str, object] = {"uid": os.getuid()}
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
                seen["connect"] = "ok"
            except OSError as exc:
                seen["connect"] = errno.errorcode.get(exc.errno or 0, str(exc))
            finally:
                probe.close()
            env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "x", "CNI_IFNAME": "eth0"}
            seen["forward"] = forward.forward(str(path), environ=env, stdin=b"{}")
            os.write(write, json.dumps(seen).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    doc = json.loads(data)
    assert isinstance(doc, dict) and doc["uid"] == NOBODY, doc
    return doc


def refused(node: NodeDaemon) -> float:
    for line in node.get("/metrics")[1].splitlines():
        if line.startswith("jaring_refused_connections_total"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_socket_is_root_only(public_node: NodeDaemon) -> None:
    info = public_node.socket.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == 0
    seen = as_nobody(public_node.socket)
    assert seen["connect"] == "EACCES"
    assert seen["forward"] is None  # the binary would run standalone (and fail as nobody)


def test_daemon_refuses_a_non_root_peer_even_on_an_open_socket(public_node: NodeDaemon) -> None:
    public_node.socket.chmod(0o666)
    seen = as_nobody(public_node.socket)
    assert seen["connect"] == "ok"
    assert seen["forward"] is None  # no READY: nothing was sent, nothing ran
    assert refused(public_node) == 2  # the probe and the forward
    assert public_node.served("ADD") == 0
