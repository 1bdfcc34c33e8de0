"""The lean rtnetlink client under the link plugins: requests it builds, replies it reads.

No root needed: encoding is checked byte-structurally, and a GETLINK of `lo`
and of a missing link go to the real kernel (reads are unprivileged).
"""

from __future__ import annotations

import errno
import socket
import struct
import uuid

import pytest
from jaring.delegates import rtnl


def tree(data: bytes, offset: int = 0) -> dict[int, bytes]:
    return dict(rtnl._attrs(data, offset))


def test_veth_add_puts_the_peer_with_its_netns_inside_linkinfo() -> None:
    body = rtnl.ifinfomsg() + rtnl._link_attrs(
        {
            "ifname": "veth0abc",
            "kind": "veth",
            "txqlen": 0,
            "peer": {"ifname": "eth0", "net_ns_fd": 7, "mtu": 1400},
        }
    )
    top = tree(body, 16)
    assert top[rtnl.IFLA["IFLA_IFNAME"]] == b"veth0abc\0"
    assert struct.unpack("=I", top[rtnl.IFLA["IFLA_TXQLEN"]]) == (0,)
    info = tree(top[rtnl.IFLA["IFLA_LINKINFO"]])
    assert info[rtnl.IFLA_INFO_KIND] == b"veth\0"
    peer = tree(tree(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER], 16)
    assert peer[rtnl.IFLA["IFLA_IFNAME"]] == b"eth0\0"
    assert struct.unpack("=I", peer[rtnl.IFLA["IFLA_NET_NS_FD"]]) == (7,)
    assert struct.unpack("=I", peer[rtnl.IFLA["IFLA_MTU"]]) == (1400,)


def test_macvlan_mode_is_encoded_and_decoded_by_name() -> None:
    data = rtnl._info_data("macvlan", {"macvlan_mode": "vepa"})
    linkinfo = rtnl.attr(rtnl.IFLA_INFO_KIND, b"macvlan\0") + data
    info = rtnl._decode_linkinfo(linkinfo)
    assert info.get_attr("IFLA_INFO_KIND") == "macvlan"
    assert info.get_attr("IFLA_INFO_DATA").get_attr("IFLA_MACVLAN_MODE") == "vepa"


def test_multipath_hops_are_decoded_with_their_gateways() -> None:
    gw = rtnl.attr(rtnl.RTA["RTA_GATEWAY"], socket.inet_pton(socket.AF_INET, "10.0.0.1"))
    hop = struct.pack("=HBBi", 8 + len(gw), 0, 0, 5) + gw
    hops = rtnl._decode_hops(socket.AF_INET, hop + hop)
    assert [(h["oif"], h.get_attr("RTA_GATEWAY")) for h in hops] == [(5, "10.0.0.1")] * 2


def test_kernel_answers_getlink_for_lo() -> None:
    with rtnl.Rtnl() as ipr:
        (lo,) = ipr.link("get", ifname="lo")
    assert lo.get_attr("IFLA_IFNAME") == "lo"
    assert lo["index"] > 0
    assert lo.get_attr("IFLA_MTU") > 0


def test_missing_link_is_a_netlink_error_with_enodev() -> None:
    with rtnl.Rtnl() as ipr, pytest.raises(rtnl.NetlinkError) as caught:
        ipr.link("get", ifname=f"nx{uuid.uuid4().hex[:8]}")
    assert caught.value.code == errno.ENODEV


def test_dump_returns_every_link_and_address_family_filter_holds() -> None:
    with rtnl.Rtnl() as ipr:
        names = {m.get_attr("IFLA_IFNAME") for m in ipr.link("dump")}
        v4 = ipr.addr("dump", family=socket.AF_INET)
    assert "lo" in names
    assert all(m["family"] == socket.AF_INET for m in v4)
