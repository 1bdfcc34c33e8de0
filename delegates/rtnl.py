"""A small rtnetlink client for the link plugins' hot path: links, addresses, routes.

Speaks the subset of pyroute2's `IPRoute` call interface the link plugins use
(`link`, `addr`, `route`, `brport`, `vlan_filter`; messages with `get_attr`
and item access), with plain `struct` encoding: ~10 us a request against
~600 us through pyroute2's generic machinery, which was most of an in-process
ADD. `vfcontrol` adds SR-IOV VF attributes on top. Linux rtnetlink(7).
"""

from __future__ import annotations

import _thread
import errno
import itertools
import os
import socket
import struct
from collections.abc import Iterator, Mapping
from typing import Any

# nlmsghdr types and flags
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
F_REQUEST, F_ACK, F_DUMP = 0x1, 0x4, 0x300
F_EXCL, F_CREATE, F_APPEND = 0x200, 0x400, 0x800
NLA_F_NESTED = 0x8000
AF_UNSPEC, AF_INET, AF_BRIDGE, AF_INET6 = 0, 2, 7, 10
IFF_UP = 0x1

IFLA = {
    "IFLA_ADDRESS": 1,
    "IFLA_BROADCAST": 2,
    "IFLA_IFNAME": 3,
    "IFLA_MTU": 4,
    "IFLA_LINK": 5,
    "IFLA_MASTER": 10,
    "IFLA_PROTINFO": 12,
    "IFLA_TXQLEN": 13,
    "IFLA_OPERSTATE": 16,
    "IFLA_LINKINFO": 18,
    "IFLA_IFALIAS": 20,
    "IFLA_AF_SPEC": 26,
    "IFLA_NET_NS_FD": 28,
    "IFLA_LINK_NETNSID": 37,
}
IFLA_NAMES = {v: k for k, v in IFLA.items()}
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4
IFLA_BRIDGE_VLAN_INFO = 2
BRIDGE_VLAN_FLAGS = {"master": 1, "pvid": 2, "untagged": 4}
IFA = {"IFA_ADDRESS": 1, "IFA_LOCAL": 2, "IFA_LABEL": 3, "IFA_BROADCAST": 4, "IFA_FLAGS": 8}
IFA_NAMES = {v: k for k, v in IFA.items()}
RTA = {
    "RTA_DST": 1,
    "RTA_OIF": 4,
    "RTA_GATEWAY": 5,
    "RTA_PRIORITY": 6,
    "RTA_PREFSRC": 7,
    "RTA_METRICS": 8,
    "RTA_MULTIPATH": 9,
    "RTA_TABLE": 15,
}
RTA_NAMES = {v: k for k, v in RTA.items()}
RTAX = {"mtu": 2, "advmss": 8}
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
MACVLAN_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8, "source": 16}
MACVLAN_NAMES = {v: k for k, v in MACVLAN_MODES.items()}
# IFLA_INFO_DATA keys decoded per kind: (type, name, format)
INFO_DATA = {
    "bridge": {7: ("IFLA_BR_VLAN_FILTERING", "B")},
    "macvlan": {1: ("IFLA_MACVLAN_MODE", "I")},
    "ipvlan": {1: ("IFLA_IPVLAN_MODE", "H")},
}
# A peek at a datagram's size. One byte: Python skips the call for an empty
# buffer. Shared by all threads; what lands in it is never read.
_PEEK = bytearray(1)
SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NETLINK_DROP_MEMBERSHIP = 270, 1, 2
NETLINK_GET_STRICT_CHK = 12  # Linux 4.20: dump requests' headers are filters
RTNLGRP_LINK = 1
WAIT_POLL = 0.05  # s: how often a wait for a notification looks at its sender


