"""The `bridge` CNI plugin, native: a veth pair from the pod to a Linux bridge.

Same keys, state and result as the reference bridge plugin 1.1.1 (bridge,
isGateway, isDefaultGateway, forceAddress, ipMasq, mtu, hairpinMode,
promiscMode, vlan, macspoofchk). Runs in-process for the meta-plugin
(`PLUGIN`) and as `jaring-bridge` (`main`). ADD rolls back; DEL is idempotent.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, NoReturn

from jaring.cni import version as versions
from jaring.cni.errors import CniError, Code
from jaring.cni.plugin import Request
from jaring.cni.records import replace
from jaring.cni.types import Interface, IPConfig, Result, Route

from . import addrs, attach, links, masq, netns, spoofcheck
from .netns import Netlink
from .options import ipam_conf, opt_bool, opt_int, opt_str, requested_mac

DEFAULT_BRIDGE = "cni0"
ABOUT = "jaring bridge: native CNI bridge plugin (reference bridge 1.1.1 compatible)"
PORT_UP_TIMEOUT = 2.6  # the reference retries for 0+50+500+1000+1000 ms


@dataclass(frozen=True)
class BridgeConf:
    network: str
    bridge: str
    is_gateway: bool
    is_default_gateway: bool
    force_address: bool
    ip_masq: bool
    mtu: int
    hairpin: bool
    promisc: bool
    vlan: int
    macspoofchk: bool
    ipam: Mapping[str, Any]
    mac: str

    @classmethod
    def parse(cls, req: Request, *, for_add: bool = True) -> BridgeConf:
        """The config; the ADD-only rules are skipped for DEL, which must always clean up."""
        conf = req.config
        default_gw = opt_bool(conf, "isDefaultGateway")
        parsed = cls(
            network=attach.network_name(req),
            bridge=opt_str(conf, "bridge", DEFAULT_BRIDGE) or DEFAULT_BRIDGE,
            is_gateway=opt_bool(conf, "isGateway") or default_gw,
            is_default_gateway=default_gw,
            force_address=opt_bool(conf, "forceAddress"),
            ip_masq=opt_bool(conf, "ipMasq"),
            mtu=opt_int(conf, "mtu"),
            hairpin=opt_bool(conf, "hairpinMode"),
            promisc=opt_bool(conf, "promiscMode"),
            vlan=opt_int(conf, "vlan"),
            macspoofchk=opt_bool(conf, "macspoofchk"),
            ipam=ipam_conf(conf),
            mac=requested_mac(req),
        )
        if parsed.vlan > 4094:
            raise CniError(
                Code.INVALID_CONFIG, "invalid VLAN ID", f"{parsed.vlan} (must be 0-4094)"
            )
        if for_add and parsed.hairpin and parsed.promisc:
            raise CniError(
                Code.INVALID_CONFIG,
                "cannot set hairpin mode and promiscuous mode at the same time.",
            )
        return parsed


@dataclass(frozen=True)
class Gateways:
    """Per family: the bridge addresses to ensure (gateway IP with the pod's prefix)."""

    by_family: tuple[tuple[int, tuple[str, ...]], ...]

    def families(self) -> set[int]:
        return {family for family, gws in self.by_family if gws}


def calc_gateways(ipam_result: Result, conf: BridgeConf) -> tuple[Result, Gateways]:
    """Fill missing gateways and default routes the way the reference's calcGateways does."""
    ips: list[IPConfig] = []
    routes = list(ipam_result.routes)
    default_found: set[int] = set()
    gws: dict[int, list[str]] = {4: [], 6: []}
    for ipc in ipam_result.ips:
        iface = ipaddress.ip_interface(ipc.address)
        gateway = ipc.gateway
        if not gateway and conf.is_gateway:
            gateway = str(iface.network.network_address + 1)
        default = "0.0.0.0/0" if iface.version == 4 else "::/0"
        if conf.is_default_gateway and iface.version not in default_found:
            if not any(r.gw and r.dst == default for r in routes):
                routes.append(Route(dst=default, gw=gateway))
            default_found.add(iface.version)
        if conf.is_gateway:
            gws[iface.version].append(f"{gateway}/{iface.network.prefixlen}")
        ips.append(replace(ipc, gateway=gateway))
    result = replace(ipam_result, ips=tuple(ips), routes=tuple(routes))
    return result, Gateways(tuple((f, tuple(g)) for f, g in gws.items()))


def host_veth_name() -> str:
    return f"veth{secrets.token_hex(4)}"


class BridgePlugin:
    """The bridge plugin; side effects (IPAM, sysctls, iptables, nft) are parameters."""

    supported_versions: tuple[str, ...] = versions.SUPPORTED

    def __init__(
        self,
        *,
        ipam: attach.Ipam | None = None,
        write_sysctl: Callable[[str, str], None] = addrs.write_sysctl,
        masq_runner: masq.Runner = masq.run_tool,
        nft_runner: spoofcheck.Runner = spoofcheck.run_nft,
        pod_sysctl: Callable[[str, dict[str, str]], None] = addrs.pod_sysctl,
    ) -> None:
        self.pod_sysctl = pod_sysctl
        self.ipam = ipam or attach.Ipam()
        self.write_sysctl = write_sysctl
        self.masq_runner = masq_runner
        self.nft_runner = nft_runner

    # ADD ---------------------------------------------------------------
    def add(self, req: Request) -> Result:
        conf = BridgeConf.parse(req)
        links.check_name(req.ifname)
        with netns.host() as host, netns.pod(req.netns) as pod, ExitStack() as undo:
            br = self._ensure_bridge(host, conf, undo)
            with netns.fd(req.netns) as pod_fd:
                host_veth = self._veth(host, pod, conf, br, undo, ifname=req.ifname, pod_fd=pod_fd)
            pod_link = links.require(pod, req.ifname)
            interfaces = [
                Interface(name=br.name, mac=br.mac),
                Interface(name=host_veth.name, mac=host_veth.mac),
                Interface(name=req.ifname, mac=pod_link.mac, sandbox=req.netns),
            ]
            ipam_result = None
            if conf.ipam:
                raw = self.ipam.add(req, conf.ipam, undo)
                ipam_result, gateways = calc_gateways(raw, conf)
                draft = attach.result(
                    req, interfaces=tuple(interfaces), ipam_result=ipam_result, pod_index=2
                )
                # As the reference 1.1.1 leaves every layer-3 pod veth: announce on up,
                # no DAD (hairpin or promisc echo neighbour solicitations back).
                self.pod_sysctl(
                    req.netns,
                    {
                        f"net.ipv4.conf.{req.ifname}.arp_notify": "1",
                        f"net.ipv6.conf.{req.ifname}.accept_dad": "0",
                    },
                )
                addrs.configure_iface(
                    pod,
                    netns_path=req.netns,
                    ifname=req.ifname,
                    result=draft,
                    iface_index=2,
                    link=pod_link,
                )
                self._wait_port_up(host, host_veth.name)
                if conf.is_gateway:
                    vlan_iface = self._gateway_addresses(host, conf, br, gateways, undo)
                    if vlan_iface is not None:
                        interfaces.append(vlan_iface)
                    addrs.enable_forwarding(gateways.families(), self.write_sysctl)
                if conf.ip_masq:
                    undo.callback(
                        masq.teardown,
                        network=conf.network,
                        container_id=req.container_id,
                        run=self.masq_runner,
                    )
                    masq.setup(
                        [ip.address for ip in draft.ips],
                        network=conf.network,
                        container_id=req.container_id,
                        run=self.masq_runner,
                    )
            else:
                links.set_up(pod, pod_link.index)
            if conf.macspoofchk:
                ref = spoofcheck.ref_id(req.container_id, req.ifname)
                undo.callback(spoofcheck.teardown, ref, run=self.nft_runner)
                spoofcheck.setup(
                    ref, host_iface=host_veth.name, mac=pod_link.mac, run=self.nft_runner
                )
            # The bridge's MAC may change when the first port joins or an address is set.
            interfaces[0] = Interface(name=br.name, mac=links.require(host, br.name).mac)
            out = attach.result(
                req, interfaces=tuple(interfaces), ipam_result=ipam_result, pod_index=2
            )
            undo.pop_all()
            return out
        raise AssertionError("unreachable: the with-block returns or raises")

    def _ensure_bridge(self, host: Netlink, conf: BridgeConf, undo: ExitStack) -> links.Link:
        br = links.get(host, conf.bridge)
        if br is None:
            spec: dict[str, Any] = {"ifname": conf.bridge, "kind": "bridge"}
            if conf.mtu:
                spec["mtu"] = conf.mtu
            if conf.vlan:
                spec["br_vlan_filtering"] = 1
            try:
                host.link("add", **spec)
            except Exception as exc:  # EEXIST: another ADD made it first; use theirs
                if links.netlink_errno(exc) != 17:
                    raise CniError(Code.OTHER, f"could not add {conf.bridge!r}", str(exc)) from None
            else:
                undo.callback(links.delete, host, conf.bridge)
            br = links.require(host, conf.bridge, "bridge")
        elif br.kind != "bridge":
            raise CniError(Code.OTHER, f"{conf.bridge!r} already exists but is not a bridge")
        # Like the reference, vlan_filtering is set only on a bridge this ADD creates.
        if conf.promisc and not br.promisc:
            host.link("set", index=br.index, flags=links.IFF_PROMISC, mask=links.IFF_PROMISC)
        if not br.up:
            links.set_up(host, br.index)
        return br  # index and name are what callers use; the MAC is re-read at the end

    def _veth(
        self,
        host: Netlink,
        pod: Netlink | None,
        conf: BridgeConf,
        br: links.Link,
        undo: ExitStack,
        *,
        ifname: str,
        pod_fd: int | None,
        mac: str | None = None,
    ) -> links.Link:
        """A veth pair: `ifname` in the pod (or host), a random veth on the bridge."""
        host_name = host_veth_name()
        # txqlen 0 on both ends, as the reference's netlink.Veth{} leaves it.
        peer: dict[str, Any] = {"ifname": ifname, "txqlen": 0}
        if pod_fd is not None:
            peer["net_ns_fd"] = pod_fd
        if conf.mtu:
            peer["mtu"] = conf.mtu
        wanted_mac = conf.mac if mac is None else mac
        if wanted_mac:
            peer["address"] = wanted_mac
        spec: dict[str, Any] = {"ifname": host_name, "kind": "veth", "peer": peer, "txqlen": 0}
        if conf.mtu:
            spec["mtu"] = conf.mtu
        try:
            host.link("add", **spec)
        except Exception as exc:  # EEXIST: the pod already has `ifname` (or a name clash)
            where = pod if pod is not None else host
            if links.netlink_errno(exc) == 17 and links.get(where, ifname) is not None:
                raise CniError(
                    Code.OTHER, f"container veth name provided ({ifname}) already exists"
                ) from None
            raise CniError(Code.OTHER, "failed to make veth pair", str(exc)) from None
        undo.callback(links.delete, host, host_name)
        veth = links.require(host, host_name, "host veth")
        host.link("set", index=veth.index, master=br.index, state="up")
        if conf.hairpin:  # a new port's hairpin mode is already off
            host.brport("set", index=veth.index, mode=1)
        if conf.vlan:
            host.vlan_filter(
                "add",
                index=veth.index,
                vlan_info={"vid": conf.vlan, "flags": ["pvid", "untagged"]},
            )
        return veth

    def _wait_port_up(self, host: Netlink, name: str) -> None:
        def port_up() -> bool:
            return links.require(host, name, "host veth").operstate == "UP"

        links.wait_for(port_up, timeout=PORT_UP_TIMEOUT, what=f"bridge port {name} to be up")

    def _gateway_addresses(
        self, host: Netlink, conf: BridgeConf, br: links.Link, gateways: Gateways, undo: ExitStack
    ) -> Interface | None:
        target = br
        vlan_iface = None
        if conf.vlan and gateways.families():
            target = self._vlan_gateway_port(host, conf, br, undo)
            vlan_iface = Interface(name=target.name, mac=target.mac)
        for family, gws in gateways.by_family:
            for gw in gws:
                ensure_addr(host, target, family, gw, force=conf.force_address)
        return vlan_iface

    def _vlan_gateway_port(
        self, host: Netlink, conf: BridgeConf, br: links.Link, undo: ExitStack
    ) -> links.Link:
        name = f"{br.name}.{conf.vlan}"
        existing = links.get(host, name)
        if existing is not None:
            return existing
        self._veth(
            host,
            None,
            replace(conf, mtu=conf.mtu or br.mtu),
            br,
            undo,
            ifname=name,
            pod_fd=None,
            mac="",
        )
        port = links.require(host, name)
        links.set_up(host, port.index)
        return links.require(host, name)

    # DEL ---------------------------------------------------------------
    def delete(self, req: Request) -> None:
        conf = BridgeConf.parse(req, for_add=False)
        if conf.ipam:
            self.ipam.delete(req, conf.ipam)
        if req.netns and netns.exists(req.netns):
            try:
                with netns.pod(req.netns) as pod:
                    links.delete(pod, req.ifname)
            except CniError:
                pass  # the netns vanished between the check and the open: nothing to delete
        if conf.ip_masq:
            masq.teardown(network=conf.network, container_id=req.container_id, run=self.masq_runner)
        if conf.macspoofchk:
            spoofcheck.teardown(
                spoofcheck.ref_id(req.container_id, req.ifname), run=self.nft_runner
            )

    # CHECK -------------------------------------------------------------
    def check(self, req: Request) -> None:
        conf = BridgeConf.parse(req)
        prev = attach.prev_result(req)
        if conf.ipam:
            self.ipam.check(req, conf.ipam)
        with netns.host() as host, netns.pod(req.netns) as pod:
            br = links.get(host, conf.bridge)
            if br is None or br.kind != "bridge":
                raise CniError(Code.OTHER, f"CHECK: bridge {conf.bridge!r} not found")
            index = attach.pod_interface(prev, req.ifname, req.netns)
            link = addrs.check_iface(pod, ifname=req.ifname, result=prev, iface_index=index)
            if link.kind != "veth":
                raise CniError(Code.OTHER, f"CHECK: {req.ifname!r} is a {link.kind}, not a veth")
            if conf.mtu and link.mtu != conf.mtu:
                raise CniError(Code.OTHER, f"CHECK: {req.ifname!r} MTU {link.mtu} != {conf.mtu}")
            peer = links.by_index(host, link.parent)
            if peer is None or peer.master != br.index:
                raise CniError(
                    Code.OTHER, f"CHECK: the host end of {req.ifname!r} is not on {conf.bridge!r}"
                )

    def status(self, req: Request) -> None:
        ipam = ipam_conf(req.config)
        if ipam:
            self.ipam.status(req, ipam)

    def gc(self, req: Request) -> None:
        """Release IPAM and masquerade chains of attachments the runtime no longer has."""
        conf = BridgeConf.parse(req, for_add=False)
        keep = attach.valid_attachments(req)
        if conf.ipam:
            self.ipam.gc(req, conf.ipam)
        masq.gc(network=conf.network, keep={cid for cid, _ in keep}, run=self.masq_runner)


def ensure_addr(host: Netlink, link: links.Link, family: int, cidr: str, *, force: bool) -> None:
    """Put a gateway address on the bridge (the reference's ensureAddr)."""
    want = ipaddress.ip_interface(cidr)
    for have_text in sorted(addrs.addresses(host, link.index)):
        have = ipaddress.ip_interface(have_text)
        if have.version != want.version:
            continue
        if have == want:
            return
        if family == 4 or want.ip in have.network or have.ip in want.network:
            if not force:
                raise CniError(
                    Code.OTHER,
                    f"{link.name!r} already has an IP address different from {cidr}",
                )
            host.addr(
                "del", index=link.index, address=str(have.ip), prefixlen=have.network.prefixlen
            )
    try:
        addrs.add_address(host, link.index, cidr)
    except Exception as exc:  # EEXIST is fine: a concurrent ADD put the same address
        if links.netlink_errno(exc) != 17:
            raise CniError(
                Code.OTHER, f"could not add IP address to {link.name!r}", str(exc)
            ) from None
    # Pin the bridge MAC, else it follows the lowest port MAC as ports churn.
    current = links.require(host, link.name)
    host.link("set", index=current.index, address=current.mac)


PLUGIN = BridgePlugin()


def main() -> NoReturn:
    from jaring.cni import skel

    skel.main(PLUGIN, about=ABOUT)
