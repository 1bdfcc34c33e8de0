"""`jaring-node` as deployed: a process the `jaring` binary forwards to (issue 6).

`NodeDaemon` runs the installed console script on a private socket and HTTP
port; the other tests/netns/test_daemon_* files use it. Proven here: ADD and
DEL forwarded through the daemon give the runtime what standalone gives and
leave nothing behind, the daemon's endpoints answer, and SIGTERM finishes
the request in flight before the socket goes away.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..api.cluster import Cluster
from .conftest import Host, Runtime, call, sandbox

pytestmark = pytest.mark.root

JARING_NODE = Path(sys.executable).parent / "jaring-node"
NODE = "jaring-test-node"


def poll(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@dataclass
class NodeDaemon:
    """One `jaring-node` process in its own session (kill -9 takes its children too)."""

    tmp: Path
    kubeconfig: str = ""
    socket: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = None
    http: str = ""
    starts: int = 0

    def __post_init__(self) -> None:
        self.socket = self.tmp / "run" / "jaring.sock"

    @property
    def log(self) -> Path:
        return self.tmp / f"node-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        argv = [str(JARING_NODE), "--socket", str(self.socket), "--http", "127.0.0.1:0"]
        argv += ["--node-name", NODE, "--log-level", "debug"]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, stderr=log, stdout=log, start_new_session=True, env=dict(os.environ)
            )
        poll(self._serving, f"jaring-node to serve ({self.log})")
        poll(lambda: self.get("/readyz")[0] == 200, "readyz")

    def _serving(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"jaring-node exited: {self.log.read_text()}")
        for line in self.log.read_text().splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("msg") == "serving":
                self.http = doc["http"]
                return True
        return False

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{self.http}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def served(self, verb: str) -> float:
        """Requests of a verb the daemon answered (from /metrics)."""
        total = 0.0
        for line in self.get("/metrics")[1].splitlines():
            if line.startswith("jaring_requests_total{") and f'verb="{verb}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill9()


@pytest.fixture(name="node")
def node_fixture(host: Host, cluster: Cluster) -> Iterator[NodeDaemon]:
    if not JARING_NODE.exists():
        pytest.skip(f"{JARING_NODE} is not installed (make venv)")
    made = NodeDaemon(host.tmp / "node", kubeconfig=str(cluster.kubeconfig))
    made.tmp.mkdir(parents=True)
    try:
        made.start()
        yield made
    finally:
        made.cleanup()


def through(runtime: Runtime, node: NodeDaemon) -> Runtime:
    """The same runtime, with the config pointing the binary at the daemon."""
    return Runtime(host=runtime.host, conf=runtime.conf | {"daemonSocket": str(node.socket)})


def links_and_status(host: Host, cluster: Cluster, netns: str, pod: str) -> Any:
    links = {name: link.addrs for name, link in host.links(netns).items()}
    status = json.loads(cluster.read_pod(pod)["metadata"]["annotations"][STATUS])
    return links, [(e["interface"], e["ips"]) for e in status]


STATUS = "k8s.v1.cni.cncf.io/network-status"


def test_add_and_del_through_the_daemon(
    host: Host, runtime: Runtime, cluster: Cluster, node: NodeDaemon
) -> None:
    cluster.nad("data", host.macvlan("data"))
    daemon = through(runtime, node)
    box = sandbox(host, cluster, "web", networks="data")
    add = call(daemon, "ADD", box)
    assert add.ok, (add.doc, add.stderr, node.log.read_text()[-2000:])
    assert node.served("ADD") == 1
    assert [i["name"] for i in add.doc["interfaces"] if i.get("sandbox")] == ["eth0"]
    assert set(host.links(box.netns)) == {"lo", "eth0", "net1"}
    assert len(host.leases()) == 2
    status = json.loads(cluster.read_pod("web")["metadata"]["annotations"][STATUS])
    assert [e["interface"] for e in status] == ["eth0", "net1"]
    check = call(daemon, "CHECK", box)
    assert check.ok, (check.doc, node.log.read_text()[-2000:])
    delete = call(daemon, "DEL", box)
    assert delete.ok, (delete.doc, node.log.read_text()[-2000:])
    assert node.served("DEL") == 1
    assert host.leases() == []
    assert host.host_veths() == []
    assert set(host.links(box.netns)) == {"lo"}


def test_the_binary_runs_standalone_when_the_daemon_is_gone(
    host: Host, runtime: Runtime, cluster: Cluster, node: NodeDaemon
) -> None:
    cluster.nad("data", host.macvlan("data"))
    daemon = through(runtime, node)
    assert node.terminate() == 0
    assert not node.socket.exists()
    box = sandbox(host, cluster, "web", networks="data")
    add = call(daemon, "ADD", box)
    assert add.ok, (add.doc, add.stderr)
    assert set(host.links(box.netns)) == {"lo", "eth0", "net1"}
    delete = call(daemon, "DEL", box)
    assert delete.ok, (delete.doc, delete.stderr)
    assert host.leases() == []


def test_endpoints_answer(node: NodeDaemon) -> None:
    assert node.get("/healthz") == (200, "ok\n")
    assert node.get("/readyz") == (200, "ok\n")
    code, text = node.get("/metrics")
    assert code == 200
    assert "# TYPE jaring_cache_objects gauge" in text
    assert "# TYPE jaring_request_duration_seconds histogram" in text


def test_sigterm_finishes_the_request_in_flight(
    host: Host, runtime: Runtime, cluster: Cluster, node: NodeDaemon
) -> None:
    slow = host.tmp / "slowbin"
    slow.mkdir()
    for plugin in Path(runtime.cni_path).iterdir():
        (slow / plugin.name).symlink_to(plugin)
    mark = host.tmp / "slow-started"
    script = slow / "slowmacvlan"
    script.write_text(
        f'#!/bin/sh\n[ "$CNI_COMMAND" = ADD ] && touch {mark} && sleep 1\n'
        f'exec {runtime.cni_path}/macvlan "$@"\n'
    )
    script.chmod(0o755)
    cluster.nad("data", host.macvlan("data", type="slowmacvlan"))
    daemon = Runtime(host=host, conf=through(runtime, node).conf, cni_path=str(slow))
    box = sandbox(host, cluster, "web", networks="data")
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(call(daemon, "ADD", box)))
    worker.start()
    poll(mark.exists, "the slow delegate to start")
    assert node.terminate() == 0
    worker.join(30)
    assert result and result[0].ok, (result, node.log.read_text()[-2000:])
    assert set(host.links(box.netns)) == {"lo", "eth0", "net1"}
    delete = call(daemon, "DEL", box)  # standalone now: the socket is gone
    assert delete.ok, delete.doc
    assert host.leases() == []
