"""The daemon dying never costs an address or a link (issue 6 "Reliability").

kill -9 of `jaring-node` in the middle of an ADD: the binary answers a CNI
error, and the runtime's DEL, through the standalone fallback or through a
restarted daemon, removes everything. A daemon restarted with pods running
still DELs them, from jaring's on-disk cache, and CHECKs them before that.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from ..api.cluster import Cluster
from .conftest import Host, Runtime, call, sandbox
from .test_daemon_process_serves_the_binary import (  # noqa: F401  # the fixture is shared
    NodeDaemon,
    node_fixture,
    poll,
    through,
)

pytestmark = pytest.mark.root


def slow_plugins(host: Host, runtime: Runtime, mark: Path) -> Path:
    """A CNI_PATH where `slowmacvlan` waits (long) before it is macvlan."""
    slow = host.tmp / "slowbin"
    slow.mkdir()
    for plugin in Path(runtime.cni_path).iterdir():
        (slow / plugin.name).symlink_to(plugin)
    script = slow / "slowmacvlan"
    script.write_text(
        f'#!/bin/sh\n[ "$CNI_COMMAND" = ADD ] && touch {mark} && sleep 60\n'
        f'exec {runtime.cni_path}/macvlan "$@"\n'
    )
    script.chmod(0o755)
    return slow


def released(host: Host, netns: str, cid: str) -> None:
    assert host.leases() == []
    assert host.host_veths() == []
    assert set(host.links(netns)) == {"lo"}
    cached = [p for p in host.cache_dir.rglob("*") if p.is_file() and cid in p.name]
    assert cached == []


@pytest.mark.parametrize("del_through", ["standalone", "restarted-daemon"])
def test_kill9_during_add_then_del_removes_everything(
    host: Host, runtime: Runtime, cluster: Cluster, node: NodeDaemon, del_through: str
) -> None:
    mark = host.tmp / "slow-started"
    bindir = slow_plugins(host, runtime, mark)
    cluster.nad("data", host.macvlan("data", type="slowmacvlan"))
    daemon = Runtime(host=host, conf=through(runtime, node).conf, cni_path=str(bindir))
    box = sandbox(host, cluster, "web", networks="data")
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(call(daemon, "ADD", box)))
    worker.start()
    poll(mark.exists, "the ADD to reach its second network")
    assert set(host.links(box.netns)) == {"lo", "eth0"}  # half done
    node.kill9()
    worker.join(30)
    add = result[0]
    assert not add.ok
    assert add.doc["code"] == 11, add.doc  # try again later: the runtime DELs first
    assert node.socket.exists()  # a dead daemon's socket: connect is refused
    if del_through == "restarted-daemon":
        node.start()
    delete = call(daemon, "DEL", box)
    assert delete.ok, (delete.doc, delete.stderr)
    if del_through == "restarted-daemon":
        assert node.served("DEL") == 1
    released(host, box.netns, box.cid)


def test_restarted_daemon_checks_and_dels_running_pods(
    host: Host, runtime: Runtime, cluster: Cluster, node: NodeDaemon
) -> None:
    cluster.nad("data", host.macvlan("data"))
    daemon = through(runtime, node)
    boxes = [sandbox(host, cluster, f"web{i}", networks="data") for i in range(3)]
    for box in boxes:
        add = call(daemon, "ADD", box)
        assert add.ok, add.doc
    assert len(host.leases()) == 6
    assert node.terminate() == 0
    node.start()
    for box in boxes:
        check = call(daemon, "CHECK", box)
        assert check.ok, (check.doc, node.log.read_text()[-2000:])
        assert set(host.links(box.netns)) == {"lo", "eth0", "net1"}
    for box in boxes:
        delete = call(daemon, "DEL", box)
        assert delete.ok, delete.doc
    assert node.served("DEL") == 3
    assert node.served("CHECK") == 3
    for box in boxes:
        released(host, box.netns, box.cid)
