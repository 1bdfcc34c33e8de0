"""The `jaring` shim jaring-install writes onto a node, run for real.

The tree is this interpreter and a site-packages whose `jaring` links to this
checkout, as the image's tree has it installed. Forwarding to a daemon loads
nothing beyond the interpreter's own start-up and two small `jaring` modules
(no `json`, `socket`, `logging`, `typing`); with no daemon the same shim runs
standalone and attaches the pod.
"""

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
from jaring.operator import install

from .test_import_budget import _loaded_modules, fake_pod

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cni", "metaplugin", "delegates", "operator")
# What the forwarded call may import after the interpreter's own start-up.
FORWARD_PATH = {"jaring", "jaring.metaplugin", "jaring.metaplugin.main"}
FORWARD_PATH |= {"jaring.metaplugin.forward", "_socket", "_json", "__future__"}
FORWARD_PATH |= {"jaring.cni", "jaring.cni.jsoncodec"}  # the config's daemonSocket, read on _json
CANNED = b'{"cniVersion":"1.0.0","ips":[{"address":"10.9.9.9/24"}]}\n'


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    """A runtime tree (bin/python3 + lib/pythonX.Y/site-packages/jaring) and its shim."""
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "python3").symlink_to(sys.executable)
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    package = tree / "lib" / version / "site-packages" / "jaring"
    package.mkdir(parents=True)
    for name in PACKAGES:
        (package / name).symlink_to(ROOT / name)
    path = tmp_path / "jaring"
    path.write_bytes(install.shim_script(tree))
    path.chmod(0o755)
    return path


class Daemon:
    def __init__(self, path: Path) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.requests: list[tuple[dict[str, object], bytes]] = []
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
                self.requests.append(forward.split_frame(forward.read_all(conn)))
                conn.sendall(forward.encode_answer(0, CANNED))

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(5)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    made = Daemon(tmp_path / "d.sock")
    yield made
    made.close()


def run(
    shim: Path, env: dict[str, str], stdin: bytes, *, python_args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[bytes]:
    argv = [str(shim)]
    if python_args:  # the shim's own interpreter line, with extra flags in front
        argv = [sys.executable, *python_args, "-IS", str(shim)]
    full = {"PATH": os.environ.get("PATH", ""), **env}
    return subprocess.run(argv, input=stdin, env=full, capture_output=True, timeout=60, check=False)


def startup_modules() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-IS", "-c", "pass"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return _loaded_modules(done.stderr.decode())


def test_values_needing_json_escapes_are_forwarded_exactly(
    shim: Path, daemon: Daemon, tmp_path: Path
) -> None:
    config, env = fake_pod(tmp_path)
    config["daemonSocket"] = str(tmp_path / "d.sock")
    env["CNI_COMMAND"] = "ADD"
    env["CNI_ARGS"] += ';NOTE="quoted" \\ \u00e9'  # needs JSON escapes: still sent exactly
    done = run(shim, env, json.dumps(config).encode())
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout == CANNED
    header, body = daemon.requests[0]
    assert header == {"env": {k: v for k, v in env.items() if k in forward.FORWARDED_ENV}}
    assert json.loads(body) == config


def test_forwarding_imports_only_the_forward_path(
    shim: Path, daemon: Daemon, tmp_path: Path
) -> None:
    config, env = fake_pod(tmp_path)
    config["daemonSocket"] = str(tmp_path / "d.sock")
    env["CNI_COMMAND"] = "DEL"
    done = run(shim, env, json.dumps(config).encode(), python_args=("-X", "importtime"))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    loaded = _loaded_modules(done.stderr.decode()) - startup_modules()
    assert "jaring.metaplugin.forward" in loaded
    assert loaded <= FORWARD_PATH, sorted(loaded - FORWARD_PATH)
    assert daemon.requests[0][0]["env"]["CNI_COMMAND"] == "DEL"  # type: ignore[index]  # JSON


def test_without_a_daemon_the_shim_attaches_the_pod_standalone(shim: Path, tmp_path: Path) -> None:
    config, env = fake_pod(tmp_path)
    config["daemonSocket"] = str(tmp_path / "absent.sock")
    stdin = json.dumps(config).encode()
    done = run(shim, {**env, "CNI_COMMAND": "ADD"}, stdin)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["ips"][0]["address"] == "10.1.0.5/24"
    status = json.loads((tmp_path / "manifests" / ".status" / "default_web.json").read_text())
    assert [entry["interface"] for entry in status] == ["eth0", "net1"]
    done = run(shim, {**env, "CNI_COMMAND": "DEL"}, stdin)
    assert done.returncode == 0, done.stdout + done.stderr
