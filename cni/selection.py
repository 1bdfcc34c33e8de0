"""NPWG network selection: the `k8s.v1.cni.cncf.io/networks` annotation.

Owns parsing both forms into frozen `Attachment`s, ifname assignment, namespace
isolation and the `v1.multus-cni.io/default-network` override. Called by the
meta-plugin's `plan.py` on every pod ADD and by the operator's admission
webhook, so what the webhook admits is exactly what jaring can attach
(NPWG v1.3 section 4.1.2; Multus compatible).
"""

from __future__ import annotations

from . import inet, jsoncodec
from .errors import CniError, Code
from .ids import IfName, NadName, Namespace
from .records import field, record

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
DEFAULT_NETWORK_ANNOTATION = "v1.multus-cni.io/default-network"

# Character sets, not regular expressions: `re` (with `enum`) costs the binary
# milliseconds a call.
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_HEX = frozenset("0123456789abcdefABCDEF")
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


@record(frozen=True, order=True)
class NetworkRef:
    """A NetworkAttachmentDefinition by namespace and name."""

    namespace: Namespace
    name: NadName

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@record(frozen=True)
class Attachment:
    """One element of the selection annotation; mappings are kept but not hashed."""

    network: NetworkRef
    interface: IfName | None = None
    ips: tuple[str, ...] = ()
    mac: str | None = None
    cni_args: Mapping[str, Any] | None = field(default=None, hash=False, compare=True)
    port_mappings: tuple[Mapping[str, Any], ...] = field(default=(), hash=False, compare=True)
    bandwidth: Mapping[str, Any] | None = field(default=None, hash=False, compare=True)
    default_route: tuple[str, ...] = ()
    infiniband_guid: str | None = None
    ipam_claim: str | None = None
    extensions: Mapping[str, Any] | None = field(default=None, hash=False, compare=True)


def _bad(where: str, what: str, value: object) -> CniError:
    return CniError(Code.INVALID_CONFIG, f"{where}: {what}", f"got {_show(value)}")


def _show(value: object) -> str:
    try:
        text = jsoncodec.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def is_label(text: str) -> bool:
    """DNS-1123 label (NPWG: NAD names and namespaces)."""
    return (
        0 < len(text) <= 63 and text[0] != "-" and text[-1] != "-" and _LABEL_CHARS.issuperset(text)
    )


def is_mac(text: str) -> bool:
    """Six hex pairs joined by colons (aa:bb:cc:dd:ee:ff)."""
    return len(text) == 17 and text[2::3] == ":::::" and _HEX.issuperset(text[0::3] + text[1::3])


def is_ifname(text: str) -> bool:
    """A name the Linux kernel accepts for a link (dev_valid_name)."""
    if not text or text in (".", "..") or len(text.encode()) > 15:
        return False
    return not any(c in "/:\0" or c.isspace() for c in text)


def _ref(where: str, namespace: str, name: str) -> NetworkRef:
    if not is_label(name):
        raise _bad(where, "network name must be a DNS-1123 label", name)
    if not is_label(namespace):
        raise _bad(where, "namespace must be a DNS-1123 label", namespace)
    return NetworkRef(namespace=Namespace(namespace), name=NadName(name))


def _ifname(where: str, value: object) -> IfName:
    if not isinstance(value, str) or not is_ifname(value):
        raise _bad(where, "interface must be a valid Linux interface name", value)
    return IfName(value)


def _short_item(where: str, item: str, pod_namespace: Namespace) -> Attachment:
    text, at, ifname = item.partition("@")
    namespace, slash, name = text.partition("/")
    if not slash:
        namespace, name = pod_namespace, text
    if "/" in name:
        raise _bad(where, "expected name, namespace/name, optionally @ifname", item)
    ref = _ref(where, namespace, name)
    return Attachment(network=ref, interface=_ifname(where, ifname) if at else None)


def _is_ip(text: str, *, cidr: bool) -> bool:
    if cidr and "/" in text:
        return inet.interface_version(text) != 0
    return inet.address_version(text) != 0


def _str_list(where: str, doc: Mapping[str, Any], key: str, *, cidr: bool) -> tuple[str, ...]:
    value = doc[key]
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _is_ip(v, cidr=cidr) for v in value
    ):
        raise _bad(where, f'"{key}" must be a list of IP addresses', value)
    return tuple(value)


