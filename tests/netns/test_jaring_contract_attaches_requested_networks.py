"""The installed `jaring` binary, run as a runtime runs it, attaches the cluster
network and each requested NAD (short and JSON forms, static ips/mac, the same
network twice) and writes network-status to the pod in the API."""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any

import pytest

from ..api.cluster import Cluster
from .conftest import STATUS, Host, Runtime, Sandbox, call, sandbox

pytestmark = pytest.mark.root


def status_of(cluster: Cluster, box: Sandbox) -> list[dict[str, Any]]:
    pod = cluster.read_pod(box.pod, namespace=box.namespace)
    doc = json.loads(pod["metadata"]["annotations"][STATUS])
    assert isinstance(doc, list)
    return doc


def in_subnet(cidr: str, subnet: str) -> bool:
    return ipaddress.ip_interface(cidr).ip in ipaddress.ip_network(subnet)


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_short_form_attaches_net1_and_reports_it(
    host: Host, runtime: Runtime, cluster: Cluster, version: str
) -> None:
    runtime.conf["cniVersion"] = version
    cluster.nad("data", host.macvlan("data"))
    box = sandbox(host, cluster, "web", networks="data")
    add = call(runtime, "ADD", box)
    assert add.ok, (add.doc, add.stderr)

    links = host.links(box.netns)
    assert set(links) == {"lo", "eth0", "net1"}
    (eth0_ip,) = links["eth0"].addrs
    (net1_ip,) = links["net1"].addrs
    assert in_subnet(eth0_ip, host.cluster_subnet)
    assert in_subnet(net1_ip, host.data_subnet)

    # The runtime gets the cluster network's result, in its own version.
    assert add.doc["cniVersion"] == version
    sandboxed = [i for i in add.doc["interfaces"] if i.get("sandbox")]
    assert [i["name"] for i in sandboxed] == ["eth0"]
    assert [ip["address"] for ip in add.doc["ips"]] == [eth0_ip]
    assert all(("version" in ip) == version.startswith("0.") for ip in add.doc["ips"])

    assert status_of(cluster, box) == [
        {
            "name": f"cluster-{host.tag}",
            "interface": "eth0",
            "ips": [eth0_ip],
            "mac": links["eth0"].mac,
            "default": True,
            "gateway": [str(ipaddress.ip_network(host.cluster_subnet)[1])],
        },
        {
            "name": f"{cluster.namespace}/data",
            "interface": "net1",
            "ips": [net1_ip],
            "mac": links["net1"].mac,
            "default": False,
            "gateway": [str(ipaddress.ip_network(host.data_subnet)[1])],
        },
    ]


def test_added_interfaces_are_announced_as_events(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    cluster.nad("data", host.macvlan("data"))
    box = sandbox(host, cluster, "web", networks="data")
    assert call(runtime, "ADD", box).ok
    links = host.links(box.netns)
    # The binary posts Events after it has answered: wait for both.
    deadline = time.monotonic() + 20
    while True:
        events = [e for e in cluster.jaring_events() if e["involvedObject"]["name"] == "web"]
        if len(events) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert {e["reason"] for e in events} == {"AddedInterface"}
    assert all(e["type"] == "Normal" and e["involvedObject"]["uid"] == box.uid for e in events)
    messages = " ".join(e["message"] for e in events)
    for ifname in ("eth0", "net1"):
        assert ifname in messages
        assert links[ifname].addrs[0].split("/")[0] in messages


def test_json_form_and_named_interfaces(host: Host, runtime: Runtime, cluster: Cluster) -> None:
    cluster.nad("data", host.macvlan("data"))
    other = cluster.add_namespace(cluster.namespace + "-o")
    cluster.nad("fast", host.macvlan("fast"), namespace=other)
    selection = [
        {"name": "data", "interface": "data0"},
        {"name": "fast", "namespace": other, "interface": "fast0"},
        {"name": "data"},
    ]
    box = sandbox(host, cluster, "cnf", networks=json.dumps(selection))
    add = call(runtime, "ADD", box)
    assert add.ok, (add.doc, add.stderr)
    assert set(host.links(box.netns)) == {"lo", "eth0", "data0", "fast0", "net3"}
    assert [(s["name"], s["interface"]) for s in status_of(cluster, box)] == [
        (f"cluster-{host.tag}", "eth0"),
        (f"{cluster.namespace}/data", "data0"),
        (f"{other}/fast", "fast0"),
        (f"{cluster.namespace}/data", "net3"),
    ]


def test_short_form_with_namespace_and_ifname(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    other = cluster.add_namespace(cluster.namespace + "-o")
    cluster.nad("fast", host.macvlan("fast"), namespace=other)
    box = sandbox(host, cluster, "cnf", networks=f"{other}/fast@fast0")
    add = call(runtime, "ADD", box)
    assert add.ok, (add.doc, add.stderr)
    assert set(host.links(box.netns)) == {"lo", "eth0", "fast0"}
    assert status_of(cluster, box)[1]["name"] == f"{other}/fast"


def test_static_ips_and_mac_reach_the_delegate(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    static = host.macvlan(
        "pinned", ipam={"type": "static"}, capabilities={"ips": True, "mac": True}
    )
    cluster.nad("pinned", static)
    address = str(ipaddress.ip_network(host.data_subnet)[77]) + "/24"
    mac = "02:00:5e:10:20:30"
    selection = [{"name": "pinned", "ips": [address], "mac": mac}]
    box = sandbox(host, cluster, "pinned-pod", networks=json.dumps(selection))
    add = call(runtime, "ADD", box)
    assert add.ok, (add.doc, add.stderr)
    net1 = host.links(box.netns)["net1"]
    assert net1.addrs == (address,)
    assert net1.mac == mac
    entry = status_of(cluster, box)[1]
    assert entry["ips"] == [address]
    assert entry["mac"] == mac


def test_the_same_network_twice_is_two_attachments(
    host: Host, runtime: Runtime, cluster: Cluster
) -> None:
    cluster.nad("data", host.macvlan("data"))
    box = sandbox(host, cluster, "twice", networks="data,data")
    add = call(runtime, "ADD", box)
    assert add.ok, (add.doc, add.stderr)
    links = host.links(box.netns)
    assert set(links) == {"lo", "eth0", "net1", "net2"}
    assert links["net1"].addrs != links["net2"].addrs
    status = status_of(cluster, box)
    assert [(s["name"], s["interface"]) for s in status[1:]] == [
        (f"{cluster.namespace}/data", "net1"),
        (f"{cluster.namespace}/data", "net2"),
    ]
    assert [s["ips"] for s in status[1:]] == [list(links["net1"].addrs), list(links["net2"].addrs)]
    assert len(host.leases()) == 3
    delete = call(runtime, "DEL", box)
    assert delete.ok, (delete.doc, delete.stderr)
    assert set(host.links(box.netns)) == {"lo"}
    assert host.leases() == []
