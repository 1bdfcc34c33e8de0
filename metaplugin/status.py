"""`k8s.v1.cni.cncf.io/network-status` entries (NPWG v1.3 section 4.1.2.2).

Called by `meta.py` after a successful ADD. `ips` carry their prefix length
(SPECS.md; LESSONS #11: consumers need the subnet, and a plain address loses
it). Multus's extra keys stay for the consumers that read them: `gateway`
lists the gateways of those IPs, `mtu` the interface MTU.
"""

from __future__ import annotations

from jaring.cni import jsoncodec
from jaring.cni.errors import CniError, Code
from jaring.cni.types import Result

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any


def status_entry(
    *,
    network: str,
    result: Result,
    default: bool,
    default_route: Sequence[str] = (),
    device_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One entry from the first sandbox interface of `result` and its IPs."""
    entry: dict[str, Any] = {"name": network}
    index = next((i for i, itf in enumerate(result.interfaces) if itf.sandbox), None)
    if index is not None:
        itf = result.interfaces[index]
        entry["interface"] = itf.name
    # An IP without an interface index belongs to the interface only when
    # the result cannot mean any other (one interface, or none at all).
    loose = len(result.interfaces) <= 1
    ips = [
        ip
        for ip in result.ips
        if (ip.interface is not None and ip.interface == index) or (ip.interface is None and loose)
    ]
    if ips:
        entry["ips"] = [ip.address for ip in ips]
    if index is not None:
        itf = result.interfaces[index]
        if itf.mac:
            entry["mac"] = itf.mac
        if itf.mtu is not None:
            entry["mtu"] = itf.mtu
    entry["default"] = default
    if result.dns:
        entry["dns"] = result.dns.to_json()
    gateways = [ip.gateway for ip in ips if ip.gateway]
    if gateways:
        entry["gateway"] = gateways
    if default_route:
        entry["default-route"] = list(default_route)
    if device_info:
        entry["device-info"] = dict(device_info)
    return entry


def build_status(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The annotation's list; exactly one entry is the default network."""
    defaults = [str(e.get("name")) for e in entries if e.get("default") is True]
    if len(defaults) != 1:
        raise CniError(
            Code.INVALID_CONFIG,
            f"network-status needs exactly one default network, found {len(defaults)}",
            ", ".join(defaults),
        )
    return [dict(e) for e in entries]


def status_annotation(entries: Sequence[Mapping[str, Any]]) -> str:
    """Compact JSON for the pod patch."""
    return jsoncodec.dumps(list(entries), separators=(",", ":"), sort_keys=False)
