"""macvlan over a dummy master, bridge with a dummy or 802.1Q uplink: jaring matches the reference.

macvlan: each mode over a dummy master (the executable and the refusals run on
this machine too, in tests/difftest, over a veth master). bridge: the plugin joins a bridge that
already has a dummy uplink (or an 8021q link on a dummy) as a port, with and
without the `vlan` key (VLAN filtering, pvid/untagged port VLANs, the
`<bridge>.<vlan>` gateway port); the uplink's port VLANs are part of the
compared state. ADD, CHECK, DEL, DEL again; result JSON and normalised state.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..difftest.harness import Case, Side, sh
from .diffrun import compare

pytestmark = [pytest.mark.root, pytest.mark.kernel]

V4 = {
    "type": "host-local",
    "dataDir": "@DATADIR@",
    "ranges": [[{"subnet": "10.97.0.0/24"}]],
    "routes": [{"dst": "0.0.0.0/0"}],
}
V6 = {"type": "host-local", "dataDir": "@DATADIR@", "ranges": [[{"subnet": "fd97::/64"}]]}
DUAL = {
    "type": "host-local",
    "dataDir": "@DATADIR@",
    "ranges": [[{"subnet": "10.98.0.0/24"}], [{"subnet": "fd98::/64"}]],
}


def macvlan(**extra: Any) -> dict[str, Any]:
    return {"type": "macvlan", "master": "@MASTER@", **extra}


MACVLAN: dict[str, tuple[dict[str, Any], str]] = {
    "bridge-v4": (macvlan(ipam=V4), "1.0.0"),
    "private-dual-mtu": (macvlan(mode="private", mtu=1280, ipam=DUAL), "0.4.0"),
    "vepa-v6": (macvlan(mode="vepa", ipam=V6), "1.1.0"),
    "passthru-l2-only": (macvlan(mode="passthru"), "0.3.1"),
}


@pytest.mark.parametrize("name", sorted(MACVLAN))
def test_macvlan_over_dummy_in_process_matches_reference(
    name: str, sides: tuple[Side, Side]
) -> None:
    config, version = MACVLAN[name]
    compare(Case("macvlan", config, version, "inproc", ifname="net1"), *sides)


def bridge(**extra: Any) -> dict[str, Any]:
    return {"type": "bridge", "bridge": "@BRIDGE@", **extra}


def with_uplink(side: Side, uplink: str) -> None:
    """Pre-create the side's bridge with an uplink port: the dummy, or an 8021q link on it."""
    sh("ip", "link", "add", side.bridge, "type", "bridge")
    port = side.master
    if uplink == "vlan":
        port = side.device  # masked as DEVICE in snapshots, deleted by Side.destroy
        sh("ip", "link", "add", "link", side.master, port, "type", "vlan", "id", "30")
    sh("ip", "link", "set", port, "master", side.bridge)
    sh("ip", "link", "set", port, "up")
    sh("ip", "link", "set", side.bridge, "up")


# (config, version, uplink): uplink "" leaves the bridge to the plugin.
BRIDGE: dict[str, tuple[dict[str, Any], str, str]] = {
    # vlan_filtering stays as found on a bridge that exists (the reference sets it
    # only on a bridge it creates).
    "dummy-uplink-vlan-v4-filtering-left-off": (bridge(vlan=100, ipam=V4), "0.3.0", "dummy"),
    "dummy-uplink-vlan-gateway-dual": (
        bridge(vlan=200, isGateway=True, ipam=DUAL),
        "0.4.0",
        "dummy",
    ),
    "8021q-uplink-vlan-gateway-v6": (
        bridge(vlan=300, isDefaultGateway=True, ipam=V6),
        "1.1.0",
        "vlan",
    ),
    "new-bridge-vlan-gateway-v4": (bridge(vlan=400, isGateway=True, ipam=V4), "0.3.1", ""),
}


@pytest.mark.usefixtures("vlan_kernel")
@pytest.mark.parametrize("name", sorted(BRIDGE))
def test_bridge_with_dummy_uplink_in_process_matches_reference(
    name: str, sides: tuple[Side, Side]
) -> None:
    config, version, uplink = BRIDGE[name]
    if uplink:
        for side in sides:
            with_uplink(side, uplink)
    compare(Case("bridge", config, version, "inproc"), *sides)


@pytest.mark.usefixtures("vlan_kernel")
def test_bridge_with_8021q_uplink_executable_matches_reference(sides: tuple[Side, Side]) -> None:
    config, version, uplink = BRIDGE["8021q-uplink-vlan-gateway-v6"]
    for side in sides:
        with_uplink(side, uplink)
    compare(Case("bridge", config, version, "bin"), *sides)
