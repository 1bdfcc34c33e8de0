"""LESSONS #12: `default-route` with dual stack moves exactly the families
asked for, each to the gateway of its own family (Multus #749, #906)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from ..api.cluster import Cluster
from .conftest import STATUS, Host, Runtime, call, sandbox

pytestmark = pytest.mark.root


def _v6(host: Host, index: int) -> str:
    return f"fd{int(host.tag[:2], 16):02x}:{int(host.tag[2:6], 16):x}:{index}::/64"


def dual_stack(host: Host, runtime: Runtime) -> tuple[dict[str, Any], str, str]:
    """eth0 and the data network get v4 + v6; eth0 carries both default routes."""
    cluster = runtime.conf["delegates"][0]
    cluster["ipam"] = {
        "type": "host-local",
        "ranges": [[{"subnet": host.cluster_subnet}], [{"subnet": _v6(host, 1)}]],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
        "dataDir": str(host.ipam_dir),
    }
    data = host.macvlan("data")
    data["ipam"] = {
        "type": "host-local",
        "ranges": [[{"subnet": host.data_subnet}], [{"subnet": _v6(host, 2)}]],
        "dataDir": str(host.ipam_dir),
    }
    v4 = str(ipaddress.ip_network(host.data_subnet)[1])
    v6 = str(ipaddress.ip_network(_v6(host, 2))[1])
    return data, v4, v6


def _defaults(host: Host, netns: str, family: str) -> list[tuple[str, str]]:
    return [
        (r["dev"], r.get("gateway", ""))
        for r in host.routes(netns, family=family)
        if r["dst"] == "default"
    ]


@pytest.mark.parametrize(
    ("families", "moved"),
    [(("4",), {"-4"}), (("6",), {"-6"}), (("4", "6"), {"-4", "-6"})],
    ids=["v4-only", "v6-only", "both"],
)
def test_only_the_requested_families_move_each_to_its_own_gateway(
    host: Host, runtime: Runtime, cluster: Cluster, families: tuple[str, ...], moved: set[str]
) -> None:
    data, v4, v6 = dual_stack(host, runtime)
    cluster.nad("data", data)
    gateways = [gw for family, gw in (("4", v4), ("6", v6)) if family in families]
    selection = [{"name": "data", "default-route": gateways}]
    box = sandbox(host, cluster, "web", networks=json.dumps(selection))
    add = call(runtime, "ADD", box)
    assert add.ok, (add.doc, add.stderr)
    for family, gateway in (("-4", v4), ("-6", v6)):
        routes = _defaults(host, box.netns, family)
        if family in moved:
            assert routes == [("net1", gateway)], (family, routes)
        else:
            assert [dev for dev, _ in routes] == ["eth0"], (family, routes)
    status = json.loads(cluster.read_pod("web")["metadata"]["annotations"][STATUS])
    assert status[1]["default-route"] == gateways
    kept = {r["dst"] for r in add.doc.get("routes", [])}
    assert ("0.0.0.0/0" in kept) == ("-4" not in moved)
    assert ("::/0" in kept) == ("-6" not in moved)
    assert call(runtime, "DEL", box).ok
    assert host.leases() == []
