"""Many ADD/DEL cycles of 8 pods at once through the daemon (issue 6): no
address is ever held twice, and afterwards no lease, link, cache entry,
file descriptor or thread is left over. 100 cycles here; 1,000 when slow
tests run (`-m slow`)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ..api.cluster import Cluster
from .conftest import Host, Runtime, Sandbox, call, sandbox
from .test_daemon_process_serves_the_binary import (  # noqa: F401  # the fixture is shared
    NodeDaemon,
    node_fixture,
    through,
)

pytestmark = pytest.mark.root

PODS = 8


def usage(pid: int) -> tuple[int, int]:
    """(open file descriptors, threads) of a process."""
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return fds, int(line.split()[1])
    raise AssertionError("no Threads line")


def run_cycles(
    host: Host, runtime: Runtime, cluster: Cluster, node: NodeDaemon, cycles: int
) -> None:
    cluster.nad("data", host.macvlan("data"))
    daemon = through(runtime, node)
    boxes = [sandbox(host, cluster, f"web{i}", networks="data") for i in range(PODS)]
    # Warm once so the leak baseline counts the daemon's steady state.
    warm = call(daemon, "ADD", boxes[0])
    assert warm.ok, warm.doc
    assert call(daemon, "DEL", boxes[0]).ok
    assert node.proc is not None
    before = usage(node.proc.pid)
    live: dict[str, str] = {}
    lock = threading.Lock()
    done = [0]

    def worker(box: Sandbox) -> None:
        while True:
            with lock:
                if done[0] >= cycles:
                    return
                done[0] += 1
            # Each cycle is a new sandbox container in the same pod netns.
            cycle = Sandbox(box.netns, uuid.uuid4().hex, box.namespace, box.pod, box.uid)
            add = call(daemon, "ADD", cycle)
            assert add.ok, (add.doc, add.stderr)
            addrs = [a for link in host.links(box.netns).values() for a in link.addrs]
            assert len(addrs) == 2, addrs  # eth0 and net1 (lo has only 127.0.0.1)
            with lock:
                for addr in addrs:
                    assert addr not in live, f"{addr} held by {live.get(addr)} and {box.pod}"
                    live[addr] = box.pod
            with lock:
                for addr in addrs:
                    del live[addr]
            delete = call(daemon, "DEL", cycle)
            assert delete.ok, (delete.doc, delete.stderr)

    with ThreadPoolExecutor(PODS) as pool:
        for future in [pool.submit(worker, box) for box in boxes]:
            future.result()
    assert done[0] == cycles
    assert node.served("ADD") == cycles + 1
    assert host.leases() == []
    assert host.host_veths() == []
    for box in boxes:
        assert set(host.links(box.netns)) == {"lo"}
    assert [p for p in host.cache_dir.rglob("*") if p.is_file()] == []
    fds, threads = usage(node.proc.pid)
    # One pooled keep-alive API connection per pod that wrote status at once.
    assert fds <= before[0] + PODS + 2, (before, fds)
    assert threads <= before[1] + 4, (before, threads)


def test_100_cycles_of_8_concurrent_pods(
    host: Host, runtime: Runtime, cluster: Cluster, node: NodeDaemon
) -> None:
    run_cycles(host, runtime, cluster, node, 100)


@pytest.mark.slow
def test_1000_cycles_of_8_concurrent_pods(
    host: Host, runtime: Runtime, cluster: Cluster, node: NodeDaemon
) -> None:
    run_cycles(host, runtime, cluster, node, 1000)
