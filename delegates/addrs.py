"""Putting an IPAM result on a pod interface, and checking it is still there.

The reference's `ipam.ConfigureIface` and CHECK validators, over netlink:
addresses of the result's IPs that point at the interface, routes with the
family's gateway when a route has none, IPv6 enabled and settled (DAD) before
routes. Called by bridge, macvlan, ipvlan, host-device and sriov (SPEC.md
"Result", "CHECK").
"""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Callable
from typing import Any

from jaring.cni.errors import CniError, Code
from jaring.cni.types import IPConfig, Result, Route

from . import links, netns
from .netns import Netlink

IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
IFF_LOWER_UP = 0x10000
SETTLE_TIMEOUT = 10.0

EnableIpv6 = Callable[[str, str], None]


def pod_sysctl(netns_path: str, settings: dict[str, str]) -> None:
    """Write sysctls inside the pod's netns (a forked child enters it; we never setns)."""
    netns.pod_sysctl(netns_path, settings)


def enable_ipv6_in_netns(netns_path: str, ifname: str) -> None:
    """Clear disable_ipv6 for lo and `ifname` inside the pod (rare: only when set)."""
    pod_sysctl(
        netns_path,
        {f"net.ipv6.conf.{dev}.disable_ipv6": "0" for dev in ("lo", ifname)},
    )


def add_address(ipr: Netlink, index: int, cidr: str) -> None:
    """Add an address the way the reference does (IPv4 gets its broadcast)."""
    iface = ipaddress.ip_interface(cidr)
    extra: dict[str, Any] = {}
    if iface.version == 4 and iface.network.prefixlen < 31:
        extra["broadcast"] = str(iface.network.broadcast_address)
    ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen, **extra)


def _ips_for(result: Result, *, iface_index: int, ifname: str) -> list[IPConfig]:
    chosen = []
    for ipc in result.ips:
        if ipc.interface is None:
            continue
        if ipc.interface >= len(result.interfaces) or (
            result.interfaces[ipc.interface].name != ifname
        ):
            raise CniError(
                Code.OTHER,
                f"failed to add IP addr {ipc.address} to {ifname!r}: invalid interface index",
            )
        if ipc.interface == iface_index:
            chosen.append(ipc)
    return chosen


def _family_gateways(ips: list[IPConfig]) -> dict[int, str]:
    gws: dict[int, str] = {}
    for ipc in ips:
        if ipc.gateway:
            gws.setdefault(ipaddress.ip_address(ipc.gateway).version, ipc.gateway)
    return gws


def _route_args(route: Route, gw: str) -> dict[str, Any]:
    net = ipaddress.ip_network(route.dst, strict=False)
    args: dict[str, Any] = {"dst": str(net.network_address), "dst_len": net.prefixlen}
    args["family"] = 10 if net.version == 6 else 2
    args["proto"] = 3  # RTPROT_BOOT, what the reference (Go netlink) leaves by default
    if gw:
        args["gateway"] = gw
    if route.priority is not None:
        args["priority"] = route.priority
    if route.table is not None:
        args["table"] = route.table
    if route.scope is not None:
        args["scope"] = route.scope
    metrics = {}
    if route.mtu is not None:
        metrics["mtu"] = route.mtu
    if route.advmss is not None:
        metrics["advmss"] = route.advmss
    if metrics:
        args["metrics"] = metrics
    return args


def configure_iface(
    ipr: Netlink,
    *,
    netns_path: str,
    ifname: str,
    result: Result,
    iface_index: int,
    enable_ipv6: EnableIpv6 = enable_ipv6_in_netns,
    link: links.Link | None = None,
) -> None:
    """Bring `ifname` up with the result's addresses and routes (ConfigureIface).

    `link`: the caller's fresh snapshot of `ifname`, saving a lookup.
    """
    link = link or links.require(ipr, ifname)
    links.set_up(ipr, link.index)
    ips = _ips_for(result, iface_index=iface_index, ifname=ifname)
    v6_enabled = False
    for ipc in ips:
        addr = ipaddress.ip_interface(ipc.address)
        if addr.version == 6 and not v6_enabled:
            v6_enabled = True
        try:
            add_address(ipr, link.index, ipc.address)
        except Exception as exc:  # EACCES: IPv6 disabled in the pod; enable and retry once
            if addr.version == 6 and links.netlink_errno(exc) == errno.EACCES:
                enable_ipv6(netns_path, ifname)
                add_address(ipr, link.index, ipc.address)
            else:
                raise CniError(
                    Code.OTHER, f"failed to add IP addr {ipc.address} to {ifname!r}", str(exc)
                ) from None
    gws = _family_gateways(ips)
    if 6 in gws and _has_carrier(ipr, link.index):
        # Without carrier DAD never ends; the reference waits its full 10 s for nothing.
        settle(ipr, link.index, ifname)
    for route in result.routes:
        version = ipaddress.ip_network(route.dst, strict=False).version
        gw = route.gw or gws.get(version, "")
        try:
            ipr.route("append", oif=link.index, **_route_args(route, gw))
        except Exception as exc:  # netlink errors become the reference's message
            raise CniError(
                Code.OTHER,
                f"failed to add route '{route.dst} via {gw or '-'} dev {ifname}'",
                str(exc),
            ) from None


