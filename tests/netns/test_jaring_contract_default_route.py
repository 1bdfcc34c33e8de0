"""NPWG default-route: the element that asks for it gets the pod's default
route; the cluster network's is removed; the status says so."""

from __future__ import annotations

import ipaddress
import json

import pytest

from ..api.cluster import Cluster
from .conftest import STATUS, Host, Runtime, call, sandbox

pytestmark = pytest.mark.root


def with_cluster_default_route(runtime: Runtime) -> None:
    runtime.conf["delegates"][0]["ipam"]["routes"] = [{"dst": "0.0.0.0/0"}]


def test_default_route_moves_to_the_requested_network(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    with_cluster_default_route(runtime)
    cluster.nad("data", host.macvlan("data"))
    gateway = str(ipaddress.ip_network(host.data_subnet)[1])
    selection = [{"name": "data", "default-route": [gateway]}]
    box = sandbox(host, cluster, "web", networks=json.dumps(selection))
    add = call(runtime, "ADD", box)
    assert add.ok, (add.doc, add.stderr)
    defaults = [r for r in host.routes(box.netns) if r["dst"] == "default"]
    assert [(r["dev"], r["gateway"]) for r in defaults] == [("net1", gateway)]
    # The runtime's result no longer claims a default route on eth0.
    assert all(r["dst"] != "0.0.0.0/0" for r in add.doc.get("routes", []))
    status = json.loads(cluster.read_pod("web")["metadata"]["annotations"][STATUS])
    assert status[1]["default-route"] == [gateway]
    assert "default-route" not in status[0]


def test_without_default_route_eth0_keeps_it(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    with_cluster_default_route(runtime)
    cluster.nad("data", host.macvlan("data"))
    box = sandbox(host, cluster, "web", networks="data")
    assert call(runtime, "ADD", box).ok
    defaults = [r for r in host.routes(box.netns) if r["dst"] == "default"]
    assert [r["dev"] for r in defaults] == ["eth0"]
