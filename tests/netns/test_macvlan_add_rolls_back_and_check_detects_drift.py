"""macvlan in real namespaces (veth master): rollback, idempotent DEL, CHECK drift.

A failing IPAM (static with an unusable gateway) fails ADD after the link
exists; nothing may stay in the pod. CHECK must notice mode, master,
address and MTU drift.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.errors import CniError
from jaring.cni.plugin import Request
from jaring.delegates.macvlan import PLUGIN

from ..difftest.harness import Side, sh

pytestmark = pytest.mark.root

STATIC = {"type": "static", "addresses": [{"address": "10.55.0.7/24", "gateway": "10.55.0.1"}]}


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


def req(side: Side, command: str, *, netns: str | None = None, **conf: Any) -> Request:
    doc = {"cniVersion": "1.0.0", "name": "mvnet", "type": "macvlan", "master": side.master}
    doc.update(conf)
    return Request.build(
        command,
        json.dumps(doc).encode(),
        container_id=side.container_id,
        netns=side.netns_path if netns is None else netns,
        ifname="net1",
    )


def pod_links(side: Side) -> list[str]:
    return [item["ifname"] for item in json.loads(sh("ip", "-n", side.netns, "-j", "link"))]


def test_failed_ipam_removes_the_macvlan_from_the_pod(side: Side) -> None:
    bad = {
        "type": "static",
        "addresses": [{"address": "10.55.0.7/24"}],
        "routes": [
            {"dst": "10.66.0.0/16", "gw": "10.77.0.1"}  # unreachable gateway: route add fails
        ],
    }
    with pytest.raises(CniError, match="failed to add route"):
        PLUGIN.add(req(side, "ADD", ipam=bad))
    assert pod_links(side) == ["lo"]


def test_ifname_taken_in_pod_fails_without_leaving_the_temp_link(side: Side) -> None:
    sh("ip", "-n", side.netns, "link", "add", "net1", "type", "veth", "peer", "name", "p1")
    with pytest.raises(CniError, match="already exists"):
        PLUGIN.add(req(side, "ADD", ipam=STATIC))
    assert sorted(pod_links(side)) == ["lo", "net1", "p1"]


@pytest.mark.parametrize("netns", ["", "/run/netns/jdn-never-was", None])
def test_del_succeeds_twice_whatever_is_left(side: Side, netns: str | None) -> None:
    PLUGIN.add(req(side, "ADD", ipam=STATIC))
    for _ in range(2):
        PLUGIN.delete(req(side, "DEL", netns=netns, ipam=STATIC))
    if netns is None:
        assert pod_links(side) == ["lo"]


@pytest.mark.parametrize(
    ("conf", "drift", "message"),
    [
        ({"mode": "private"}, None, "mode is not private"),
        ({"mtu": 1400}, None, "MTU 1500 != 1400"),
        ({}, ("addr", "flush", "dev", "net1"), "address 10.55.0.7/24 missing"),
    ],
)
def test_check_detects_drift(
    side: Side, conf: dict[str, Any], drift: tuple[str, ...] | None, message: str
) -> None:
    result = PLUGIN.add(req(side, "ADD", ipam=STATIC))
    prev = result.to_json("1.0.0")
    PLUGIN.check(req(side, "CHECK", ipam=STATIC, prevResult=prev))
    if drift:
        sh("ip", "-n", side.netns, *drift)
    with pytest.raises(CniError, match=message):
        PLUGIN.check(req(side, "CHECK", ipam=STATIC, prevResult=prev, **conf))
    PLUGIN.delete(req(side, "DEL", ipam=STATIC))


def test_check_detects_a_different_master(side: Side) -> None:
    result = PLUGIN.add(req(side, "ADD", ipam=STATIC))
    prev = result.to_json("1.0.0")
    with pytest.raises(CniError, match="is not on master"):
        PLUGIN.check(req(side, "CHECK", ipam=STATIC, prevResult=prev, master=side.device))
    PLUGIN.delete(req(side, "DEL", ipam=STATIC))


def test_cni_1_1_route_fields_reach_the_kernel(side: Side) -> None:
    ipam = {
        "type": "static",
        "addresses": [{"address": "10.55.0.7/24", "gateway": "10.55.0.1"}],
        "routes": [
            {"dst": "10.70.0.0/16", "gw": "10.55.0.9", "priority": 50, "mtu": 1400, "advmss": 1300},
            {"dst": "10.71.0.0/16", "table": 1234},
        ],
    }
    doc = req(side, "ADD", ipam=ipam).config
    result = PLUGIN.add(
        Request.build(
            "ADD",
            json.dumps({**doc, "cniVersion": "1.1.0"}).encode(),
            container_id=side.container_id,
            netns=side.netns_path,
            ifname="net1",
        )
    )
    assert [r.priority for r in result.routes] == [50, None]
    main = sh("ip", "-n", side.netns, "route", "show", "10.70.0.0/16")
    assert "via 10.55.0.9" in main and "metric 50" in main, main
    assert "mtu 1400" in main and "advmss 1300" in main, main
    other = sh("ip", "-n", side.netns, "route", "show", "table", "1234")
    assert other.startswith("10.71.0.0/16 via 10.55.0.1 dev net1"), other
    check = {**doc, "cniVersion": "1.1.0", "prevResult": result.to_json("1.1.0")}
    PLUGIN.check(
        Request.build(
            "CHECK",
            json.dumps(check).encode(),
            container_id=side.container_id,
            netns=side.netns_path,
            ifname="net1",
        )
    )
    PLUGIN.delete(req(side, "DEL", ipam=ipam))
