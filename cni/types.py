"""Typed CNI results, one model for every spec version.

Plugins and the meta-plugin work with `Result` (the 1.1.0 shape); conversion
to and from a given `cniVersion` happens once, in `from_json` and `to_json`
(SPEC.md "Result", "Version considerations": 0.3.x/0.4.0 carry ips[].version,
1.0.0 dropped it, 1.1.0 added interface mtu/socketPath/pciID and route
mtu/advmss/priority/table/scope).
"""

from __future__ import annotations

from . import inet
from . import version as versions
from .errors import CniError, Code
from .records import field, record, replace

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _str(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CniError(Code.DECODE, f"invalid result: {where}.{key} must be a string", repr(value))
    return value


def _int(doc: dict[str, Any], key: str, where: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise CniError(
            Code.DECODE, f"invalid result: {where}.{key} must be an integer", repr(value)
        )
    return value


def _list(doc: dict[str, Any], key: str, where: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise CniError(Code.DECODE, f"invalid result: {where}.{key} must be a list", repr(value))
    return value


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CniError(Code.DECODE, f"invalid result: {where} must be an object", repr(value))
    return value


def _cidr(value: str, where: str) -> str:
    if not inet.interface_version(value):
        raise CniError(Code.DECODE, f"invalid result: {where} is not an IP/prefix", value)
    if "/" not in value:
        raise CniError(Code.DECODE, f"invalid result: {where} lacks a prefix length", value)
    return value


def _ip(value: str, where: str) -> str:
    if not inet.address_version(value):
        raise CniError(Code.DECODE, f"invalid result: {where} is not an IP address", value)
    return value


@record(frozen=True)
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""
    mtu: int | None = None  # 1.1.0
    socket_path: str = ""  # 1.1.0
    pci_id: str = ""  # 1.1.0

    @classmethod
    def from_json(cls, doc: object, where: str = "interfaces[]") -> Interface:
        d = _obj(doc, where)
        name = _str(d, "name", where)
        if not name:
            raise CniError(Code.DECODE, f"invalid result: {where}.name is required")
        return cls(
            name=name,
            mac=_str(d, "mac", where),
            sandbox=_str(d, "sandbox", where),
            mtu=_int(d, "mtu", where),
            socket_path=_str(d, "socketPath", where),
            pci_id=_str(d, "pciID", where),
        )

    def to_json(self, cni_version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.mac:
            out["mac"] = self.mac
        if self.sandbox:
            out["sandbox"] = self.sandbox
        if versions.at_least(cni_version, "1.1.0"):
            if self.mtu is not None:
                out["mtu"] = self.mtu
            if self.socket_path:
                out["socketPath"] = self.socket_path
            if self.pci_id:
                out["pciID"] = self.pci_id
        return out


@record(frozen=True)
class IPConfig:
    address: str  # CIDR, e.g. "10.1.0.5/24"
    gateway: str = ""
    interface: int | None = None  # index into Result.interfaces

    @property
    def family(self) -> int:
        return inet.interface_version(self.address)

    @classmethod
    def from_json(cls, doc: object, where: str = "ips[]") -> IPConfig:
        d = _obj(doc, where)
        address = _cidr(_str(d, "address", where), f"{where}.address")
        gateway = _str(d, "gateway", where)
        if gateway:
            _ip(gateway, f"{where}.gateway")
        iface = _int(d, "interface", where)
        if iface is not None and iface < 0:
            raise CniError(
                Code.DECODE, f"invalid result: {where}.interface is negative", str(iface)
            )
        return cls(address=address, gateway=gateway, interface=iface)

    def to_json(self, cni_version: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not versions.at_least(cni_version, "1.0.0"):
            out["version"] = str(self.family)
        if self.interface is not None:
            out["interface"] = self.interface
        out["address"] = self.address
        if self.gateway:
            out["gateway"] = self.gateway
        return out


@record(frozen=True)
class Route:
    dst: str
    gw: str = ""
    mtu: int | None = None  # 1.1.0
    advmss: int | None = None  # 1.1.0
    priority: int | None = None  # 1.1.0
    table: int | None = None  # 1.1.0
    scope: int | None = None  # 1.1.0

    @classmethod
    def from_json(cls, doc: object, where: str = "routes[]") -> Route:
        d = _obj(doc, where)
        dst = _str(d, "dst", where)
        if not dst:
            raise CniError(Code.DECODE, f"invalid result: {where}.dst is required")
        if not inet.interface_version(dst):  # = ip_network(dst, strict=False)
            raise CniError(Code.DECODE, f"invalid result: {where}.dst is not a network", dst)
        gw = _str(d, "gw", where)
        if gw:
            _ip(gw, f"{where}.gw")
        return cls(
            dst=dst,
            gw=gw,
            mtu=_int(d, "mtu", where),
            advmss=_int(d, "advmss", where),
            priority=_int(d, "priority", where),
            table=_int(d, "table", where),
            scope=_int(d, "scope", where),
        )

    def to_json(self, cni_version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"dst": self.dst}
        if self.gw:
            out["gw"] = self.gw
        if versions.at_least(cni_version, "1.1.0"):
            for key in ("mtu", "advmss", "priority", "table", "scope"):
                value = getattr(self, key)
                if value is not None:
                    out[key] = value
        return out


@record(frozen=True)
class DNS:
    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.nameservers or self.domain or self.search or self.options)

    @classmethod
    def from_json(cls, doc: object, where: str = "dns") -> DNS:
        if doc is None:
            return cls()
        d = _obj(doc, where)

        def strs(key: str) -> tuple[str, ...]:
            items = _list(d, key, where)
            if not all(isinstance(i, str) for i in items):
                raise CniError(Code.DECODE, f"invalid result: {where}.{key} must hold strings")
            return tuple(items)

        return cls(
            nameservers=strs("nameservers"),
            domain=_str(d, "domain", where),
            search=strs("search"),
            options=strs("options"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.nameservers:
            out["nameservers"] = list(self.nameservers)
        if self.domain:
            out["domain"] = self.domain
        if self.search:
            out["search"] = list(self.search)
        if self.options:
            out["options"] = list(self.options)
        return out


@record(frozen=True)
class Result:
    """A plugin's ADD result, independent of the spec version it came in."""

    cni_version: str = versions.LATEST
    interfaces: tuple[Interface, ...] = ()
    ips: tuple[IPConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    dns: DNS = field(default_factory=DNS)

    @classmethod
    def from_json(cls, doc: object) -> Result:
        """Parse a result of any supported version (0.3.0 ... 1.1.0)."""
        d = _obj(doc, "result")
        raw_version = d.get("cniVersion")
        if not isinstance(raw_version, str):
            raise CniError(Code.DECODE, "invalid result: cniVersion missing", repr(raw_version))
        if raw_version not in versions.SUPPORTED:
            raise CniError(
                Code.INCOMPATIBLE_VERSION,
                "unsupported result version",
                f"{raw_version!r}; jaring reads {', '.join(versions.SUPPORTED)}",
            )
        interfaces = tuple(
            Interface.from_json(i, f"interfaces[{n}]")
            for n, i in enumerate(_list(d, "interfaces", "result"))
        )
        ips = tuple(
            IPConfig.from_json(i, f"ips[{n}]") for n, i in enumerate(_list(d, "ips", "result"))
        )
        for n, ip in enumerate(ips):
            if ip.interface is not None and ip.interface >= len(interfaces):
                raise CniError(
                    Code.DECODE,
                    f"invalid result: ips[{n}].interface points past interfaces",
                    f"{ip.interface} >= {len(interfaces)}",
                )
        routes = tuple(
            Route.from_json(r, f"routes[{n}]") for n, r in enumerate(_list(d, "routes", "result"))
        )
        return cls(
            cni_version=raw_version,
            interfaces=interfaces,
            ips=ips,
            routes=routes,
            dns=DNS.from_json(d.get("dns")),
        )

    def to_json(self, cni_version: str | None = None) -> dict[str, Any]:
        """Render in `cni_version` (default: the result's own)."""
        target = cni_version or self.cni_version
        if target not in versions.SUPPORTED:
            raise CniError(Code.INCOMPATIBLE_VERSION, "cannot convert result", f"to {target!r}")
        out: dict[str, Any] = {"cniVersion": target}
        if self.interfaces:
            out["interfaces"] = [i.to_json(target) for i in self.interfaces]
        if self.ips:
            out["ips"] = [i.to_json(target) for i in self.ips]
        if self.routes:
            out["routes"] = [r.to_json(target) for r in self.routes]
        out["dns"] = self.dns.to_json()
        return out

    def with_version(self, cni_version: str) -> Result:
        return replace(self, cni_version=cni_version)

    def sandbox_interface(self) -> tuple[int, Interface] | None:
        """The first interface with a sandbox: the one network-status reports."""
        for index, iface in enumerate(self.interfaces):
            if iface.sandbox:
                return index, iface
        return None
