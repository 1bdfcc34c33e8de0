"""The `host-device` CNI plugin, native: move an existing host link into the pod.

Reference host-device 1.1.1 keys (`device`, `hwaddr`, `kernelpath`,
`pciBusID`; runtimeConfig `deviceID` as a PCI address) and state: the link
keeps its host name as its alias, is renamed to CNI_IFNAME in the pod, and DEL
renames it back and returns it to the host. Unlike the reference, a second DEL
(or a DEL after the netns is gone) succeeds, and a failed ADD returns the link.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from jaring.cni import version as versions
from jaring.cni.errors import CniError, Code
from jaring.cni.plugin import Request
from jaring.cni.types import Interface, Result

from . import addrs, attach, links, netns
from .netns import Netlink
from .options import ipam_conf, opt_obj, opt_str

ABOUT = "jaring host-device: native CNI host-device plugin (reference 1.1.1 compatible)"


@dataclass(frozen=True)
class HostDeviceConf:
    network: str
    device: str
    hwaddr: str
    kernelpath: str
    pci: str
    ipam: Mapping[str, Any]

    @classmethod
    def parse(cls, req: Request, *, for_add: bool = True) -> HostDeviceConf:
        """The config; DEL needs no device (the pod's link carries its host name)."""
        conf = req.config
        pci = opt_str(conf, "pciBusID") or opt_str(opt_obj(conf, "runtimeConfig"), "deviceID")
        parsed = cls(
            network=attach.network_name(req),
            device=opt_str(conf, "device"),
            hwaddr=opt_str(conf, "hwaddr"),
            kernelpath=opt_str(conf, "kernelpath"),
            pci=pci,
            ipam=ipam_conf(conf),
        )
        if for_add and not (parsed.device or parsed.hwaddr or parsed.kernelpath or parsed.pci):
            raise CniError(
                Code.INVALID_CONFIG,
                'specify either "device", "hwaddr", "kernelpath" or "pciBusID"',
            )
        return parsed


def find_host_device(host: Netlink, conf: HostDeviceConf, sysfs: Path) -> links.Link:
    """The host link the config names, resolved like the reference's getLink."""
    if conf.device:
        link = links.get(host, conf.device)
        if link is None:
            raise CniError(
                Code.OTHER, "failed to find host device: Link not found", f"device {conf.device!r}"
            )
        return link
    every = [links.snapshot(msg) for msg in host.link("dump")]
    if conf.hwaddr:
        for link in every:
            if link.mac.lower() == conf.hwaddr.lower():
                return link
        raise CniError(
            Code.OTHER, "failed to find host device: failed to find physical interface", conf.hwaddr
        )
    if conf.kernelpath:
        if not conf.kernelpath.startswith("/sys/devices/"):
            raise CniError(
                Code.INVALID_CONFIG,
                f"kernel device path {conf.kernelpath!r} must be absolute",
                "and begin with /sys/devices/",
            )
        net_dir = sysfs / Path(conf.kernelpath).relative_to("/sys") / "net"
        return _first_of(net_dir, every, f"failed to find network devices at {net_dir}")
    net_dir = sysfs / "bus" / "pci" / "devices" / conf.pci / "net"
    if not net_dir.is_dir():
        virtio = sorted((sysfs / "bus" / "pci" / "devices" / conf.pci).glob("virtio*/net"))
        if not virtio:
            raise CniError(Code.OTHER, f"no net directory under pci device {conf.pci}")
        net_dir = virtio[0]
    return _first_of(net_dir, every, f"failed to find device name for pci address {conf.pci}")


def _first_of(net_dir: Path, every: list[links.Link], error: str) -> links.Link:
    try:
        names = sorted(os.listdir(net_dir))
    except OSError:
        raise CniError(Code.OTHER, "failed to find host device", error) from None
    by_name = {link.name: link for link in every}
    for name in names:
        if name in by_name:
            return by_name[name]
    raise CniError(Code.OTHER, "failed to find host device", error)


class HostDevicePlugin:
    """host-device; the sysfs root and IPAM are parameters (tests give fakes)."""

    supported_versions: tuple[str, ...] = versions.SUPPORTED

    def __init__(self, *, ipam: attach.Ipam | None = None, sysfs: Path = Path("/sys")) -> None:
        self.ipam = ipam or attach.Ipam()
        self.sysfs = sysfs

    def add(self, req: Request) -> Result:
        conf = HostDeviceConf.parse(req)
        links.check_name(req.ifname)
        with netns.host() as host, netns.pod(req.netns) as pod, ExitStack() as undo:
            device = find_host_device(host, conf, self.sysfs)
            moved = self._move_in(host, pod, device, req, undo)
            interface = Interface(name=req.ifname, mac=moved.mac, sandbox=req.netns)
            if not conf.ipam:
                out = attach.result(req, interfaces=(interface,), ipam_result=None, pod_index=0)
                undo.pop_all()
                return out
            ipam_result = self.ipam.add(req, conf.ipam, undo)
            out = attach.result(req, interfaces=(interface,), ipam_result=ipam_result, pod_index=0)
            addrs.configure_iface(
                pod, netns_path=req.netns, ifname=req.ifname, result=out, iface_index=0
            )
            undo.pop_all()
            return out
        raise AssertionError("unreachable: the with-block returns or raises")

    def _move_in(
        self, host: Netlink, pod: Netlink, device: links.Link, req: Request, undo: ExitStack
    ) -> links.Link:
        if links.get(pod, req.ifname) is not None:
            raise CniError(Code.OTHER, f"interface {req.ifname!r} already exists in the pod")
        with netns.fd(req.netns) as pod_fd:
            try:
                links.move(host, index=device.index, netns_fd=pod_fd)
            except Exception as exc:  # netlink refusal, named with the device
                raise CniError(
                    Code.OTHER, f"failed to move link {device.name!r}", str(exc)
                ) from None
        undo.callback(_move_out, pod, name=device.name, alias=device.name)
        inside = links.require(pod, device.name)
        # The host name is kept as the alias: DEL renames the link back with it.
        pod.link("set", index=inside.index, ifalias=device.name)
        # Moving a link closes it; the reference brings it up again in the pod.
        pod.link("set", index=inside.index, ifname=req.ifname)
        links.set_up(pod, inside.index)
        undo.callback(_move_out, pod, name=req.ifname, alias=device.name)
        return links.require(pod, req.ifname)

    def delete(self, req: Request) -> None:
        conf = HostDeviceConf.parse(req, for_add=False)
        if req.netns and netns.exists(req.netns):
            try:
                with netns.pod(req.netns) as pod:
                    _move_out(pod, name=req.ifname, alias=None)
            except CniError as exc:
                if exc.code != Code.CONTAINER_UNKNOWN:
                    raise
        if conf.ipam:
            self.ipam.delete(req, conf.ipam)

    def check(self, req: Request) -> None:
        conf = HostDeviceConf.parse(req)
        prev = attach.prev_result(req)
        if conf.ipam:
            self.ipam.check(req, conf.ipam)
        with netns.pod(req.netns) as pod:
            index = attach.pod_interface(prev, req.ifname, req.netns)
            link = addrs.check_iface(pod, ifname=req.ifname, result=prev, iface_index=index)
            mac = prev.interfaces[index].mac
            if mac and link.mac != mac:
                raise CniError(Code.OTHER, f"CHECK: {req.ifname!r} MAC {link.mac} != {mac}")

    def status(self, req: Request) -> None:
        ipam = ipam_conf(req.config)
        if ipam:
            self.ipam.status(req, ipam)

    def gc(self, req: Request) -> None:
        ipam = ipam_conf(req.config)
        if ipam:
            self.ipam.gc(req, ipam)


def _move_out(pod: Netlink, *, name: str, alias: str | None) -> None:
    """Rename the pod's link back to its host name and return it to the host.

    A link that is not there is success (second DEL, undo after a partial move).
    """
    link = links.get(pod, name)
    if link is None:
        return
    host_name = alias or _alias(pod, link.index) or name
    pod.link("set", index=link.index, state="down")
    if host_name != name:
        pod.link("set", index=link.index, ifname=host_name)
    with netns.fd("/proc/self/ns/net") as host_fd:  # we never leave the host netns
        try:
            links.move(pod, index=link.index, netns_fd=host_fd)
        except Exception as exc:  # e.g. the host name is taken again: put the pod name back
            if host_name != name:
                pod.link("set", index=link.index, ifname=name)
            raise CniError(
                Code.OTHER, f"failed to return {name!r} to the host as {host_name!r}", str(exc)
            ) from None


def _alias(pod: Netlink, index: int) -> str:
    msg = pod.link("get", index=index)[0]
    value = msg.get_attr("IFLA_IFALIAS")
    return value if isinstance(value, str) else ""


PLUGIN = HostDevicePlugin()


def main() -> NoReturn:
    from jaring.cni import skel

    skel.main(PLUGIN, about=ABOUT)
