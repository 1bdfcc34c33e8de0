"""The installed `jaring` binary forwards to a daemon that answers: it prints
the daemon's stdout and exits with its code, without importing the meta-plugin
(or anything outside the standard library); VERSION is answered locally; an
empty `daemonSocket` never touches the socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from jaring.metaplugin import forward

from .test_import_budget import FORBIDDEN, _loaded_modules

CANNED = b'{"cniVersion":"1.0.0","ips":[{"address":"10.9.9.9/24"}]}\n'


class Daemon:
    def __init__(self, path: Path, code: int) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.code = code
        self.requests: list[dict[str, object]] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(forward.READY)
                header, _ = forward.split_frame(forward.read_all(conn))
                self.requests.append(header)
                conn.sendall(forward.encode_answer(self.code, CANNED))

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(5)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    made = Daemon(tmp_path / "d.sock", code=0)
    yield made
    made.close()


def binary() -> Path:
    path = Path(sys.executable).parent / "jaring"
    if not path.exists():
        pytest.skip("the jaring console script is not installed next to this interpreter")
    return path


def run(
    command: str, conf: dict[str, object], *, importtime: bool = False
) -> tuple[int, bytes, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "c0ffee",
        "CNI_NETNS": "/var/run/netns/nothing",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/nonexistent",
    }
    argv = [sys.executable, *(["-X", "importtime"] if importtime else []), str(binary())]
    done = subprocess.run(
        argv, input=json.dumps(conf).encode(), env=env, capture_output=True, timeout=60, check=False
    )
    return done.returncode, done.stdout, done.stderr.decode()


def conf(sock: str) -> dict[str, object]:
    return {
        "cniVersion": "1.0.0",
        "name": "jaring",
        "type": "jaring",
        "daemonSocket": sock,
        "delegates": [{"cniVersion": "1.0.0", "name": "c", "type": "nothing"}],
    }


def test_forwarded_add_prints_the_daemons_answer_with_stdlib_only(
    daemon: Daemon, tmp_path: Path
) -> None:
    code, out, err = run("ADD", conf(str(tmp_path / "d.sock")), importtime=True)
    assert code == 0, err
    assert out == CANNED
    assert daemon.requests and daemon.requests[0]["env"]["CNI_COMMAND"] == "ADD"  # type: ignore[index]  # JSON
    modules = _loaded_modules(err)
    assert "jaring.metaplugin.forward" in modules
    assert "jaring.metaplugin.meta" not in modules  # the daemon does the work
    tops = {name.split(".")[0] for name in modules}
    assert not tops & set(FORBIDDEN)
    assert {t for t in tops if t not in sys.stdlib_module_names and not t.startswith("_")} <= {
        "jaring"
    }


def test_the_daemons_exit_code_is_the_binarys(tmp_path: Path) -> None:
    failing = Daemon(tmp_path / "f.sock", code=1)
    try:
        code, out, _ = run("DEL", conf(str(tmp_path / "f.sock")))
    finally:
        failing.close()
    assert (code, out) == (1, CANNED)


def test_version_and_an_empty_socket_setting_stay_local(daemon: Daemon, tmp_path: Path) -> None:
    code, out, _ = run("VERSION", conf(str(tmp_path / "d.sock")))
    assert code == 0 and "supportedVersions" in json.loads(out)
    code, out, _ = run("ADD", conf(""))
    assert code != 0  # standalone: the delegate "nothing" is not on CNI_PATH
    assert "nothing" in json.loads(out)["msg"] + json.loads(out).get("details", "")
    assert daemon.requests == []
