"""static IPAM, native: fixed addresses, routes and DNS from config, args or runtimeConfig.

`PLUGIN` runs in-process for the link plugins (through `ipam`) and the meta-plugin;
`main` is the `jaring-static` executable. Keys and precedence follow
containernetworking/plugins 1.1.1 static: `addresses` plus CNI_ARGS `IP=`
(with `GATEWAY=` for those), replaced by `args.cni.ips`, replaced by
runtimeConfig `ips`. It allocates nothing, so DEL, STATUS and GC have no work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from jaring.cni import version as versions
from jaring.cni.errors import CniError, Code
from jaring.cni.plugin import Request
from jaring.cni.types import DNS, IPConfig, Result, Route

from .ipamconf import (
    Cidr,
    IPAddress,
    check_network_name,
    field,
    load_args,
    obj,
    parse_cidr,
    parse_dns,
    parse_ip,
    parse_routes,
    seq,
    text,
)

ABOUT = "jaring static IPAM (native; configuration of containernetworking/plugins static)"


@dataclass(frozen=True)
class StaticAddress:
    cidr: Cidr
    gateway: IPAddress | None = None

    def to_ip_config(self) -> IPConfig:
        return IPConfig(str(self.cidr), gateway=str(self.gateway) if self.gateway else "")


@dataclass(frozen=True)
class StaticConfig:
    cni_version: str
    addresses: tuple[StaticAddress, ...]
    routes: tuple[Route, ...]
    dns: DNS


def _config_addresses(ipam: Mapping[str, Any]) -> list[tuple[str, IPAddress | None]]:
    """`addresses` as written: (address text, gateway); the text is parsed last, as in Go."""
    out: list[tuple[str, IPAddress | None]] = []
    for n, item in enumerate(seq(field(ipam, "addresses"), "ipam.addresses")):
        where = f"ipam.addresses[{n}]"
        doc = obj(item, where)
        raw_gw = text(field(doc, "gateway"), f"{where}.gateway")
        gateway = parse_ip(raw_gw) if raw_gw else None
        if raw_gw and gateway is None:
            raise CniError(Code.INVALID_CONFIG, f"invalid IP address: {raw_gw}", where)
        out.append((text(field(doc, "address"), f"{where}.address"), gateway))
    return out


def _replacing(config: Mapping[str, Any]) -> list[StaticAddress] | None:
    """args.cni.ips, overridden by runtimeConfig.ips: each replaces every other address."""
    found: list[StaticAddress] | None = None
    args_cni = obj(field(obj(field(config, "args"), "args"), "cni"), "args.cni")
    runtime = obj(field(config, "runtimeConfig"), "runtimeConfig")
    for where, items in (
        ("args.cni.ips", field(args_cni, "ips")),
        ("runtimeConfig.ips", field(runtime, "ips")),
    ):
        values = seq(items, where)
        if not values:
            continue
        found = []
        for n, item in enumerate(values):
            raw = text(item, f"{where}[{n}]")
            cidr = parse_cidr(raw)
            if cidr is None:
                raise CniError(
                    Code.INVALID_CONFIG,
                    f"an entry in the 'ips' field is NOT in CIDR notation, got: '{raw}'",
                    f"{where}[{n}]",
                )
            found.append(StaticAddress(cidr))
    return found


def load_config(req: Request) -> StaticConfig:
    """The request's static config; CniError naming what is wrong."""
    config = req.config
    check_network_name(field(config, "name"))
    ipam_value = field(config, "ipam")
    if ipam_value is None:
        raise CniError(Code.INVALID_CONFIG, "IPAM config missing 'ipam' key")
    ipam = obj(ipam_value, "ipam")
    written = _config_addresses(ipam)
    routes = parse_routes(field(ipam, "routes"), "ipam.routes")
    dns = parse_dns(field(ipam, "dns"), "ipam.dns")
    env = load_args(req.args, ("IP", "GATEWAY"))
    from_env: list[StaticAddress] = []
    for item in env.get("IP", "").split(",") if env.get("IP") else ():
        cidr = parse_cidr(item.strip())
        if cidr is None:
            raise CniError(
                Code.INVALID_ENV,
                f"the 'ip' field is expected to be in CIDR notation, got: '{item.strip()}'",
            )
        from_env.append(StaticAddress(cidr))
    for item in env.get("GATEWAY", "").split(",") if env.get("GATEWAY") else ():
        gateway = parse_ip(item.strip())
        if gateway is None:
            raise CniError(Code.INVALID_ENV, f"invalid gateway address: {item}")
        # Only CNI_ARGS addresses take a GATEWAY= (the config's are not parsed yet in Go).
        from_env = [
            StaticAddress(a.cidr, gateway)
            if gateway.version == a.cidr.ip.version and gateway in a.cidr.network()
            else a
            for a in from_env
        ]
    addresses = _replacing(config)
    if addresses is None:
        addresses = []
        for raw, gateway in written:
            cidr = parse_cidr(raw)
            if cidr is None:
                raise CniError(
                    Code.INVALID_CONFIG,
                    f"the 'address' field is expected to be in CIDR notation, got: '{raw}'",
                )
            addresses.append(StaticAddress(cidr, gateway))
        addresses += from_env
    cni_version = text(field(config, "cniVersion"), "cniVersion") or versions.LATEST
    return StaticConfig(cni_version, tuple(addresses), routes, dns)


class Static:
    """The static plugin: ADD reports the configured addresses; nothing to release."""

    supported_versions: tuple[str, ...] = versions.SUPPORTED

    def add(self, req: Request) -> Result:
        conf = load_config(req)
        return Result(
            cni_version=conf.cni_version,
            ips=tuple(a.to_ip_config() for a in conf.addresses),
            routes=conf.routes,
            dns=conf.dns,
        )

    def delete(self, req: Request) -> None:
        """Nothing was allocated: DEL always succeeds, whatever the config (as the reference)."""

    def check(self, req: Request) -> None:
        """Every configured address is in prevResult, with the configured gateway if any.

        Stricter than the reference 1.1.1, which passes when an address is missing.
        """
        conf = load_config(req)
        raw_prev = field(req.config, "prevResult")
        if raw_prev is None:
            raise CniError(Code.INVALID_CONFIG, "Required prevResult missing")
        prev = Result.from_json(raw_prev)
        have: dict[IPAddress, IPConfig] = {}
        for ip_conf in prev.ips:
            ip = parse_ip(ip_conf.address.partition("/")[0])
            if ip is not None:
                have.setdefault(ip, ip_conf)
        for address in conf.addresses:
            found = have.get(address.cidr.ip)
            if found is None:
                raise CniError(
                    Code.OTHER,
                    f"static: address {address.cidr.ip} missing on interface {req.ifname}",
                )
            if address.gateway is not None and parse_ip(found.gateway) != address.gateway:
                raise CniError(
                    Code.OTHER,
                    f"static: Failed to match addr {address.cidr.ip} on interface {req.ifname}",
                )

    def status(self, req: Request) -> None:
        """Always ready: static needs no store and no daemon."""

    def gc(self, req: Request) -> None:
        """Nothing is allocated, so nothing to collect."""


PLUGIN = Static()


def main() -> NoReturn:
    from jaring.cni.skel import main as skel_main

    skel_main(PLUGIN, about=ABOUT)
