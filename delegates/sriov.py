"""The `sriov` CNI plugin, native: an SR-IOV VF configured through its PF, moved into the pod.

sriov-cni's keys (`deviceID`, also runtimeConfig `deviceID`; `vlan`, `vlanQoS`,
`vlanProto`, `mac`, `spoofchk`, `trust`, `link_state`, `min_tx_rate`,
`max_tx_rate`, `ipam`). ADD saves what it changes (VF settings, netdev name and
MAC) in a state file; DEL restores all of it and succeeds when nothing is left.
A VF on a userspace driver (no netdev, DPDK) is configured and reported unmoved.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from jaring.cni import version as versions
from jaring.cni.errors import CniError, Code
from jaring.cni.plugin import Request
from jaring.cni.records import replace
from jaring.cni.types import Interface, Result

from . import addrs, attach, links, netns
from .netns import Netlink
from .options import ipam_conf, opt_int, opt_obj, opt_str, requested_mac
from .sriov_sysfs import VfInfo, lookup_vf
from .vfcontrol import LINK_STATES, VLAN_PROTOS, NetlinkVfControl, VfControl, VfSettings

ABOUT = "jaring sriov: native SR-IOV CNI plugin (sriov-cni configuration keys)"
STATE_DIR = Path("/var/lib/cni/jaring-sriov")


def _on_off(conf: Mapping[str, Any], key: str) -> bool | None:
    value = opt_str(conf, key)
    if not value:
        return None
    if value.lower() not in ("on", "off"):
        raise CniError(Code.INVALID_CONFIG, f'{key} must be "on" or "off"', repr(value))
    return value.lower() == "on"


@dataclass(frozen=True)
class SriovConf:
    network: str
    device_id: str
    wanted: VfSettings  # what the config asks for; None fields untouched
    ipam: Mapping[str, Any]

    @classmethod
    def parse(cls, req: Request, *, for_add: bool = True) -> SriovConf:
        conf = req.config
        runtime = opt_obj(conf, "runtimeConfig")
        device_id = opt_str(runtime, "deviceID") or opt_str(conf, "deviceID")
        if not device_id:
            raise CniError(
                Code.INVALID_CONFIG,
                "SRIOV-CNI failed to load netconf: VF pci addr is required",
                "set deviceID (the device plugin or runtimeConfig provides it)",
            )
        has_vlan = "vlan" in conf and conf["vlan"] is not None
        vlan = opt_int(conf, "vlan")
        qos = opt_int(conf, "vlanQoS")
        proto = opt_str(conf, "vlanProto").lower() or None
        link_state = opt_str(conf, "link_state").lower() or None
        has_min = conf.get("min_tx_rate") is not None
        has_max = conf.get("max_tx_rate") is not None
        wanted = VfSettings(
            mac=requested_mac(req) or opt_str(conf, "mac") or None,
            vlan=vlan if has_vlan else None,
            qos=qos if has_vlan else None,
            proto=(proto or "802.1q") if has_vlan else None,
            spoofchk=_on_off(conf, "spoofchk"),
            trust=_on_off(conf, "trust"),
            link_state=link_state,
            min_tx_rate=opt_int(conf, "min_tx_rate") if has_min or has_max else None,
            max_tx_rate=opt_int(conf, "max_tx_rate") if has_min or has_max else None,
        )
        if for_add:
            _validate(wanted, qos=qos, proto=proto, has_vlan=has_vlan)
        return cls(attach.network_name(req), device_id, wanted, ipam_conf(conf))


def _validate(wanted: VfSettings, *, qos: int, proto: str | None, has_vlan: bool) -> None:
    if wanted.vlan is not None and wanted.vlan > 4094:
        raise CniError(Code.INVALID_CONFIG, "vlan id must be in range 0-4094", str(wanted.vlan))
    if qos > 7:
        raise CniError(Code.INVALID_CONFIG, "vlan QoS must be in range 0-7", str(qos))
    if qos and not wanted.vlan:
        raise CniError(
            Code.INVALID_CONFIG, "vlan id must be configured to set vlan QoS to a non-zero value"
        )
    if proto and proto not in VLAN_PROTOS:
        raise CniError(Code.INVALID_CONFIG, "vlan proto must be 802.1q or 802.1ad", proto)
    if proto and proto != "802.1q" and not wanted.vlan:
        raise CniError(
            Code.INVALID_CONFIG, "vlan id must be configured to set vlan proto other than 802.1q"
        )
    if not has_vlan and (qos or proto):
        raise CniError(Code.INVALID_CONFIG, "vlanQoS and vlanProto need vlan")
    if wanted.link_state and wanted.link_state not in LINK_STATES:
        raise CniError(
            Code.INVALID_CONFIG, "link_state must be auto, enable or disable", wanted.link_state
        )
    low, high = wanted.min_tx_rate or 0, wanted.max_tx_rate or 0
    if high and low > high:
        raise CniError(Code.INVALID_CONFIG, "min_tx_rate can't be greater than max_tx_rate")


@dataclass(frozen=True)
class SavedState:
    """What DEL needs to put the VF back as it was (written before anything changes)."""

    pci: str
    pf: str
    vf_index: int
    original: VfSettings  # original values of the settings ADD changes
    netdev: str | None  # the VF netdev's host name; None for DPDK
    netdev_mac: str | None  # the netdev's own MAC before ADD set one

    def to_json(self) -> dict[str, Any]:
        return {
            "pci": self.pci,
            "pf": self.pf,
            "vfIndex": self.vf_index,
            "original": self.original.to_json(),
            "netdev": self.netdev,
            "netdevMac": self.netdev_mac,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SavedState:
        return cls(
            pci=str(doc["pci"]),
            pf=str(doc["pf"]),
            vf_index=int(doc["vfIndex"]),
            original=VfSettings.from_json(doc.get("original")),
            netdev=doc.get("netdev"),
            netdev_mac=doc.get("netdevMac"),
        )


class StateStore:
    """One JSON file per attachment, written atomically, read tolerantly."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, container_id: str, ifname: str) -> Path:
        return self.root / f"{container_id}-{ifname}.json"

    def save(self, container_id: str, ifname: str, state: SavedState) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(fd, "w") as handle:
            json.dump(state.to_json(), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._path(container_id, ifname))

    def load(self, container_id: str, ifname: str) -> SavedState | None:
        try:
            doc = json.loads(self._path(container_id, ifname).read_text())
            return SavedState.from_json(doc)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # nothing saved (or unreadable): DEL restores what it can find

    def remove(self, container_id: str, ifname: str) -> None:
        with suppress(FileNotFoundError):
            self._path(container_id, ifname).unlink()


