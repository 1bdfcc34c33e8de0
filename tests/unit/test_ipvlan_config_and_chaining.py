"""ipvlan decisions without a kernel: modes, chained master, where the IPs come from.

This machine's kernel has no ipvlan; the link itself is tested in the kernel
lab (tests/difftest/test_ipvlan_matches_reference.py, marked `kernel`). These
fakes cover what the plugin decides before it touches netlink.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import pytest
from jaring.cni.errors import CniError
from jaring.cni.plugin import Request
from jaring.delegates.ipvlan import IPVLAN, PLUGIN
from jaring.delegates.macvlan import MACVLAN
from jaring.delegates.sublink import default_route_interface


class Msg(dict[str, Any]):
    """Enough of a pyroute2 message: item access plus get_attr."""

    def __init__(self, attrs: dict[str, Any], **fields: Any) -> None:
        super().__init__(fields)
        self.attrs = attrs

    def get_attr(self, name: str) -> Any:
        return self.attrs.get(name)


class FakeNetlink:
    def __init__(self, routes: dict[int, list[Msg]], links: dict[int, str]) -> None:
        self.routes = routes
        self.links = links

    def route(self, command: str, *, family: int, table: int) -> list[Msg]:
        assert (command, table) == ("dump", 254)
        return self.routes.get(family, [])

    def link(self, command: str, **kw: Any) -> list[Msg]:
        index = kw["index"]
        attrs = {"IFLA_IFNAME": self.links[index], "IFLA_MTU": 1500}
        return [Msg(attrs, index=index, flags=1)]


def request(prev: dict[str, Any] | None = None, **conf: Any) -> Request:
    doc: dict[str, Any] = {"cniVersion": "1.0.0", "name": "ipv", "type": "ipvlan", **conf}
    if prev is not None:
        doc["prevResult"] = prev
    return Request.build("ADD", json.dumps(doc).encode(), container_id="c", netns="/x", ifname="n")


NO_ROUTES = FakeNetlink({}, {})


def test_ipvlan_modes_are_the_kernel_values() -> None:
    assert dict(IPVLAN.modes) == {"l2": 0, "l3": 1, "l3s": 2}
    assert IPVLAN.default_mode == "l2"
    assert not IPVLAN.with_mac  # an ipvlan shares its master's MAC
    assert MACVLAN.default_mode == "bridge"


def test_unknown_ipvlan_mode_is_refused() -> None:
    with pytest.raises(CniError, match="unknown ipvlan mode: l4"):
        PLUGIN.parse(request(master="eth9", mode="l4"), NO_ROUTES)


def test_unknown_mode_does_not_block_del() -> None:
    assert PLUGIN.parse(request(master="eth9", mode="l4"), None).mode == "l4"


def test_chained_ipvlan_takes_master_from_prev_result() -> None:
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth7"}], "ips": []}
    assert PLUGIN.parse(request(prev), NO_ROUTES).master == "eth7"


def test_chained_ipvlan_refuses_prev_result_with_two_interfaces() -> None:
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "a"}, {"name": "b"}]}
    with pytest.raises(CniError, match="chained master failure"):
        PLUGIN.parse(request(prev), NO_ROUTES)


def test_unchained_ipvlan_defaults_to_default_route_interface() -> None:
    routes = {2: [Msg({"RTA_OIF": 3}, dst_len=0)], 10: []}
    fake = FakeNetlink(routes, {3: "uplink0"})
    assert PLUGIN.parse(request(), fake).master == "uplink0"


def test_default_route_interface_skips_non_default_routes_and_falls_back_to_v6() -> None:
    routes = {
        2: [Msg({"RTA_OIF": 4}, dst_len=24)],
        10: [Msg({"RTA_OIF": 5}, dst_len=0)],
    }
    assert default_route_interface(FakeNetlink(routes, {4: "lan", 5: "v6up"})) == "v6up"


def test_no_default_route_is_a_config_error() -> None:
    with pytest.raises(CniError, match="no default route interface found"):
        default_route_interface(FakeNetlink({2: [Msg({"RTA_OIF": 4}, dst_len=8)]}, {4: "x"}))


def test_chained_ipvlan_without_ipam_uses_prev_result_ips() -> None:
    prev = {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth7"}],
        "ips": [{"address": "10.3.0.2/24", "interface": 0}],
    }
    req = request(prev, master="eth7")
    with ExitStack() as undo:
        got = PLUGIN._ipam_result(req, PLUGIN.parse(req, NO_ROUTES), undo)
    assert got is not None and [ip.address for ip in got.ips] == ["10.3.0.2/24"]


def test_ipvlan_without_ipam_or_prev_ips_is_refused() -> None:
    req = request(master="eth7")
    with ExitStack() as undo, pytest.raises(CniError, match="needs an ipam section"):
        PLUGIN._ipam_result(req, PLUGIN.parse(req, NO_ROUTES), undo)
