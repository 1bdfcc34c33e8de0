"""runtimeConfig and `args.cni` for each delegate (NPWG v1.3 section 4.1.2.1.x).

Owns which annotation requests become which capability args, the capability
check (NPWG: a request no plugin can honour fails), and the runtime's own
runtimeConfig for the cluster network. Called by `plan.py` while planning ADD.
"""

from __future__ import annotations

from jaring.cni.errors import CniError, Code
from jaring.cni.selection import Attachment

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# Attachment field -> runtimeConfig key (= the capability a plugin declares).
CAPABILITY_KEYS: Mapping[str, str] = {
    "ips": "ips",
    "mac": "mac",
    "port_mappings": "portMappings",
    "bandwidth": "bandwidth",
    "infiniband_guid": "infinibandGUID",
}

# NPWG device-info spec: passed when declared, never an error when it is not.
DEVICE_INFO_KEY = "CNIDeviceInfoFile"


def _value(attachment: Attachment, attr: str) -> Any:
    value = getattr(attachment, attr)
    if attr == "port_mappings":
        return [dict(m) for m in value]
    if attr == "ips":
        return list(value)  # NPWG: as given, CIDR included
    if attr == "bandwidth":
        return dict(value)
    return value


def attachment_runtime_config(
    attachment: Attachment,
    *,
    capabilities: frozenset[str],
    device_info_file: str | None = None,
) -> dict[str, Any]:
    """The runtimeConfig for one attachment's delegate; fails on undeclared requests."""
    out: dict[str, Any] = {}
    for attr, key in CAPABILITY_KEYS.items():
        value = getattr(attachment, attr)
        if value is None or value == ():
            continue
        if key not in capabilities:
            raise CniError(
                Code.INVALID_CONFIG,
                f"network {attachment.network} requests {key!r} but no plugin in it "
                f"declares the {key!r} capability",
                "declared: " + (", ".join(sorted(capabilities)) or "none"),
            )
        out[key] = _value(attachment, attr)
    if device_info_file and DEVICE_INFO_KEY in capabilities:
        out[DEVICE_INFO_KEY] = device_info_file
    return out


def cluster_runtime_config(
    runtime_config: Mapping[str, Any] | None, *, capabilities: frozenset[str]
) -> dict[str, Any]:
    """The runtime's runtimeConfig, only for the cluster network, only what it declares."""
    if not runtime_config:
        return {}
    return {k: v for k, v in runtime_config.items() if k in capabilities}


def merge_cni_args(
    nad_args: Mapping[str, Any] | None, annotation_args: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`args.cni` of the NAD overlaid by the annotation's `cni-args` (annotation wins)."""
    return {**(nad_args or {}), **(annotation_args or {})}