class SriovPlugin:
    """sriov; sysfs root, VF control, state dir and IPAM are parameters."""

    supported_versions: tuple[str, ...] = versions.SUPPORTED

    def __init__(
        self,
        *,
        ipam: attach.Ipam | None = None,
        sysfs: Path = Path("/sys"),
        control: VfControl | None = None,
        state_dir: Path = STATE_DIR,
    ) -> None:
        self.ipam = ipam or attach.Ipam()
        self.sysfs = sysfs
        self.control: VfControl = control or NetlinkVfControl()
        self.store = StateStore(state_dir)

    def add(self, req: Request) -> Result:
        conf = SriovConf.parse(req)
        links.check_name(req.ifname)
        vf = lookup_vf(conf.device_id, self.sysfs)
        with ExitStack() as undo:
            state = self._configure_vf(req, conf, vf, undo)
            interface = Interface(
                name=req.ifname, mac=conf.wanted.mac or "", sandbox=req.netns, pci_id=vf.pci
            )
            if vf.netdev is None:
                # DPDK: nothing to move; IPAM still allocates for the application to use.
                ipam_result = self.ipam.add(req, conf.ipam, undo) if conf.ipam else None
                out = attach.result(
                    req, interfaces=(interface,), ipam_result=ipam_result, pod_index=0
                )
                undo.pop_all()
                return out
            # The pod-side undo runs while the netns sockets are still open.
            with netns.host() as host, netns.pod(req.netns) as pod, ExitStack() as pod_undo:
                link = self._move_in(
                    host, pod=pod, vf=vf, state=state, req=req, undo=pod_undo, mac=conf.wanted.mac
                )
                interface = replace(interface, mac=link.mac)
                ipam_result = self.ipam.add(req, conf.ipam, pod_undo) if conf.ipam else None
                out = attach.result(
                    req, interfaces=(interface,), ipam_result=ipam_result, pod_index=0
                )
                if ipam_result is not None:
                    addrs.configure_iface(
                        pod, netns_path=req.netns, ifname=req.ifname, result=out, iface_index=0
                    )
                else:
                    links.set_up(pod, link.index)
                pod_undo.pop_all()
            undo.pop_all()
            return out
        raise AssertionError("unreachable: the with-block returns or raises")

    def _configure_vf(
        self, req: Request, conf: SriovConf, vf: VfInfo, undo: ExitStack
    ) -> SavedState:
        changed = conf.wanted.changed()
        original = self.control.read(pf=vf.pf_netdev, vf=vf.vf_index).only(changed)
        netdev_mac = None
        if vf.netdev is not None and conf.wanted.mac:
            with netns.host() as host:
                netdev_mac = links.require(host, vf.netdev, "VF netdev").mac
        state = SavedState(vf.pci, vf.pf_netdev, vf.vf_index, original, vf.netdev, netdev_mac)
        # Saved before the first change, so a crash mid-ADD still leaves DEL the recipe.
        self.store.save(req.container_id, req.ifname, state)
        undo.callback(self.store.remove, req.container_id, req.ifname)
        undo.callback(self._restore_quietly, state)
        self.control.apply(pf=vf.pf_netdev, vf=vf.vf_index, settings=conf.wanted)
        return state

    def _restore_quietly(self, state: SavedState) -> None:
        # Rollback is best effort; the ADD's own error is what the caller sees.
        with suppress(CniError):
            self.control.apply(pf=state.pf, vf=state.vf_index, settings=state.original)

    def _move_in(
        self,
        host: Netlink,
        *,
        pod: Netlink,
        vf: VfInfo,
        state: SavedState,
        req: Request,
        undo: ExitStack,
        mac: str | None,
    ) -> links.Link:
        assert vf.netdev is not None  # the caller handles DPDK VFs
        if links.get(pod, req.ifname) is not None:
            raise CniError(Code.OTHER, f"interface {req.ifname!r} already exists in the pod")
        netdev = links.require(host, vf.netdev, "VF netdev")
        host.link("set", index=netdev.index, state="down")
        temp = links.temp_name("jv")
        with netns.fd(req.netns) as pod_fd:
            links.move(host, index=netdev.index, netns_fd=pod_fd, name=temp)
        undo.callback(_return_netdev, pod, name=temp, state=state)
        inside = links.require(pod, temp)
        pod.link("set", index=inside.index, ifname=req.ifname)
        undo.callback(_return_netdev, pod, name=req.ifname, state=state)
        if mac:
            # sriov-cni sets the netdev's own address too, not only the VF's admin MAC.
            pod.link("set", index=inside.index, address=mac)
        return links.require(pod, req.ifname)

    def delete(self, req: Request) -> None:
        conf = SriovConf.parse(req, for_add=False)
        if conf.ipam:
            self.ipam.delete(req, conf.ipam)
        state = self.store.load(req.container_id, req.ifname)
        if state is None:
            return  # never configured, or already restored: nothing left
        if state.netdev is not None and req.netns and netns.exists(req.netns):
            try:
                with netns.pod(req.netns) as pod:
                    _return_netdev(pod, name=req.ifname, state=state)
            except CniError as exc:
                if exc.code != Code.CONTAINER_UNKNOWN:
                    raise
        if state.netdev is not None:
            self._rename_back_in_host(state)
        self.control.apply(pf=state.pf, vf=state.vf_index, settings=state.original)
        self.store.remove(req.container_id, req.ifname)

    def _rename_back_in_host(self, state: SavedState) -> None:
        """A netns that vanished returned the VF netdev under its pod name: fix it."""
        try:
            now = lookup_vf(state.pci, self.sysfs).netdev
        except CniError:
            return
        if now is None or state.netdev is None:
            return
        with netns.host() as host:
            link = links.get(host, now)
            if link is None:
                return
            if now != state.netdev:
                links.rename(host, index=link.index, name=state.netdev)
            if state.netdev_mac:
                host.link("set", index=link.index, address=state.netdev_mac)

    def check(self, req: Request) -> None:
        conf = SriovConf.parse(req)
        prev = attach.prev_result(req)
        if conf.ipam:
            self.ipam.check(req, conf.ipam)
        vf = lookup_vf(conf.device_id, self.sysfs)
        now = self.control.read(pf=vf.pf_netdev, vf=vf.vf_index).only(conf.wanted.changed())
        if now != conf.wanted:
            raise CniError(Code.OTHER, "CHECK: VF settings differ from the config", str(now))
        if vf.netdev is None and self.store.load(req.container_id, req.ifname) is not None:
            return
        with netns.pod(req.netns) as pod:
            index = attach.pod_interface(prev, req.ifname, req.netns)
            addrs.check_iface(pod, ifname=req.ifname, result=prev, iface_index=index)

    def status(self, req: Request) -> None:
        ipam = ipam_conf(req.config)
        if ipam:
            self.ipam.status(req, ipam)

    def gc(self, req: Request) -> None:
        ipam = ipam_conf(req.config)
        if ipam:
            self.ipam.gc(req, ipam)


def _return_netdev(pod: Netlink, *, name: str, state: SavedState) -> None:
    """Give the pod's VF netdev its host name and MAC back and move it to the host."""
    link = links.get(pod, name)
    if link is None or state.netdev is None:
        return
    pod.link("set", index=link.index, state="down")
    if state.netdev_mac:
        pod.link("set", index=link.index, address=state.netdev_mac)
    with netns.fd("/proc/self/ns/net") as host_fd:  # we never leave the host netns
        try:
            links.move(pod, index=link.index, netns_fd=host_fd, name=state.netdev)
        except Exception as exc:  # the host name is taken: report, keep the link in the pod
            raise CniError(
                Code.OTHER, f"failed to return VF netdev as {state.netdev!r}", str(exc)
            ) from None


PLUGIN = SriovPlugin()


def main() -> NoReturn:
    from jaring.cni import skel

    skel.main(PLUGIN, about=ABOUT)
