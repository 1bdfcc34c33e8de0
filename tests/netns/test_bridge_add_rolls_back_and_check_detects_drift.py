"""bridge in real namespaces: a failed ADD leaves nothing, DEL always succeeds, CHECK sees drift.

Uses the differential harness's `Side` for unique host parts; the plugin is
built with a failing side effect (iptables) to fail ADD at its last step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.errors import CniError, Code
from jaring.cni.plugin import Request
from jaring.delegates import masq
from jaring.delegates.bridge import BridgePlugin

from ..difftest.harness import Side, sh, snapshot

pytestmark = pytest.mark.root

CONF: dict[str, Any] = {
    "type": "bridge",
    "bridge": "@BRIDGE@",
    "isDefaultGateway": True,
    "ipMasq": True,
    "mtu": 1450,
    "ipam": {
        "type": "host-local",
        "dataDir": "@DATADIR@",
        "ranges": [[{"subnet": "10.44.0.0/24"}], [{"subnet": "fd44::/64"}]],
    },
}


@pytest.fixture
def side(tmp_path: Path) -> Iterator[Side]:
    if os.geteuid() != 0:
        pytest.skip("needs root and real network namespaces")
    s = Side(tmp_path)
    try:
        s.create()
        yield s
    finally:
        s.destroy()


def req(side: Side, command: str, *, netns: str | None = None, **extra: Any) -> Request:
    doc = json.loads(side.render(CONF, "1.0.0"))
    doc.update(extra)
    return Request.build(
        command,
        json.dumps(doc).encode(),
        container_id=side.container_id,
        netns=side.netns_path if netns is None else netns,
        ifname="eth0",
    )


def leases(side: Side) -> list[str]:
    root = side.data_dir / side.network
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if p.name != "lock" and "last_reserved" not in p.name
    )


def failing_iptables(argv: Sequence[str], stdin: str) -> masq.Completed:
    if "restore" in argv[0]:
        return masq.Completed(4, "", "iptables-restore: simulated failure")
    return masq.run_tool(argv, stdin)


def test_failed_add_leaves_no_link_lease_bridge_or_chain(side: Side) -> None:
    plugin = BridgePlugin(masq_runner=failing_iptables)
    with pytest.raises(CniError, match="simulated failure"):
        plugin.add(req(side, "ADD"))
    state = snapshot(side)
    assert [link["ifname"] for link in state["pod"]["links"]] == ["lo"]
    assert "bridge" not in state["host"]  # it made the bridge, so it removed it
    assert state["host"]["iptables"] == []
    assert leases(side) == []


def test_add_into_missing_netns_is_container_unknown_and_makes_nothing(side: Side) -> None:
    with pytest.raises(CniError) as caught:
        BridgePlugin().add(req(side, "ADD", netns="/run/netns/jdn-gone"))
    assert caught.value.code == Code.CONTAINER_UNKNOWN
    assert "bridge" not in snapshot(side)["host"]
    assert leases(side) == []


@pytest.mark.parametrize("netns", ["", "/run/netns/jdn-never-was", None])
def test_del_succeeds_twice_whatever_is_left(side: Side, netns: str | None) -> None:
    plugin = BridgePlugin()
    plugin.add(req(side, "ADD"))
    for _ in range(2):
        plugin.delete(req(side, "DEL", netns=netns))
    assert leases(side) == []
    assert snapshot(side)["host"]["iptables"] == []


def test_del_after_pod_netns_deleted_releases_lease_and_chain(side: Side) -> None:
    plugin = BridgePlugin()
    plugin.add(req(side, "ADD"))
    sh("ip", "netns", "del", side.netns)
    plugin.delete(req(side, "DEL"))
    assert leases(side) == []
    chain = masq.chain_name(side.network, side.container_id)
    assert chain not in sh("iptables", "-w", "-t", "nat", "-S")


@pytest.mark.parametrize(
    ("drift", "message"),
    [
        (("addr", "del", "10.44.0.2/24", "dev", "eth0"), "address 10.44.0.2/24 missing"),
        (("route", "del", "default"), "route 0.0.0.0/0 via 10.44.0.1 missing"),
        (("link", "set", "eth0", "mtu", "1400"), "MTU 1400 != 1450"),
    ],
)
def test_check_detects_pod_drift(side: Side, drift: tuple[str, ...], message: str) -> None:
    plugin = BridgePlugin()
    result = plugin.add(req(side, "ADD"))
    prev = result.to_json("1.0.0")
    plugin.check(req(side, "CHECK", prevResult=prev))
    sh("ip", "-n", side.netns, *drift)
    with pytest.raises(CniError, match=message):
        plugin.check(req(side, "CHECK", prevResult=prev))
    plugin.delete(req(side, "DEL"))


def test_check_detects_host_veth_leaving_the_bridge(side: Side) -> None:
    plugin = BridgePlugin()
    result = plugin.add(req(side, "ADD"))
    sh("ip", "link", "set", result.interfaces[1].name, "nomaster")
    with pytest.raises(CniError, match="is not on"):
        plugin.check(req(side, "CHECK", prevResult=result.to_json("1.0.0")))
    plugin.delete(req(side, "DEL"))


def test_second_pod_on_the_bridge_keeps_the_gateway_and_bridge_mac(side: Side) -> None:
    plugin = BridgePlugin()
    first = plugin.add(req(side, "ADD"))
    other = Side(side.tmp, tag=side.tag[::-1])
    sh("ip", "netns", "add", other.netns)
    try:
        doc = json.loads(side.render(CONF, "1.0.0"))
        second = plugin.add(
            Request.build(
                "ADD",
                json.dumps(doc).encode(),
                container_id="second",
                netns=other.netns_path,
                ifname="eth0",
            )
        )
        assert second.interfaces[0].mac == first.interfaces[0].mac
        assert [ip.address for ip in second.ips] == ["10.44.0.3/24", "fd44::3/64"]
        plugin.delete(
            Request.build(
                "DEL",
                json.dumps(doc).encode(),
                container_id="second",
                netns=other.netns_path,
                ifname="eth0",
            )
        )
    finally:
        sh("ip", "netns", "del", other.netns, check=False)
    plugin.delete(req(side, "DEL"))


def test_gc_releases_leases_and_chains_of_attachments_not_kept(side: Side) -> None:
    plugin = BridgePlugin()
    other = Side(side.tmp, tag=side.tag[::-1])
    sh("ip", "netns", "add", other.netns)
    doc = json.loads(side.render(CONF, "1.1.0"))

    def call(command: str, container_id: str, path: str) -> Request:
        return Request.build(
            command, json.dumps(doc).encode(), container_id=container_id, netns=path, ifname="eth0"
        )

    try:
        plugin.add(call("ADD", "keep-me", side.netns_path))
        plugin.add(call("ADD", "gone-pod", other.netns_path))
        doc["cni.dev/valid-attachments"] = [{"containerID": "keep-me", "ifname": "eth0"}]
        plugin.gc(call("GC", "", ""))
        rules = sh("iptables", "-w", "-t", "nat", "-S")
        assert masq.chain_name(side.network, "keep-me") in rules
        assert masq.chain_name(side.network, "gone-pod") not in rules
        assert leases(side) == ["10.44.0.2", "fd44::2"]
        del doc["cni.dev/valid-attachments"]
        plugin.delete(call("DEL", "keep-me", side.netns_path))
        plugin.delete(call("DEL", "gone-pod", other.netns_path))
    finally:
        sh("ip", "netns", "del", other.netns, check=False)
        for cid in ("keep-me", "gone-pod"):
            masq.teardown(network=side.network, container_id=cid)


def test_gc_without_valid_attachments_is_refused(side: Side) -> None:
    doc = json.loads(side.render(CONF, "1.1.0"))
    with pytest.raises(CniError, match="GC needs the valid attachments"):
        BridgePlugin().gc(Request.build("GC", json.dumps(doc).encode()))


def test_status_is_ready_when_the_ipam_store_is_usable(side: Side) -> None:
    BridgePlugin().status(Request.build("STATUS", side.render(CONF, "1.1.0")))
