"""IPAM config pieces host-local and static share, read the way the reference plugins read them.

The reference plugins are Go: JSON keys match case-insensitively, IPs parse with
`net.ParseIP` (IPv4-mapped IPv6 becomes IPv4), CNI_ARGS go through libcni's
`LoadArgs` (unknown keys fail unless `IgnoreUnknown`). `hostlocal` and `static`
use these helpers so that a config means the same to them as to the binaries.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jaring.cni.errors import CniError, Code
from jaring.cni.types import DNS, Route

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# libcni's utils.ValidateNetworkName: the name is a directory name in stores.
_NETWORK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")


def field(doc: Mapping[str, Any], name: str) -> Any:
    """`doc[name]` as Go's encoding/json finds it: any letter case, the last key wins."""
    found = None
    folded = name.lower()
    for key, value in doc.items():
        if key.lower() == folded:
            found = value
    return found


def obj(value: object, where: str) -> Mapping[str, Any]:
    """A JSON object or null (empty); CniError(7) for anything else."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise CniError(Code.INVALID_CONFIG, f"{where} must be an object", repr(value)[:200])
    return value


def seq(value: object, where: str) -> list[Any]:
    """A JSON list or null (empty); CniError(7) for anything else."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise CniError(Code.INVALID_CONFIG, f"{where} must be a list", repr(value)[:200])
    return value


def text(value: object, where: str) -> str:
    """A JSON string or null (empty); CniError(7) for anything else."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CniError(Code.INVALID_CONFIG, f"{where} must be a string", repr(value)[:200])
    return value


def parse_ip(raw: str) -> IPAddress | None:
    """Go's net.ParseIP, canonicalised (To4): None when `raw` is not an IP."""
    if "%" in raw:  # Go has no zones in ParseIP; Python would accept "fe80::1%eth0"
        return None
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True)
class Cidr:
    """Go's net.ParseCIDR result with the address kept (types.ParseCIDR).

    `mask_bits` is the width of the mask as written (128 for an IPv4-mapped
    IPv6 CIDR whose address became IPv4): Go then prints the last 32 bits.
    """

    ip: IPAddress
    prefix: int
    mask_bits: int

    @property
    def shown_prefix(self) -> int:
        return max(self.prefix - (self.mask_bits - self.ip.max_prefixlen), 0)

    @property
    def mapped(self) -> bool:
        return self.mask_bits != self.ip.max_prefixlen

    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_interface(f"{self.ip}/{self.shown_prefix}").network

    def __str__(self) -> str:
        return f"{self.ip}/{self.shown_prefix}"


def parse_cidr(raw: str) -> Cidr | None:
    """Go's net.ParseCIDR keeping host bits; None when `raw` is not a CIDR."""
    addr, sep, length = raw.partition("/")
    if not sep or not length.isascii() or not length.isdigit():
        return None
    if "%" in addr:
        return None
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    prefix = int(length)
    if prefix > ip.max_prefixlen:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return Cidr(ip.ipv4_mapped, prefix, 128)
    return Cidr(ip, prefix, ip.max_prefixlen)


def check_network_name(name: object) -> str:
    """The network name as a store directory; CniError(7) like libcni's skel."""
    if not isinstance(name, str) or not name:
        raise CniError(Code.INVALID_CONFIG, "missing network name")
    if not _NETWORK_NAME.match(name):
        raise CniError(Code.INVALID_CONFIG, "invalid characters found in network name", name)
    return name


def load_args(args: Iterable[tuple[str, str]], known: Iterable[str]) -> dict[str, str]:
    """CNI_ARGS the way libcni's LoadArgs reads them into a plugin's struct.

    Keys match exactly; the last value wins; a value with `=` is an invalid
    pair; unknown keys fail unless IgnoreUnknown is 1/true.
    """
    fields = {"IgnoreUnknown", *known}
    values: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in args:
        if "=" in value:
            raise CniError(Code.INVALID_ENV, f'ARGS: invalid pair "{key}={value}"')
        if key not in fields:
            unknown.append(f"{key}={value}")
            continue
        if key == "IgnoreUnknown" and value.lower() not in ("1", "true", "0", "false"):
            raise CniError(
                Code.INVALID_ENV,
                f'ARGS: error parsing value of pair "{key}={value}": '
                f"boolean unmarshal error: invalid input {value.lower()}",
            )
        values[key] = value
    if unknown and values.get("IgnoreUnknown", "").lower() not in ("1", "true"):
        shown = " ".join(f'"{u}"' for u in unknown)
        raise CniError(Code.INVALID_ENV, f"ARGS: unknown args [{shown}]")
    return values


def _route_int(doc: Mapping[str, Any], key: str, where: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise CniError(Code.INVALID_CONFIG, f"{where}.{key} must be an integer", repr(value))
    return value


def parse_routes(value: object, where: str) -> tuple[Route, ...]:
    """`routes` as the reference prints them back: dst keeps its host bits."""
    routes: list[Route] = []
    for n, item in enumerate(seq(value, where)):
        doc = obj(item, f"{where}[{n}]")
        raw_dst = text(field(doc, "dst"), f"{where}[{n}].dst")
        dst = parse_cidr(raw_dst)
        if dst is None:
            raise CniError(Code.INVALID_CONFIG, f"invalid CIDR address: {raw_dst}", f"{where}[{n}]")
        raw_gw = text(field(doc, "gw"), f"{where}[{n}].gw")
        gw = parse_ip(raw_gw) if raw_gw else None
        if raw_gw and gw is None:
            raise CniError(Code.INVALID_CONFIG, f"invalid IP address: {raw_gw}", f"{where}[{n}]")
        routes.append(
            Route(
                dst=str(dst),
                gw=str(gw) if gw is not None else "",
                mtu=_route_int(doc, "mtu", f"{where}[{n}]"),
                advmss=_route_int(doc, "advmss", f"{where}[{n}]"),
                priority=_route_int(doc, "priority", f"{where}[{n}]"),
                table=_route_int(doc, "table", f"{where}[{n}]"),
                scope=_route_int(doc, "scope", f"{where}[{n}]"),
            )
        )
    return tuple(routes)


def parse_dns(value: object, where: str) -> DNS:
    """A `dns` object (nameservers, domain, search, options) passed through."""
    doc = obj(value, where)
    try:
        return DNS.from_json(
            {key: field(doc, key) for key in ("nameservers", "domain", "search", "options")},
            where,
        )
    except CniError as exc:
        raise CniError(Code.INVALID_CONFIG, exc.msg, exc.details) from None
