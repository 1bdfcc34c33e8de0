"""The lean rtnetlink client under the link plugins: requests it builds, replies it reads.

No root needed: encoding is checked byte-structurally, and a GETLINK of `lo`
and of a missing link go to the real kernel (reads are unprivileged). A link
deletion whose notification and ACK were lost in an overrun asks the kernel
instead of waiting forever (a fake socket; the real deletion is tests/netns').
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import time
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


def test_address_dump_for_one_link_from_the_kernel_holds_only_its_addresses() -> None:
    with rtnl.Rtnl() as ipr:
        (lo,) = ipr.link("get", ifname="lo")
        every = ipr.addr("dump")
        mine = ipr.addr("dump", index=lo["index"])
    assert {m["index"] for m in mine} == {lo["index"]}
    assert [m.get_attr("IFA_ADDRESS") for m in mine] == [
        m.get_attr("IFA_ADDRESS") for m in every if m["index"] == lo["index"]
    ]


def test_the_kernel_filters_an_address_dump_by_link_where_it_can() -> None:
    with rtnl.Rtnl() as ipr:
        try:
            ipr.sock.setsockopt(rtnl.SOL_NETLINK, rtnl.NETLINK_GET_STRICT_CHK, 0)
        except OSError:
            pytest.skip("a kernel before 4.20: no strict checking, the header filter serves")
        (lo,) = ipr.link("get", ifname="lo")
        others = {m["index"] for m in ipr.addr("dump")} - {lo["index"]}
        sent = ipr._address_dump(socket.AF_UNSPEC, lo["index"])
    assert others, "needs an address on a link other than lo"
    assert sent
    assert {struct.unpack_from("=I", body, 4)[0] for body in sent} == {lo["index"]}


def test_address_dump_of_a_link_that_is_gone_is_empty() -> None:
    with rtnl.Rtnl() as ipr:
        assert ipr.addr("dump", index=2**31 - 1) == []
        assert ipr.link("get", ifname="lo")  # the socket is still usable afterwards
        # strict checking was for that request only (on a kernel that has it)
        with contextlib.suppress(OSError):
            assert ipr.sock.getsockopt(rtnl.SOL_NETLINK, rtnl.NETLINK_GET_STRICT_CHK) == 0


class DumpSocket:
    """A kernel before 4.20, which has no strict checking and answers an address
    dump with every address: one multi-part datagram of `bodies` and NLMSG_DONE
    (carrying `errno` negated, as a dump the kernel gave up on does)."""

    def __init__(self, bodies: list[bytes], *, errno: int = 0) -> None:
        self.bodies = bodies
        self.errno = errno
        self.pending = b""

    def setsockopt(self, level: int, option: int, value: int) -> None:
        raise OSError(errno.ENOPROTOOPT, "Protocol not available")

    def send(self, data: bytes) -> int:
        seq = struct.unpack_from("=IHHII", data)[3]
        parts = [message(rtnl.RTM_NEWADDR, seq, body, flags=NLM_F_MULTI) for body in self.bodies]
        done = message(rtnl.NLMSG_DONE, seq, struct.pack("=i", -self.errno), flags=NLM_F_MULTI)
        self.pending = b"".join(parts) + done
        return len(data)

    def recv_into(self, buffer: bytearray, size: int, flags: int) -> int:
        return len(self.pending)

    def recv(self, size: int) -> bytes:
        data, self.pending = self.pending, b""
        return data

    def close(self) -> None:
        pass


def ifaddr(index: int, address: bytes) -> bytes:
    return struct.pack("=BBBBI", socket.AF_INET, 24, 0, 0, index) + rtnl.attr(
        rtnl.IFA["IFA_ADDRESS"], address
    )


def test_address_dump_for_one_link_decodes_no_other_links_entries() -> None:
    """Where the kernel cannot filter, a node's dump holds every pod veth's address;
    only the asked link's are decoded (an entry of link 7 that cannot be decoded
    shows it is skipped)."""
    ipr = fake_client(
        DumpSocket(
            [ifaddr(3, bytes([10, 0, 0, 1])), ifaddr(7, b"\x01"), ifaddr(3, bytes([10, 0, 1, 1]))]
        )
    )
    found = ipr.addr("dump", index=3)
    assert [(m["index"], m.get_attr("IFA_ADDRESS")) for m in found] == [
        (3, "10.0.0.1"),
        (3, "10.0.1.1"),
    ]
    with pytest.raises(ValueError):  # what decoding link 7's entry would have done
        ipr.addr("dump")


def test_a_dump_the_kernel_gave_up_on_is_an_error_not_a_short_answer() -> None:
    ipr = fake_client(DumpSocket([ifaddr(3, bytes([10, 0, 0, 1]))], errno=errno.EMSGSIZE))
    with pytest.raises(rtnl.NetlinkError) as caught:
        ipr.addr("dump")
    assert caught.value.code == errno.EMSGSIZE


class OverrunSocket:
    """A netlink socket whose link-group wait never sees the deletion (a burst of
    notifications overran it): `notify` says what the wait reads instead."""

    def __init__(self, *, notify: list[bytes | OSError], link_left: bool) -> None:
        self.notify = notify
        self.link_left = link_left
        self.sent: list[bytes] = []
        self.timeout: float | None = None
        self.pending: bytes | None = None  # peeked at, not yet read

    def setsockopt(self, *args: int) -> None:
        pass

    def settimeout(self, value: float | None) -> None:
        self.timeout = value

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)

    def _answer(self) -> bytes:
        if self.timeout is not None:  # the wait for the notification
            if self.notify and self.sent:  # nothing comes before the request went out
                item = self.notify.pop(0)
                if isinstance(item, OSError):
                    raise item
                return item
            time.sleep(0.001)
            raise TimeoutError
        seq = struct.unpack_from("=IHHII", self.sent[-1])[3]  # the GETLINK asked after
        if self.link_left:
            return message(rtnl.RTM_NEWLINK, seq, rtnl.ifinfomsg(index=7))
        return message(rtnl.NLMSG_ERROR, seq, struct.pack("=i", -errno.ENODEV) + bytes(16))

    def recv_into(self, buffer: bytearray, size: int, flags: int) -> int:
        assert flags == socket.MSG_PEEK | socket.MSG_TRUNC  # the client peeks at the size
        if self.pending is None:
            self.pending = self._answer()
        return len(self.pending)

    def recv(self, size: int) -> bytes:
        assert self.pending is not None and size == len(self.pending)
        data, self.pending = self.pending, None
        return data

    def close(self) -> None:
        pass


NLM_F_MULTI = 0x2


def message(kind: int, seq: int, body: bytes, *, flags: int = 0) -> bytes:
    """One netlink message, padded to 4 bytes as the kernel sends it."""
    padding = bytes(-len(body) % 4)
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body + padding


def fake_client(fake: object) -> rtnl.Rtnl:
    """A client talking to `fake` instead of the kernel."""
    ipr = rtnl.Rtnl()
    ipr.sock.close()
    ipr.sock = fake  # type: ignore[assignment]  # a fake socket
    return ipr


def overrun(notify: list[bytes | OSError], *, link_left: bool) -> tuple[rtnl.Rtnl, OverrunSocket]:
    fake = OverrunSocket(notify=notify, link_left=link_left)
    return fake_client(fake), fake


def test_a_deletion_whose_ack_was_overrun_asks_the_kernel_and_succeeds_when_gone() -> None:
    ipr, fake = overrun([], link_left=False)
    ipr.link("del", ifname="net1")  # neither notification nor ACK: GETLINK says ENODEV
    kinds = [struct.unpack_from("=IHHII", sent)[1] for sent in fake.sent]
    assert kinds == [rtnl.RTM_DELLINK, rtnl.RTM_GETLINK]


def test_a_deletion_whose_ack_was_overrun_fails_when_the_link_is_still_there() -> None:
    ipr, _ = overrun([], link_left=True)
    with pytest.raises(rtnl.NetlinkError) as info:
        ipr.link("del", ifname="net1")
    assert info.value.code == errno.EIO


def test_an_overrun_before_the_notification_is_read_past() -> None:
    name = rtnl.attr(rtnl.IFLA["IFLA_IFNAME"], b"net1\0")
    gone = message(rtnl.RTM_DELLINK, 0, rtnl.ifinfomsg(index=9) + name)
    other = message(rtnl.RTM_DELLINK, 0, rtnl.ifinfomsg(index=8) + rtnl.attr(3, b"net2\0"))
    ipr, fake = overrun([OSError(errno.ENOBUFS, "overrun"), other, gone], link_left=True)
    ipr.link("del", ifname="net1")  # returns at net1's notification, never asks
    assert [struct.unpack_from("=IHHII", sent)[1] for sent in fake.sent] == [rtnl.RTM_DELLINK]