def _has_carrier(ipr: Netlink, index: int) -> bool:
    link = links.by_index(ipr, index)
    return link is not None and bool(link.flags & IFF_LOWER_UP)


def settle(ipr: Netlink, index: int, ifname: str, timeout: float = SETTLE_TIMEOUT) -> bool:
    """Wait until the link's IPv6 addresses finished DAD (ip.SettleAddresses).

    False on timeout: like the reference, a link without carrier (DAD never
    runs) still gets its routes; the caller does not fail the ADD for it.
    """

    def settled() -> bool:
        for msg in ipr.addr("dump", index=index, family=10):
            flags = msg.get_attr("IFA_FLAGS") or msg["flags"]
            if flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
                return False
        return True

    try:
        links.wait_for(settled, timeout=timeout, what=f"IPv6 addresses on {ifname} to settle")
    except CniError:
        return False
    return True


def addresses(ipr: Netlink, index: int) -> set[str]:
    """The link's global/site addresses as 'ip/prefix' strings (no link-local)."""
    out = set()
    for msg in ipr.addr("dump", index=index):
        address = msg.get_attr("IFA_ADDRESS") or msg.get_attr("IFA_LOCAL")
        iface = ipaddress.ip_interface(f"{address}/{msg['prefixlen']}")
        if iface.version == 6 and iface.ip.is_link_local:
            continue
        out.add(iface.with_prefixlen)
    return out


def _routes(ipr: Netlink, index: int, table: int = 254) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for family in (2, 10):
        for msg in ipr.route("dump", family=family, table=table):
            if msg.get_attr("RTA_OIF") != index and not _multipath_has(msg, index):
                continue
            dst = msg.get_attr("RTA_DST") or ("0.0.0.0" if family == 2 else "::")
            net = ipaddress.ip_network(f"{dst}/{msg['dst_len']}", strict=False)
            gw = msg.get_attr("RTA_GATEWAY") or ""
            found.add((str(net), gw))
            for hop in msg.get_attr("RTA_MULTIPATH") or ():
                found.add((str(net), hop.get_attr("RTA_GATEWAY") or ""))
    return found


def _multipath_has(msg: Any, index: int) -> bool:
    return any(hop["oif"] == index for hop in msg.get_attr("RTA_MULTIPATH") or ())


def check_iface(ipr: Netlink, *, ifname: str, result: Result, iface_index: int) -> links.Link:
    """CHECK: the link exists, is up, has the result's addresses and routes."""
    link = links.get(ipr, ifname)
    if link is None:
        raise CniError(Code.OTHER, f"CHECK: interface {ifname!r} not found in the pod")
    have = addresses(ipr, link.index)
    ips = _ips_for(result, iface_index=iface_index, ifname=ifname)
    for ipc in ips:
        want = ipaddress.ip_interface(ipc.address).with_prefixlen
        if want not in have:
            raise CniError(
                Code.OTHER, f"CHECK: address {want} missing on {ifname!r}", str(sorted(have))
            )
    gws = _family_gateways(ips)
    tables: dict[int, set[tuple[str, str]]] = {}
    for route in result.routes:
        table = route.table if route.table is not None else 254
        if table not in tables:
            tables[table] = _routes(ipr, link.index, table)
        routes = tables[table]
        net = ipaddress.ip_network(route.dst, strict=False)
        gw = route.gw or gws.get(net.version, "")
        if (str(net), gw) not in routes and (str(net), "") not in routes:
            raise CniError(
                Code.OTHER, f"CHECK: route {route.dst} via {gw or '-'} missing on {ifname!r}"
            )
    return link


def write_sysctl(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(value)


def enable_forwarding(families: set[int], write: Callable[[str, str], None] = write_sysctl) -> None:
    """Turn on host forwarding for the families that have a gateway (bridge isGateway)."""
    if 4 in families:
        write("/proc/sys/net/ipv4/ip_forward", "1")
    if 6 in families:
        write("/proc/sys/net/ipv6/conf/all/forwarding", "1")