def _object(where: str, doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc[key]
    if not isinstance(value, dict):
        raise _bad(where, f'"{key}" must be an object', value)
    return value


def _string(where: str, doc: Mapping[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str) or not value:
        raise _bad(where, f'"{key}" must be a non-empty string', value)
    return value


def _json_item(where: str, doc: object, pod_namespace: Namespace) -> Attachment:
    if not isinstance(doc, dict):
        raise _bad(where, "must be an object", doc)
    for key in doc:
        if key not in _KNOWN_KEYS and "." not in key:
            raise _bad(where, f'unknown key "{key}" (keys without a dot are reserved)', key)
    name = doc.get("name")
    if not isinstance(name, str):
        raise _bad(where, '"name" is required and must be a string', name)
    namespace = doc.get("namespace", pod_namespace)
    if not isinstance(namespace, str):
        raise _bad(where, '"namespace" must be a string', namespace)
    ref = _ref(where, namespace, name)
    kw: dict[str, Any] = {}
    if "interface" in doc:
        kw["interface"] = _ifname(where, doc["interface"])
    if "ips" in doc:
        kw["ips"] = _str_list(where, doc, "ips", cidr=True)
    if "mac" in doc:
        mac = doc["mac"]
        if not isinstance(mac, str) or not is_mac(mac):
            raise _bad(where, '"mac" must be a MAC address like aa:bb:cc:dd:ee:ff', mac)
        if int(mac[:2], 16) & 1:
            raise _bad(where, '"mac" must not be a multicast address', mac)
        kw["mac"] = mac
    if "cni-args" in doc:
        kw["cni_args"] = _object(where, doc, "cni-args")
    if "portMappings" in doc:
        value = doc["portMappings"]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise _bad(where, '"portMappings" must be a list of objects', value)
        kw["port_mappings"] = tuple(value)
    if "bandwidth" in doc:
        kw["bandwidth"] = _object(where, doc, "bandwidth")
    if "default-route" in doc:
        kw["default_route"] = _str_list(where, doc, "default-route", cidr=False)
    if "infiniband-guid" in doc:
        kw["infiniband_guid"] = _string(where, doc, "infiniband-guid")
    if "ipam-claim-reference" in doc:
        if doc.get("ips"):
            # NPWG v1.3: a claim and static IPs contradict each other.
            raise _bad(where, '"ipam-claim-reference" cannot be used together with "ips"', doc)
        kw["ipam_claim"] = _string(where, doc, "ipam-claim-reference")
    extensions = {k: v for k, v in doc.items() if "." in k}
    if extensions:
        kw["extensions"] = extensions
    return Attachment(network=ref, **kw)


def parse_selection(annotation: str, *, pod_namespace: Namespace) -> tuple[Attachment, ...]:
    """Both forms. Like Multus, text with `[`, `{` or `"` is JSON and must be a list."""
    if not annotation.strip():
        return ()
    if any(c in annotation for c in '[{"'):
        try:
            doc = jsoncodec.loads(annotation)
        except (ValueError, RecursionError) as exc:
            raise CniError(
                Code.INVALID_CONFIG, "networks: invalid JSON selection", str(exc)
            ) from None
        if not isinstance(doc, list):
            # Multus unmarshals into a slice: a lone object is an error there too.
            raise _bad("networks", "JSON selection must be a list of objects", doc)
        return tuple(
            _json_item(f"networks[{i}]", item, pod_namespace) for i, item in enumerate(doc)
        )
    return tuple(
        _short_item(f"networks[{i}]", item.strip(), pod_namespace)
        for i, item in enumerate(annotation.split(","))
    )


def parse_selection_lenient(
    annotation: str, *, pod_namespace: Namespace
) -> tuple[tuple[Attachment, ...], str | None]:
    """For `invalidSelection: ignore`: no attachments and the reason instead of an error."""
    try:
        return parse_selection(annotation, pod_namespace=pod_namespace), None
    except CniError as exc:
        return (), str(exc)


def check_default_route(attachments: Sequence[Attachment]) -> None:
    """NPWG: at most one element of a pod's selection carries `default-route`."""
    routes = [a for a in attachments if a.default_route]
    if len(routes) > 1:
        raise CniError(
            Code.INVALID_CONFIG,
            "more than one network requests default-route",
            ", ".join(str(a.network) for a in routes),
        )


def assign_ifnames(
    attachments: Sequence[Attachment], *, cluster_ifname: IfName
) -> tuple[IfName, ...]:
    """Multus rule: the k-th attachment (1-based) is `net{k}` unless it asked for a name."""
    names = tuple(a.interface or IfName(f"net{k}") for k, a in enumerate(attachments, 1))
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name == cluster_ifname:
            raise CniError(
                Code.INVALID_CONFIG,
                f"networks[{i}] ({attachments[i].network}): interface {name} "
                "is the cluster network's interface",
            )
        if name in seen:
            j = seen[name]
            raise CniError(
                Code.INVALID_CONFIG,
                f"networks[{j}] ({attachments[j].network}) and networks[{i}] "
                f"({attachments[i].network}) both use interface {name}",
            )
        seen[name] = i
    return names


def check_isolation(
    attachments: Sequence[Attachment],
    *,
    pod_namespace: Namespace,
    enabled: bool,
    global_namespaces: frozenset[str],
) -> None:
    """Multus `namespaceIsolation`: own namespace or a global one only.

    Multus's default `globalNamespaces` is `default` (`defaultNonIsolatedNamespace`);
    a configured list replaces it. The caller passes the effective set.
    """
    if not enabled:
        return
    for i, a in enumerate(attachments):
        ns = a.network.namespace
        if ns != pod_namespace and ns not in global_namespaces:
            raise CniError(
                Code.INVALID_CONFIG,
                f"networks[{i}]: namespace isolation: pod in namespace {pod_namespace} "
                f"may not use {a.network}",
                f"allowed: {pod_namespace}, " + ", ".join(sorted(global_namespaces)),
            )


def default_network_override(
    annotations: Mapping[str, str],
    *,
    pod_namespace: Namespace,
    default_namespace: Namespace | None = None,
) -> NetworkRef | None:
    """The `v1.multus-cni.io/default-network` annotation: `name` or `namespace/name`.

    A bare name is looked up in `default_namespace` (Multus uses its own
    namespace there) or, if not given, the pod's namespace.
    """
    text = annotations.get(DEFAULT_NETWORK_ANNOTATION)
    if text is None:
        return None
    text = text.strip()
    where = DEFAULT_NETWORK_ANNOTATION
    namespace, slash, name = text.partition("/")
    if not slash:
        namespace, name = default_namespace or pod_namespace, text
    if "/" in name or "@" in name:
        raise _bad(where, "expected name or namespace/name", text)
    return _ref(where, namespace, name)
