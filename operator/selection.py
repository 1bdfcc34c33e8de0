"""The pod side of NPWG v1.3 section 4.1.2 as the operator checks it at admission.

Parses `k8s.v1.cni.cncf.io/networks` (short and JSON forms) into the networks a pod
selects, or raises `SelectionError` naming the element and key. Used by `admission`
and `usage`. The meta-plugin has its own parser; the operator may not import it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jaring.operator.validation import is_dns1123_label

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"

_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
_KNOWN_KEYS = frozenset(
    {
        "name",
        "namespace",
        "interface",
        "ips",
        "mac",
        "cni-args",
        "portMappings",
        "bandwidth",
        "default-route",
        "infiniband-guid",
        "ipam-claim-reference",
    }
)


class SelectionError(ValueError):
    """The annotation breaks an NPWG rule; the message says which element and key."""


@dataclass(frozen=True, order=True, kw_only=True)
class NetworkRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Selected:
    network: NetworkRef
    interface: str | None = None
    default_route: bool = False


def _label(where: str, what: str, value: object) -> str:
    if not isinstance(value, str) or not is_dns1123_label(value):
        raise SelectionError(f"{where}: {what} must be a DNS-1123 label, got {value!r}")
    return value


def _ifname(where: str, value: object) -> str:
    ok = (
        isinstance(value, str)
        and value not in ("", ".", "..")
        and len(value.encode()) <= 15
        and not any(c in "/:\0" or c.isspace() for c in value)
    )
    if not ok:
        raise SelectionError(f"{where}: interface must be a valid Linux interface name: {value!r}")
    return str(value)


def _ip_list(where: str, key: str, value: object, *, cidr: bool) -> None:
    if not isinstance(value, list):
        raise SelectionError(f'{where}: "{key}" must be a list of IP addresses')
    for item in value:
        try:
            if not isinstance(item, str):
                raise ValueError(item)
            if cidr and "/" in item:
                ipaddress.ip_interface(item)
            else:
                ipaddress.ip_address(item)
        except ValueError:
            raise SelectionError(f'{where}: "{key}" has an invalid IP address {item!r}') from None


def _json_item(where: str, doc: object, pod_namespace: str) -> Selected:
    if not isinstance(doc, dict):
        raise SelectionError(f"{where}: must be an object")
    for key in doc:
        if key not in _KNOWN_KEYS and "." not in key:
            raise SelectionError(f'{where}: unknown key "{key}" (keys without a dot are reserved)')
    name = _label(where, '"name"', doc.get("name"))
    namespace = _label(where, '"namespace"', doc.get("namespace", pod_namespace))
    interface = _ifname(where, doc["interface"]) if "interface" in doc else None
    if "ips" in doc:
        _ip_list(where, "ips", doc["ips"], cidr=True)
    if "default-route" in doc:
        _ip_list(where, "default-route", doc["default-route"], cidr=False)
    mac = doc.get("mac")
    if mac is not None and (not isinstance(mac, str) or _MAC.fullmatch(mac) is None):
        raise SelectionError(f'{where}: "mac" must look like aa:bb:cc:dd:ee:ff, got {mac!r}')
    for key in ("cni-args", "bandwidth"):
        if key in doc and not isinstance(doc[key], dict):
            raise SelectionError(f'{where}: "{key}" must be an object')
    mappings = doc.get("portMappings", [])
    if not isinstance(mappings, list) or not all(isinstance(m, dict) for m in mappings):
        raise SelectionError(f'{where}: "portMappings" must be a list of objects')
    for key in ("infiniband-guid", "ipam-claim-reference"):
        if key in doc and (not isinstance(doc[key], str) or not doc[key]):
            raise SelectionError(f'{where}: "{key}" must be a non-empty string')
    if "ipam-claim-reference" in doc and doc.get("ips"):
        raise SelectionError(f'{where}: "ipam-claim-reference" cannot be combined with "ips"')
    return Selected(
        NetworkRef(namespace=namespace, name=name),
        interface,
        default_route=bool(doc.get("default-route")),
    )


def _short_item(where: str, item: str, pod_namespace: str) -> Selected:
    text, at, ifname = item.partition("@")
    namespace, slash, name = text.partition("/")
    if not slash:
        namespace, name = pod_namespace, text
    if "/" in name:
        raise SelectionError(f"{where}: expected name, namespace/name, optionally @ifname")
    ref = NetworkRef(
        namespace=_label(where, "namespace", namespace), name=_label(where, "network name", name)
    )
    return Selected(ref, _ifname(where, ifname) if at else None)


def parse(annotation: str, *, pod_namespace: str) -> tuple[Selected, ...]:
    """Both NPWG forms; text with `[`, `{` or `"` is the JSON form (as Multus decides)."""
    if not annotation.strip():
        return ()
    items: tuple[Selected, ...]
    if any(c in annotation for c in '[{"'):
        try:
            doc: Any = json.loads(annotation)
        except (ValueError, RecursionError) as exc:
            raise SelectionError(f"networks: invalid JSON: {exc}") from None
        if not isinstance(doc, list):
            raise SelectionError("networks: the JSON form must be a list of objects")
        items = tuple(_json_item(f"networks[{i}]", d, pod_namespace) for i, d in enumerate(doc))
    else:
        items = tuple(
            _short_item(f"networks[{i}]", part.strip(), pod_namespace)
            for i, part in enumerate(annotation.split(","))
        )
    if sum(item.default_route for item in items) > 1:
        raise SelectionError('networks: at most one element may carry "default-route"')
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.interface is None:
            continue
        if item.interface in seen:
            raise SelectionError(
                f"networks[{seen[item.interface]}] and networks[{i}] both use interface "
                f"{item.interface}"
            )
        seen[item.interface] = i
    return items


def pod_selection(annotations: Mapping[str, str], *, pod_namespace: str) -> tuple[Selected, ...]:
    text = annotations.get(NETWORKS_ANNOTATION)
    return () if text is None else parse(text, pod_namespace=pod_namespace)