class NetlinkError(OSError):
    """A kernel refusal; `.code` is the errno, as pyroute2's NetlinkError has it."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(code, message or os.strerror(code))
        self.code = code


class Msg(dict[str, Any]):
    """A decoded message: header fields by item, attributes by `get_attr`."""

    def __init__(self, fields: Mapping[str, Any], attrs: list[tuple[str, Any]]) -> None:
        super().__init__(fields)
        self.attrs = attrs

    def get_attr(self, name: str) -> Any:
        for key, value in self.attrs:
            if key == name:
                return value
        return None

    def get_attrs(self, name: str) -> list[Any]:
        return [value for key, value in self.attrs if key == name]


# --- encoding ------------------------------------------------------------


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def attr(kind: int, payload: bytes) -> bytes:
    return _pad(struct.pack("=HH", 4 + len(payload), kind) + payload)


def nested(kind: int, *parts: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(parts))


def _mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def _ip(text: str) -> tuple[int, bytes]:
    family = AF_INET6 if ":" in text else AF_INET
    return family, socket.inet_pton(family, text)


def _str(text: str) -> bytes:
    return text.encode() + b"\0"


def ifinfomsg(*, family: int = AF_UNSPEC, index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("=BxHiII", family, 0, index, flags, change)


def _link_attrs(kw: Mapping[str, Any]) -> bytes:
    out = b""
    if "ifname" in kw:
        out += attr(IFLA["IFLA_IFNAME"], _str(kw["ifname"]))
    if kw.get("address"):
        out += attr(IFLA["IFLA_ADDRESS"], _mac(kw["address"]))
    if kw.get("mtu"):
        out += attr(IFLA["IFLA_MTU"], struct.pack("=I", kw["mtu"]))
    if "txqlen" in kw:
        out += attr(IFLA["IFLA_TXQLEN"], struct.pack("=I", kw["txqlen"]))
    if kw.get("link"):
        out += attr(IFLA["IFLA_LINK"], struct.pack("=I", kw["link"]))
    if "master" in kw:
        out += attr(IFLA["IFLA_MASTER"], struct.pack("=I", kw["master"]))
    if "net_ns_fd" in kw:
        out += attr(IFLA["IFLA_NET_NS_FD"], struct.pack("=I", kw["net_ns_fd"]))
    if "ifalias" in kw:
        out += attr(IFLA["IFLA_IFALIAS"], _str(kw["ifalias"]))
    kind = kw.get("kind")
    if kind:
        out += nested(
            IFLA["IFLA_LINKINFO"], attr(IFLA_INFO_KIND, _str(kind)) + _info_data(kind, kw)
        )
    return out


def _info_data(kind: str, kw: Mapping[str, Any]) -> bytes:
    data = b""
    if kind == "veth" and "peer" in kw:
        peer = kw["peer"]
        data = nested(VETH_INFO_PEER, ifinfomsg() + _link_attrs(peer))
    elif kind == "macvlan" and "macvlan_mode" in kw:
        mode = kw["macvlan_mode"]
        value = MACVLAN_MODES[mode] if isinstance(mode, str) else int(mode)
        data = attr(1, struct.pack("=I", value))
    elif kind == "ipvlan" and "ipvlan_mode" in kw:
        data = attr(1, struct.pack("=H", int(kw["ipvlan_mode"])))
    elif kind == "bridge" and "br_vlan_filtering" in kw:
        data = attr(7, struct.pack("=B", int(kw["br_vlan_filtering"])))
    return nested(IFLA_INFO_DATA, data) if data else b""


# --- decoding ------------------------------------------------------------


def _attrs(data: bytes, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    end = len(data)
    while offset + 4 <= end:
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            return
        yield kind & ~NLA_F_NESTED & 0x7FFF, data[offset + 4 : offset + length]
        offset += (length + 3) & ~3


def _cstr(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode(errors="replace")


def _u32(payload: bytes) -> int:
    return int(struct.unpack_from("=I", payload)[0])


def _decode_link(body: bytes) -> Msg:
    family, kind, index, flags, change = struct.unpack_from("=BxHiII", body)
    attrs: list[tuple[str, Any]] = []
    for key, payload in _attrs(body, 16):
        name = IFLA_NAMES.get(key)
        if name is None:
            continue
        value: Any
        if name in ("IFLA_IFNAME", "IFLA_IFALIAS"):
            value = _cstr(payload)
        elif name in ("IFLA_ADDRESS", "IFLA_BROADCAST"):
            value = ":".join(f"{b:02x}" for b in payload)
        elif name == "IFLA_OPERSTATE":
            value = OPERSTATES[payload[0]] if payload[0] < len(OPERSTATES) else "UNKNOWN"
        elif name == "IFLA_LINKINFO":
            value = _decode_linkinfo(payload)
        elif name in ("IFLA_PROTINFO", "IFLA_AF_SPEC"):
            continue
        else:
            value = _u32(payload)
        attrs.append((name, value))
    fields = {"family": family, "ifi_type": kind, "index": index, "flags": flags, "change": change}
    return Msg(fields, attrs)


def _decode_linkinfo(payload: bytes) -> Msg:
    attrs: list[tuple[str, Any]] = []
    kind = ""
    raw_data = b""
    for key, value in _attrs(payload):
        if key == IFLA_INFO_KIND:
            kind = _cstr(value)
            attrs.append(("IFLA_INFO_KIND", kind))
        elif key == IFLA_INFO_DATA:
            raw_data = value
    if raw_data and kind in INFO_DATA:
        known = INFO_DATA[kind]
        data: list[tuple[str, Any]] = []
        for key, value in _attrs(raw_data):
            if key in known:
                name, fmt = known[key]
                number = struct.unpack_from("=" + fmt, value)[0]
                data.append(
                    (name, MACVLAN_NAMES.get(number, number) if kind == "macvlan" else number)
                )
        attrs.append(("IFLA_INFO_DATA", Msg({}, data)))
    return Msg({}, attrs)


_IFA_INDEX = struct.Struct("=I")  # ifaddrmsg.ifa_index, at offset 4


def _decode_addr(body: bytes) -> Msg:
    family, prefixlen, flags, scope, index = struct.unpack_from("=BBBBI", body)
    attrs: list[tuple[str, Any]] = []
    for key, payload in _attrs(body, 8):
        name = IFA_NAMES.get(key)
        if name in ("IFA_ADDRESS", "IFA_LOCAL", "IFA_BROADCAST"):
            attrs.append((name, socket.inet_ntop(family, payload)))
        elif name == "IFA_LABEL":
            attrs.append((name, _cstr(payload)))
        elif name == "IFA_FLAGS":
            attrs.append((name, _u32(payload)))
    fields = {"family": family, "prefixlen": prefixlen, "flags": flags, "scope": scope}
    fields["index"] = index
    return Msg(fields, attrs)


def _decode_route(body: bytes) -> Msg:
    family, dst_len, src_len, tos, table, proto, scope, rtype, flags = struct.unpack_from(
        "=BBBBBBBBI", body
    )
    attrs: list[tuple[str, Any]] = []
    for key, payload in _attrs(body, 12):
        name = RTA_NAMES.get(key)
        if name in ("RTA_DST", "RTA_GATEWAY", "RTA_PREFSRC"):
            attrs.append((name, socket.inet_ntop(family, payload)))
        elif name in ("RTA_OIF", "RTA_PRIORITY", "RTA_TABLE"):
            attrs.append((name, _u32(payload)))
        elif name == "RTA_MULTIPATH":
            attrs.append((name, _decode_hops(family, payload)))
    fields = {
        "family": family,
        "dst_len": dst_len,
        "src_len": src_len,
        "tos": tos,
        "table": table,
        "proto": proto,
        "scope": scope,
        "type": rtype,
        "flags": flags,
    }
    return Msg(fields, attrs)


def _decode_hops(family: int, payload: bytes) -> list[Msg]:
    hops = []
    offset = 0
    while offset + 8 <= len(payload):
        length, flags, hops_n, ifindex = struct.unpack_from("=HBBi", payload, offset)
        if length < 8:
            break
        attrs = [
            ("RTA_GATEWAY", socket.inet_ntop(family, value))
            for key, value in _attrs(payload[offset + 8 : offset + length])
            if key == RTA["RTA_GATEWAY"]
        ]
        hops.append(Msg({"oif": ifindex, "flags": flags, "hops": hops_n}, attrs))
        offset += (length + 3) & ~3
    return hops


# --- the client ------------------------------------------------------------


class Rtnl:
    """One NETLINK_ROUTE socket (ours, or a pod's fd handed over by the netns agent)."""

    def __init__(self, fileno: int | None = None) -> None:
        if fileno is None:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        else:
            self.sock = socket.socket(fileno=fileno)
        self.sock.bind((0, 0))
        self._seq = itertools.count(1)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recv(self) -> bytes:
        """The next datagram, read at its own size (asked first with a peek):
        a fixed megabyte-sized `recv` maps and unmaps that megabyte for every
        reply, ~40 of the ~90 us a request takes."""
        size = self.sock.recv_into(_PEEK, 1, socket.MSG_PEEK | socket.MSG_TRUNC)
        return self.sock.recv(max(size, 1))

    def _request(self, kind: int, flags: int, body: bytes) -> list[bytes]:
        """Send one request; the bodies of the replies (dump or single), or [] on ACK."""
        seq = next(self._seq)
        header = struct.pack("=IHHII", 16 + len(body), kind, flags | F_REQUEST, seq, 0)
        self.sock.send(header + body)
        bodies: list[bytes] = []
        while True:
            data = self._recv()
            offset = 0
            while offset + 16 <= len(data):
                length, mtype, mflags, mseq, _ = struct.unpack_from("=IHHII", data, offset)
                body_bytes = data[offset + 16 : offset + length]
                offset += (length + 3) & ~3
                if mseq != seq:
                    continue  # a stale reply of an earlier request
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", body_bytes)[0]
                    if code:
                        raise NetlinkError(code)
                    return bodies
                if mtype == NLMSG_DONE:
                    # A dump the kernel gave up on says why here: never a short answer.
                    if len(body_bytes) >= 4 and (code := -struct.unpack_from("=i", body_bytes)[0]):
                        raise NetlinkError(code)
                    return bodies
                bodies.append(body_bytes)
                if not mflags & 0x2 and not flags & F_ACK:  # single reply, no ACK asked
                    return bodies

    # links
    def link(self, command: str, **kw: Any) -> list[Msg]:
        if command == "get":
            body = ifinfomsg(index=kw.get("index", 0))
            if "ifname" in kw:
                body += attr(IFLA["IFLA_IFNAME"], _str(kw["ifname"]))
            return [_decode_link(b) for b in self._request(RTM_GETLINK, 0, body)]
        if command == "dump":
            return [_decode_link(b) for b in self._request(RTM_GETLINK, F_DUMP, ifinfomsg())]
        if command == "del":
            index = kw.get("index", 0)
            body = ifinfomsg(index=index)
            if "ifname" in kw:
                body += attr(IFLA["IFLA_IFNAME"], _str(kw["ifname"]))
            self._delete_link(body, index=index, ifname=kw.get("ifname", ""))
            return []
        if command == "add":
            body = ifinfomsg() + _link_attrs(kw)
            self._request(RTM_NEWLINK, F_ACK | F_CREATE | F_EXCL, body)
            return []
        if command == "set":
            flags = change = 0
            if "state" in kw:
                flags, change = (IFF_UP if kw["state"] == "up" else 0), IFF_UP
            if "flags" in kw:
                flags, change = flags | kw["flags"], change | kw.get("mask", kw["flags"])
            rest = {k: v for k, v in kw.items() if k not in ("index", "state", "flags", "mask")}
            body = ifinfomsg(index=kw["index"], flags=flags, change=change) + _link_attrs(rest)
            self._request(RTM_NEWLINK, F_ACK, body)
            return []
        raise ValueError(f"unsupported link command {command!r}")

    def _delete_link(self, body: bytes, *, index: int, ifname: str) -> None:
        """RTM_DELLINK that returns once the kernel has unregistered the link.

        The kernel acknowledges a deletion only after an RCU barrier and the
        device's last references: 10-50 ms, most of a DEL, while the link left
        the namespace (and its RTM_DELLINK notification went out) within a
        millisecond. So the request goes out from a thread, this socket joins
        the link group while it waits, and the call returns at the notification
        of our link, or raises the request's error (ENODEV: there was none). The
        late ACK carries this request's sequence number: later requests skip it,
        as they skip notifications queued before the group was left.
        """
        seq = next(self._seq)
        request = struct.pack("=IHHII", 16 + len(body), RTM_DELLINK, F_REQUEST | F_ACK, seq, 0)
        request += body
        outcome: list[BaseException | None] = []

        def send() -> None:  # blocks in the kernel until the ACK is queued
            try:
                self.sock.send(request)
            except BaseException as exc:  # handed to the waiting caller
                outcome.append(exc)
            else:
                outcome.append(None)

        self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_LINK)
        try:
            self.sock.settimeout(WAIT_POLL)
            _thread.start_new_thread(send, ())  # no `threading`: binaries use this too
            if self._wait_deleted(seq, outcome, index=index, ifname=ifname):
                return
        finally:
            self.sock.settimeout(None)
            self.sock.setsockopt(SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, RTNLGRP_LINK)
        # The request went through but neither its notification nor its ACK
        # came: a burst of notifications overran the socket. Ask the kernel
        # (the same ifinfomsg and name select the link for a GETLINK).
        try:
            self._request(RTM_GETLINK, 0, body)
        except NetlinkError as exc:
            if exc.errno == errno.ENODEV:
                return  # gone, as asked
            raise
        raise NetlinkError(errno.EIO, "link deletion not acknowledged and the link is still there")

    def _wait_deleted(
        self, seq: int, outcome: list[BaseException | None], *, index: int, ifname: str
    ) -> bool:
        """True at our link's RTM_DELLINK notification or a good ACK; raises the
        request's error; False when the request completed and nothing came."""
        waited_after_send = False
        while True:
            try:
                data = self._recv()
            except TimeoutError:
                if outcome and outcome[0] is not None:
                    raise outcome[0] from None
                if outcome and waited_after_send:
                    return False  # sent a poll ago: its ACK was lost with the overrun
                waited_after_send = bool(outcome)
                continue  # the ACK is still to come
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # notifications overran the buffer
                    continue
                raise
            for mtype, mseq, reply in _messages(data):
                if mtype == NLMSG_ERROR and mseq == seq:
                    code = -struct.unpack_from("=i", reply)[0]
                    if code:
                        raise NetlinkError(code)
                    return True  # acknowledged before a notification was read
                if mtype == RTM_DELLINK and _is_link(reply, index=index, ifname=ifname):
                    return True

    def link_raw(self, index: int, extra: bytes = b"") -> bytes:
        """RTM_GETLINK of one link, undecoded (ifinfomsg + attributes)."""
        (body,) = self._request(RTM_GETLINK, 0, ifinfomsg(index=index) + extra)
        return body

    def set_link_raw(self, index: int, attrs: bytes) -> None:
        """RTM_SETLINK with attributes the caller encoded (e.g. IFLA_VFINFO_LIST)."""
        self._request(RTM_SETLINK, F_ACK, ifinfomsg(index=index) + attrs)

    def brport(self, command: str, *, index: int, mode: int) -> None:
        if command != "set":
            raise ValueError(f"unsupported brport command {command!r}")
        slave = attr(IFLA_INFO_SLAVE_KIND, _str("bridge")) + nested(
            IFLA_INFO_SLAVE_DATA, attr(IFLA_BRPORT_MODE, struct.pack("=B", mode))
        )
        body = ifinfomsg(index=index) + nested(IFLA["IFLA_LINKINFO"], slave)
        self._request(RTM_NEWLINK, F_ACK, body)

    def vlan_filter(self, command: str, *, index: int, vlan_info: Mapping[str, Any]) -> None:
        if command != "add":
            raise ValueError(f"unsupported vlan_filter command {command!r}")
        flags = sum(BRIDGE_VLAN_FLAGS[f] for f in vlan_info.get("flags", ()))
        info = attr(IFLA_BRIDGE_VLAN_INFO, struct.pack("=HH", flags, vlan_info["vid"]))
        body = ifinfomsg(family=AF_BRIDGE, index=index) + nested(IFLA["IFLA_AF_SPEC"], info)
        self._request(RTM_SETLINK, F_ACK, body)

    # addresses
    def addr(self, command: str, **kw: Any) -> list[Msg]:
        if command == "dump":
            index = kw.get("index")
            bodies = self._address_dump(kw.get("family", AF_UNSPEC), index)
            # Before 4.20 every address of the netns comes back (a node's every pod
            # veth has its link-local one): the header's ifa_index picks before decoding.
            return [
                _decode_addr(b)
                for b in bodies
                if index is None or _IFA_INDEX.unpack_from(b, 4)[0] == index
            ]
        family, packed = _ip(kw["address"])
        body = struct.pack("=BBBBI", family, kw["prefixlen"], 0, 0, kw["index"])
        body += attr(IFA["IFA_LOCAL"], packed) + attr(IFA["IFA_ADDRESS"], packed)
        if kw.get("broadcast"):
            body += attr(IFA["IFA_BROADCAST"], _ip(kw["broadcast"])[1])
        if command == "add":
            self._request(RTM_NEWADDR, F_ACK | F_CREATE | F_EXCL, body)
        elif command == "del":
            self._request(RTM_DELADDR, F_ACK, body)
        else:
            raise ValueError(f"unsupported addr command {command!r}")
        return []

    def _address_dump(self, family: int, index: int | None) -> list[bytes]:
        """The address dump, of one link when `index` is given: filtered by the
        kernel where it can (strict checking, asked for this request only: other
        requests are not written for its rules). A link gone meanwhile has none."""
        body = struct.pack("=BBBBI", family, 0, 0, 0, index or 0)
        strict = False
        if index is not None:
            try:
                self.sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
                strict = True
            except OSError:  # an older kernel: it ignores ifa_index and sends them all
                pass
        try:
            return self._request(RTM_GETADDR, F_DUMP, body)
        except NetlinkError as exc:
            if index is not None and exc.code == errno.ENODEV:
                return []
            raise
        finally:
            if strict:
                self.sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 0)

    # routes
    def route(self, command: str, **kw: Any) -> list[Msg]:
        if command == "dump":
            family = kw.get("family", AF_UNSPEC)
            body = struct.pack("=BBBBBBBBI", family, 0, 0, 0, 0, 0, 0, 0, 0)
            found = [_decode_route(b) for b in self._request(RTM_GETROUTE, F_DUMP, body)]
            table = kw.get("table")
            return [m for m in found if table is None or _table(m) == table]
        if command not in ("add", "append"):
            raise ValueError(f"unsupported route command {command!r}")
        family = kw["family"]
        table = kw.get("table", 254)
        scope = kw.get("scope", 0)  # universe, as the reference (Go netlink) leaves it
        body = struct.pack(
            "=BBBBBBBBI",
            family,
            kw["dst_len"],
            0,
            0,
            table if table < 256 else 252,
            kw.get("proto", 3),
            scope,
            1,
            0,
        )
        if kw["dst_len"]:
            body += attr(RTA["RTA_DST"], socket.inet_pton(family, kw["dst"]))
        if kw.get("gateway"):
            body += attr(RTA["RTA_GATEWAY"], socket.inet_pton(family, kw["gateway"]))
        body += attr(RTA["RTA_OIF"], struct.pack("=I", kw["oif"]))
        if kw.get("priority") is not None:
            body += attr(RTA["RTA_PRIORITY"], struct.pack("=I", kw["priority"]))
        if table >= 256:
            body += attr(RTA["RTA_TABLE"], struct.pack("=I", table))
        metrics = kw.get("metrics") or {}
        if metrics:
            inner = b"".join(attr(RTAX[k], struct.pack("=I", v)) for k, v in metrics.items())
            body += nested(RTA["RTA_METRICS"], inner)
        flags = F_ACK | F_CREATE | (F_APPEND if command == "append" else F_EXCL)
        self._request(RTM_NEWROUTE, flags, body)
        return []


def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, sequence number, body) of each netlink message in a datagram."""
    offset = 0
    while offset + 16 <= len(data):
        length, mtype, _, mseq, _ = struct.unpack_from("=IHHII", data, offset)
        yield mtype, mseq, data[offset + 16 : offset + length]
        offset += (length + 3) & ~3


def _is_link(body: bytes, *, index: int, ifname: str) -> bool:
    """An ifinfomsg body names the link asked for (by index, else by name)."""
    if len(body) < 16:
        return False
    if index:
        return bool(struct.unpack_from("=i", body, 4)[0] == index)
    return any(
        kind == IFLA["IFLA_IFNAME"] and _cstr(payload) == ifname
        for kind, payload in _attrs(body, 16)
    )


def _table(msg: Msg) -> int:
    table = msg.get_attr("RTA_TABLE")
    return int(table) if table is not None else int(msg["table"])
