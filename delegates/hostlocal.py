"""host-local IPAM, native: the reference plugin's config, allocation order and store.

`PLUGIN` runs in-process for the link plugins (through `ipam`) and the meta-plugin
(through `jaring.cni.registry`); `main` is the `jaring-host-local` executable.
Config keys and meaning follow containernetworking/plugins 1.1.1 host-local;
the store (`ipstore`) is shared safely with the reference binary. CNI 1.1.0
STATUS and GC (`cni.dev/valid-attachments`) are implemented too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from jaring.cni import version as versions
from jaring.cni.errors import CniError, Code
from jaring.cni.plugin import Request
from jaring.cni.types import DNS, IPConfig, Result, Route

from .ipamconf import (
    IPAddress,
    check_network_name,
    field,
    load_args,
    obj,
    parse_cidr,
    parse_ip,
    parse_routes,
    seq,
    text,
)
from .iprange import RangeError, RangeSet, candidates, parse_range_set
from .ipstore import DEFAULT_DATA_DIR, Owner, Store

ABOUT = "jaring host-local IPAM (native; configuration of containernetworking/plugins host-local)"
VALID_ATTACHMENTS_KEYS = ("cni.dev/valid-attachments", "cni.dev/attachments")


@dataclass(frozen=True)
class HostLocalConfig:
    """One request's IPAM settings, validated like the reference's LoadIPAMConfig."""

    name: str
    cni_version: str
    range_sets: tuple[RangeSet, ...]
    requested: tuple[IPAddress, ...]
    routes: tuple[Route, ...]
    data_dir: str
    resolv_conf: str


def _ip_arg(raw: str) -> IPAddress | None:
    """pkg/ip.ParseIP: an address, or a CIDR whose address is taken."""
    if "/" in raw:
        cidr = parse_cidr(raw)
        return cidr.ip if cidr is not None else None
    return parse_ip(raw)


def _ipam_section(config: Mapping[str, Any]) -> Mapping[str, Any]:
    ipam = field(config, "ipam")
    if ipam is None:
        raise CniError(Code.INVALID_CONFIG, "IPAM config missing 'ipam' key")
    return obj(ipam, "ipam")


def _requested(req: Request, config: Mapping[str, Any]) -> tuple[IPAddress, ...]:
    """Requested addresses, in order: CNI_ARGS IP=, args.cni.ips, runtimeConfig.ips."""
    wanted: list[IPAddress] = []
    env = load_args(req.args, ("IP",)).get("IP", "")
    if env:
        ip = _ip_arg(env)
        if ip is None:
            raise CniError(
                Code.INVALID_ENV,
                f'ARGS: error parsing value of pair "IP={env}": invalid IP address {env}',
            )
        wanted.append(ip)
    args_cni = obj(field(obj(field(config, "args"), "args"), "cni"), "args.cni")
    runtime = obj(field(config, "runtimeConfig"), "runtimeConfig")
    for where, items in (
        ("args.cni.ips", field(args_cni, "ips")),
        ("runtimeConfig.ips", field(runtime, "ips")),
    ):
        for n, item in enumerate(seq(items, where)):
            raw = text(item, f"{where}[{n}]")
            ip = _ip_arg(raw)
            if ip is None:
                raise CniError(Code.INVALID_CONFIG, f"invalid IP address {raw}", f"{where}[{n}]")
            wanted.append(ip)
    unique: dict[str, IPAddress] = {}
    for ip in wanted:
        unique.setdefault(str(ip), ip)
    return tuple(unique.values())


def _range_sets(config: Mapping[str, Any], ipam: Mapping[str, Any]) -> tuple[RangeSet, ...]:
    """runtimeConfig.ipRanges, then the legacy single range, then `ranges`."""
    raw: list[tuple[str, object]] = []
    runtime = obj(field(config, "runtimeConfig"), "runtimeConfig")
    raw += [
        (f"runtimeConfig.ipRanges[{n}]", item)
        for n, item in enumerate(seq(field(runtime, "ipRanges"), "runtimeConfig.ipRanges"))
    ]
    if text(field(ipam, "subnet"), "ipam.subnet"):
        raw.append(("ipam", [ipam]))
    raw += [
        (f"ipam.ranges[{n}]", item)
        for n, item in enumerate(seq(field(ipam, "ranges"), "ipam.ranges"))
    ]
    if not raw:
        raise CniError(Code.INVALID_CONFIG, "no IP ranges specified")
    sets: list[RangeSet] = []
    for index, (where, item) in enumerate(raw):
        try:
            sets.append(parse_range_set(item, where))
        except RangeError as exc:
            raise CniError(
                Code.INVALID_CONFIG, f"invalid range set {index}: {exc}", where
            ) from None
    for i, a in enumerate(sets):
        for j in range(i + 1, len(sets)):
            if a.overlaps(sets[j]):
                raise CniError(Code.INVALID_CONFIG, f"range set {i} overlaps with {j}")
    return tuple(sets)


def load_config(req: Request, *, default_data_dir: str = DEFAULT_DATA_DIR) -> HostLocalConfig:
    """The request's host-local config; CniError(7) naming what is wrong."""
    config = req.config
    name = check_network_name(field(config, "name"))
    ipam = _ipam_section(config)
    requested = _requested(req, config)
    range_sets = _range_sets(config, ipam)
    cni_version = text(field(config, "cniVersion"), "cniVersion") or versions.LATEST
    return HostLocalConfig(
        name=name,
        cni_version=cni_version,
        range_sets=range_sets,
        requested=requested,
        routes=parse_routes(field(ipam, "routes"), "ipam.routes"),
        data_dir=text(field(ipam, "dataDir"), "ipam.dataDir") or default_data_dir,
        resolv_conf=text(field(ipam, "resolvConf"), "ipam.resolvConf"),
    )


