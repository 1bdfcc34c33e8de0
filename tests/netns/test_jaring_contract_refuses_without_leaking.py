"""An ADD the binary refuses (missing NAD, a NAD from an isolated namespace)
fails with a clear CNI error and leaves nothing: no link in the netns, no
host veth, no host-local lease, no cache entry; the failure is an Event."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest

from ..api.cluster import Cluster
from .conftest import Host, Runtime, Sandbox, call, sandbox

pytestmark = pytest.mark.root


def assert_nothing_left(host: Host, box: Sandbox) -> None:
    assert set(host.links(box.netns)) == {"lo"}
    assert host.host_veths() == []
    assert host.leases() == []
    cached = (
        [p for p in host.cache_dir.rglob("*") if p.is_file()] if host.cache_dir.exists() else []
    )
    assert [p for p in cached if box.cid in p.read_text(errors="replace")] == []


def test_missing_nad_fails_invalid_config(host: Host, runtime: Runtime, cluster: Cluster) -> None:
    cluster.nad("data", host.macvlan("data"))
    box = sandbox(host, cluster, "web", networks="data,absent")
    add = call(runtime, "ADD", box)
    assert add.code != 0
    assert add.doc["code"] == 7
    assert "absent" in add.doc["msg"] + add.doc.get("details", "")
    assert_nothing_left(host, box)
    # Events are posted after the binary has answered: wait for the warning.
    deadline = time.monotonic() + 20
    while True:
        warnings = [e for e in cluster.jaring_events() if e["type"] == "Warning"]
        if warnings or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [e["involvedObject"]["name"] for e in warnings] == ["web"]
    # The runtime then calls DEL for the failed ADD: that succeeds too.
    delete = call(runtime, "DEL", box)
    assert delete.ok, (delete.doc, delete.stderr)
    assert_nothing_left(host, box)


def test_missing_pod_fails_container_unknown(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    box = Sandbox(host.netns(), "c0ffee", cluster.namespace, "never-created", "")
    add = call(runtime, "ADD", box)
    assert add.code != 0
    assert add.doc["code"] == 3
    assert_nothing_left(host, box)


def test_namespace_isolation(host: Host, runtime: Runtime, cluster: Cluster) -> None:
    shared = cluster.add_namespace(cluster.namespace + "-g")
    foreign = cluster.add_namespace(cluster.namespace + "-f")
    runtime.conf |= {"namespaceIsolation": True, "globalNamespaces": [shared]}
    cluster.nad("own", host.macvlan("own"))
    cluster.nad("shared", host.macvlan("shared"), namespace=shared)
    cluster.nad("theirs", host.macvlan("theirs"), namespace=foreign)

    refused = sandbox(host, cluster, "nosy", networks=f"own,{foreign}/theirs")
    add = call(runtime, "ADD", refused)
    assert add.code != 0
    assert foreign in add.doc["msg"] + add.doc.get("details", "")
    assert_nothing_left(host, refused)

    allowed = sandbox(host, cluster, "polite", networks=f"own,{shared}/shared")
    add = call(runtime, "ADD", allowed)
    assert add.ok, (add.doc, add.stderr)
    assert set(host.links(allowed.netns)) == {"lo", "eth0", "net1", "net2"}


def full_network(host: Host, name: str) -> dict[str, Any]:
    """A macvlan whose one-address pool another container holds: its ADD fails
    after the link was made, its DEL works (unlike a missing master, whose
    reference-macvlan DEL fails too)."""
    subnet = ipaddress.ip_network(host.data_subnet)
    only = str(subnet[200])
    data_dir = host.tmp / "full-ipam"
    (data_dir / name).mkdir(parents=True)
    (data_dir / name / only).write_text("someone-else\neth9")
    ipam = {
        "type": "host-local",
        "ranges": [[{"subnet": str(subnet), "rangeStart": only, "rangeEnd": only}]],
        "dataDir": str(data_dir),
    }
    return host.macvlan(name, ipam=ipam)


@pytest.mark.parametrize("position", [1, 2, 3])
def test_failing_delegate_rolls_back_the_ones_before(
    host: Host, runtime: Runtime, cluster: Cluster, position: int
) -> None:
    cluster.nad("data", host.macvlan("data"))
    cluster.nad("full", full_network(host, "full"))
    networks = ["data", "data", "data"]
    networks[position - 1] = "full"
    box = sandbox(host, cluster, "web", networks=",".join(networks))
    add = call(runtime, "ADD", box)
    assert add.code != 0
    assert f"net{position}" in add.doc["msg"]
    assert_nothing_left(host, box)


def test_failing_cluster_network_attaches_nothing(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    cluster_net = runtime.conf["delegates"][0]
    cluster_net["ipam"] = full_network(host, cluster_net["name"])["ipam"]
    cluster.nad("data", host.macvlan("data"))
    box = sandbox(host, cluster, "web", networks="data")
    add = call(runtime, "ADD", box)
    assert add.code != 0
    assert "eth0" in add.doc["msg"]
    assert_nothing_left(host, box)


def test_nothing_left_sees_what_an_add_leaves(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    cluster.nad("data", host.macvlan("data"))
    box = sandbox(host, cluster, "web", networks="data")
    assert call(runtime, "ADD", box).ok
    with pytest.raises(AssertionError):
        assert_nothing_left(host, box)
    assert len(host.host_veths()) == 1
    assert len(host.leases()) == 2
