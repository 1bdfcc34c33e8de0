"""Links stacked on a host master and living in the pod: macvlan and ipvlan.

One implementation of the reference macvlan/ipvlan plugins' shared shape:
resolve the master (default: the interface of the host's default route),
validate the MTU against it, create the link straight into the pod under a
temporary name, rename it there, configure IPAM, undo on failure; DEL deletes
the pod's link and tolerates its absence (SPEC.md "ADD", "DEL", "CHECK").
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from jaring.cni import version as versions
from jaring.cni.errors import CniError, Code
from jaring.cni.plugin import Request
from jaring.cni.records import replace
from jaring.cni.types import Interface, Result

from . import addrs, attach, links, netns
from .netns import Netlink
from .options import ipam_conf, opt_int, opt_str, requested_mac


@dataclass(frozen=True)
class Flavour:
    """What differs between macvlan and ipvlan."""

    kind: str  # netlink kind
    mode_key: str  # pyroute2 attribute for the mode
    modes: Mapping[str, Any]  # config value -> netlink value
    default_mode: str
    with_mac: bool  # macvlan takes a MAC; ipvlan shares the master's
    arp_notify: bool  # macvlan sets net.ipv4.conf.<if>.arp_notify=1 like the reference
    chained_master: bool  # ipvlan may take its master from prevResult
    mtu_capped_by_master: bool  # macvlan refuses mtu > master's; ipvlan leaves it to the kernel


@dataclass(frozen=True)
class SubConf:
    network: str
    master: str
    mode: str
    mtu: int
    mac: str
    ipam: Mapping[str, Any]


def default_route_interface(host: Netlink) -> str:
    """The interface of the first default route, as the reference picks it."""
    for family in (2, 10):
        for msg in host.route("dump", family=family, table=254):
            if msg["dst_len"] == 0 and msg.get_attr("RTA_OIF"):
                link = links.by_index(host, msg.get_attr("RTA_OIF"))
                if link is not None:
                    return link.name
    raise CniError(Code.INVALID_CONFIG, "no default route interface found", "set 'master'")


class SubLinkPlugin:
    """macvlan or ipvlan, by `Flavour`; IPAM and sysctl writer are parameters."""

    supported_versions: tuple[str, ...] = versions.SUPPORTED

    def __init__(
        self,
        flavour: Flavour,
        *,
        ipam: attach.Ipam | None = None,
        pod_sysctl: Callable[[str, dict[str, str]], None] = addrs.pod_sysctl,
    ) -> None:
        self.flavour = flavour
        self.ipam = ipam or attach.Ipam()
        self.pod_sysctl = pod_sysctl

    def parse(self, req: Request, host: Netlink | None) -> SubConf:
        """The config; without `host` (DEL) nothing ADD-only is resolved or refused."""
        conf = req.config
        mode = opt_str(conf, "mode", self.flavour.default_mode) or self.flavour.default_mode
        if mode not in self.flavour.modes and host is not None:
            raise CniError(
                Code.INVALID_CONFIG,
                f"unknown {self.flavour.kind} mode: {mode}",
                f"one of {', '.join(self.flavour.modes)}",
            )
        master = opt_str(conf, "master")
        if not master and host is not None:
            master = self._chained_master(req) or default_route_interface(host)
        return SubConf(
            network=attach.network_name(req),
            master=master,
            mode=mode,
            mtu=opt_int(conf, "mtu"),
            mac=requested_mac(req) if self.flavour.with_mac else "",
            ipam=ipam_conf(conf),
        )

    def _chained_master(self, req: Request) -> str:
        if not self.flavour.chained_master or req.config.get("prevResult") is None:
            return ""
        prev = attach.prev_result(req)
        if len(prev.interfaces) == 1 and prev.interfaces[0].name:
            return prev.interfaces[0].name
        raise CniError(
            Code.INVALID_CONFIG, "chained master failure. PrevResult lacks a single named interface"
        )

    def add(self, req: Request) -> Result:
        links.check_name(req.ifname)
        with netns.host() as host, netns.pod(req.netns) as pod, ExitStack() as undo:
            conf = self.parse(req, host)
            master = links.get(host, conf.master)
            if master is None:
                raise CniError(
                    Code.INVALID_CONFIG,
                    f"failed to lookup master {conf.master!r}",
                    "Link not found",
                )
            if self.flavour.mtu_capped_by_master and conf.mtu > master.mtu:
                raise CniError(
                    Code.INVALID_CONFIG,
                    f"invalid MTU {conf.mtu}, must be [0, master MTU({master.mtu})]",
                )
            link = self._create(host, pod=pod, conf=conf, master=master, req=req, undo=undo)
            interface = Interface(name=req.ifname, mac=link.mac, sandbox=req.netns)
            ipam_result = self._ipam_result(req, conf, undo)
            out = attach.result(req, interfaces=(interface,), ipam_result=ipam_result, pod_index=0)
            if ipam_result is not None:
                if self.flavour.arp_notify:
                    # The reference turns arp_notify on for layer-3 links only.
                    self.pod_sysctl(req.netns, {f"net.ipv4.conf.{req.ifname}.arp_notify": "1"})
                addrs.configure_iface(
                    pod,
                    netns_path=req.netns,
                    ifname=req.ifname,
                    result=out,
                    iface_index=0,
                    link=link,
                )
            else:
                links.set_up(pod, link.index)
            undo.pop_all()
            return out
        raise AssertionError("unreachable: the with-block returns or raises")

    def _ipam_result(self, req: Request, conf: SubConf, undo: ExitStack) -> Result | None:
        if conf.ipam:
            return self.ipam.add(req, conf.ipam, undo)
        if self.flavour.chained_master and req.config.get("prevResult") is not None:
            prev = attach.prev_result(req)
            if prev.ips:
                return prev
        if self.flavour.chained_master:
            raise CniError(
                Code.INVALID_CONFIG, "ipvlan needs an ipam section or a prevResult with IPs"
            )
        return None

    def _create(
        self,
        host: Netlink,
        *,
        pod: Netlink,
        conf: SubConf,
        master: links.Link,
        req: Request,
        undo: ExitStack,
    ) -> links.Link:
        temp = links.temp_name("jt")
        spec: dict[str, Any] = {
            "ifname": temp,
            "kind": self.flavour.kind,
            "link": master.index,
            self.flavour.mode_key: self.flavour.modes[conf.mode],
            "txqlen": 0,  # the reference's netlink.LinkAttrs{} leaves TxQLen 0
        }
        if conf.mtu:
            spec["mtu"] = conf.mtu
        if conf.mac:
            spec["address"] = conf.mac
        with netns.fd(req.netns) as pod_fd:
            spec["net_ns_fd"] = pod_fd
            try:
                host.link("add", **spec)
            except Exception as exc:  # netlink refusal: name it with the master and kind
                raise CniError(
                    Code.OTHER, f"failed to create {self.flavour.kind} on {conf.master!r}", str(exc)
                ) from None
        created = links.require(pod, temp, self.flavour.kind)
        undo.callback(_delete_index, pod, created.index)
        try:
            pod.link("set", index=created.index, ifname=req.ifname)
        except Exception as exc:  # EEXIST: the pod already has that name
            if links.netlink_errno(exc) == errno.EEXIST:
                raise CniError(
                    Code.OTHER, f"interface {req.ifname!r} already exists in the pod"
                ) from None
            raise CniError(
                Code.OTHER, f"failed to rename {temp} to {req.ifname}", str(exc)
            ) from None
        return replace(created, name=req.ifname)

    def delete(self, req: Request) -> None:
        conf = self.parse(req, None)
        if conf.ipam:
            self.ipam.delete(req, conf.ipam)
        if not req.netns or not netns.exists(req.netns):
            return
        try:
            with netns.pod(req.netns) as pod:
                links.delete(pod, req.ifname)
        except CniError:
            pass  # the netns vanished after the check: nothing left to delete

    def check(self, req: Request) -> None:
        prev = attach.prev_result(req)
        with netns.host() as host, netns.pod(req.netns) as pod:
            conf = self.parse(req, host)
            if conf.ipam:
                self.ipam.check(req, conf.ipam)
            index = attach.pod_interface(prev, req.ifname, req.netns)
            link = addrs.check_iface(pod, ifname=req.ifname, result=prev, iface_index=index)
            if link.kind != self.flavour.kind:
                raise CniError(
                    Code.OTHER,
                    f"CHECK: {req.ifname!r} is a {link.kind or 'plain link'}",
                    f"expected {self.flavour.kind}",
                )
            if conf.mtu and link.mtu != conf.mtu:
                raise CniError(Code.OTHER, f"CHECK: {req.ifname!r} MTU {link.mtu} != {conf.mtu}")
            master = links.get(host, conf.master)
            if master is None or link.parent != master.index:
                raise CniError(
                    Code.OTHER, f"CHECK: {req.ifname!r} is not on master {conf.master!r}"
                )
            mode = link.datum(_MODE_ATTR[self.flavour.kind])
            if mode is not None and mode != self.flavour.modes[conf.mode]:
                raise CniError(Code.OTHER, f"CHECK: {req.ifname!r} mode is not {conf.mode}")
            if (
                prev.interfaces[index].mac
                and self.flavour.with_mac
                and link.mac != prev.interfaces[index].mac
            ):
                raise CniError(Code.OTHER, f"CHECK: {req.ifname!r} MAC changed")

    def status(self, req: Request) -> None:
        ipam = ipam_conf(req.config)
        if ipam:
            self.ipam.status(req, ipam)

    def gc(self, req: Request) -> None:
        ipam = ipam_conf(req.config)
        if ipam:
            self.ipam.gc(req, ipam)


_MODE_ATTR = {"macvlan": "IFLA_MACVLAN_MODE", "ipvlan": "IFLA_IPVLAN_MODE"}


def _delete_index(ipr: Netlink, index: int) -> None:
    link = links.by_index(ipr, index)
    if link is not None:
        links.delete(ipr, link.name)