def parse_resolv_conf(path: str) -> DNS:
    """nameserver/domain/search/options from a resolv.conf (the reference's dns.go)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        reason = str(exc.strerror or exc)
        # Go spells syscall errors in lower case ("no such file or directory").
        raise CniError(Code.IO, f"open {path}: {reason[:1].lower()}{reason[1:]}") from None
    nameservers: list[str] = []
    domain = ""
    search: list[str] = []
    options: list[str] = []
    for line in lines:
        words = line.split()
        if len(words) < 2 or words[0][0] in "#;":
            continue
        key, values = words[0], words[1:]
        if key == "nameserver":
            nameservers.append(values[0])
        elif key == "domain":
            domain = values[0]
        elif key == "search":
            search += values
        elif key == "options":
            options += values
    return DNS(tuple(nameservers), domain, tuple(search), tuple(options))


class _NotAllocatedError(Exception):
    """One range set could not give an address (the reference's allocator error)."""


def _allocate(
    store: Store,
    rangeset: RangeSet,
    index: int,
    *,
    wanted: IPAddress | None,
    owned: Sequence[IPAddress],
    container_id: str,
    ifname: str,
) -> tuple[IPAddress, IPConfig]:
    """allocator.go Get: the wanted address, or the next free one round-robin."""
    if wanted is not None:
        r = rangeset.range_for(wanted)
        assert r is not None  # the caller only passes addresses the set contains
        if wanted == r.gateway:
            raise _NotAllocatedError(f"requested ip {wanted} is subnet's gateway")
        if not store.reserve(wanted, container_id=container_id, ifname=ifname, range_id=index):
            raise _NotAllocatedError(
                f"requested IP address {wanted} is not available in range set {rangeset}"
            )
        return wanted, IPConfig(f"{wanted}/{r.subnet.prefixlen}", gateway=str(r.gateway))
    for ip in owned:
        if rangeset.contains(ip):
            raise _NotAllocatedError(
                f"{ip} has been allocated to {container_id}, duplicate allocation is not allowed"
            )
    for ip, r in candidates(rangeset, store.last_reserved(index)):
        if store.reserve(ip, container_id=container_id, ifname=ifname, range_id=index):
            return ip, IPConfig(f"{ip}/{r.subnet.prefixlen}", gateway=str(r.gateway))
    raise _NotAllocatedError(f"no IP addresses available in range set: {rangeset}")


def _valid_attachments(config: Mapping[str, Any]) -> set[Owner]:
    for key in VALID_ATTACHMENTS_KEYS:
        if key in config:
            items = seq(config[key], key)
            break
    else:
        raise CniError(
            Code.INVALID_CONFIG,
            "GC needs the valid attachments",
            f"stdin has no {VALID_ATTACHMENTS_KEYS[0]!r}",
        )
    owners = set()
    for n, item in enumerate(items):
        doc = obj(item, f"{key}[{n}]")
        owners.add(
            Owner(
                text(doc.get("containerID"), f"{key}[{n}].containerID").strip(),
                text(doc.get("ifname"), f"{key}[{n}].ifname"),
            )
        )
    return owners


class HostLocal:
    """The host-local plugin; `default_data_dir` is where stores live without `dataDir`."""

    supported_versions: tuple[str, ...] = versions.SUPPORTED

    def __init__(self, *, default_data_dir: str = DEFAULT_DATA_DIR) -> None:
        self.default_data_dir = default_data_dir

    def _config(self, req: Request) -> HostLocalConfig:
        return load_config(req, default_data_dir=self.default_data_dir)

    def add(self, req: Request) -> Result:
        conf = self._config(req)
        dns = parse_resolv_conf(conf.resolv_conf) if conf.resolv_conf else DNS()
        pending = list(conf.requested)
        reserved: list[IPAddress] = []
        ips: list[IPConfig] = []
        store = Store(conf.data_dir, conf.name)
        try:
            with store.locked():
                try:
                    owned = store.get_by_id(req.container_id, req.ifname)
                    for index, rangeset in enumerate(conf.range_sets):
                        wanted = next((ip for ip in pending if rangeset.contains(ip)), None)
                        if wanted is not None:
                            pending.remove(wanted)
                        try:
                            ip, ip_conf = _allocate(
                                store,
                                rangeset,
                                index,
                                wanted=wanted,
                                owned=owned,
                                container_id=req.container_id,
                                ifname=req.ifname,
                            )
                        except _NotAllocatedError as exc:
                            raise CniError(
                                Code.OTHER, f"failed to allocate for range {index}: {exc}"
                            ) from None
                        reserved.append(ip)
                        ips.append(ip_conf)
                    if pending:
                        raise CniError(
                            Code.OTHER,
                            "failed to allocate all requested IPs: "
                            + " ".join(str(ip) for ip in pending),
                        )
                except BaseException:
                    # Undo only what this call reserved: an earlier ADD's address stays.
                    for ip in reserved:
                        store.release(ip)
                    raise
        except OSError as exc:
            raise CniError(Code.IO, "host-local store failed", f"{store.dir}: {exc}") from None
        return Result(cni_version=conf.cni_version, ips=tuple(ips), routes=conf.routes, dns=dns)

    def delete(self, req: Request) -> None:
        conf = self._config(req)
        store = Store(conf.data_dir, conf.name)
        try:
            with store.locked():
                store.release_by_id(req.container_id, req.ifname)
        except OSError as exc:
            raise CniError(Code.IO, "host-local store failed", f"{store.dir}: {exc}") from None

    def check(self, req: Request) -> None:
        conf = self._config(req)
        store = Store(conf.data_dir, conf.name)
        try:
            with store.locked():
                found = store.find_by_id(req.container_id, req.ifname)
        except OSError as exc:
            raise CniError(Code.IO, "host-local store failed", f"{store.dir}: {exc}") from None
        if not found:
            raise CniError(
                Code.OTHER,
                f"host-local: Failed to find address added by container {req.container_id}",
            )

    def status(self, req: Request) -> None:
        """Ready when the config is valid and the store directory is writable."""
        conf = self._config(req)
        store = Store(conf.data_dir, conf.name)
        try:
            with store.locked():
                writable = os.access(store.dir, os.W_OK)
        except OSError as exc:
            raise CniError(Code.NOT_AVAILABLE, "host-local store unavailable", str(exc)) from None
        if not writable:
            raise CniError(Code.NOT_AVAILABLE, "host-local store is not writable", store.dir)

    def gc(self, req: Request) -> None:
        """Release every address whose owner is not a valid attachment.

        Only the store location is read from the config, so a network whose
        ranges changed since can still be collected.
        """
        config = req.config
        name = check_network_name(field(config, "name"))
        ipam = _ipam_section(config)
        data_dir = text(field(ipam, "dataDir"), "ipam.dataDir") or self.default_data_dir
        valid = _valid_attachments(config)
        valid_ids = {owner.container_id for owner in valid}
        store = Store(data_dir, name)
        try:
            with store.locked():
                store.remove_stale_temps()
                for ip, owner, _ in list(store.allocations()):
                    legacy_kept = owner.ifname == "" and owner.container_id in valid_ids
                    if owner not in valid and not legacy_kept:
                        store.release(ip)
        except OSError as exc:
            raise CniError(Code.IO, "host-local store failed", f"{store.dir}: {exc}") from None


PLUGIN = HostLocal()


def main() -> NoReturn:
    from jaring.cni.skel import main as skel_main

    skel_main(PLUGIN, about=ABOUT)
