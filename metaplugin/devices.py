"""Devices the kubelet allocated to a pod, for NADs that name a resource.

A NAD annotated `k8s.v1.cni.cncf.io/resourceName` (SR-IOV VFs, host devices)
needs the device the device plugin gave this pod. Like Multus, jaring reads
the kubelet's checkpoint file, takes the pod's device IDs per resource in
attachment order, and hands each delegate its `deviceID` (and runtimeConfig
`deviceID` where the chain declares that capability). Called by `plan.py`.
"""

from __future__ import annotations

from jaring.cni import jsoncodec
from jaring.cni.errors import CniError, Code
from jaring.cni.netconf import NetworkConfig
from jaring.cni.records import field, record

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

RESOURCE_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"


@record(frozen=True)
class PodDevices:
    """Device IDs per resource name for one pod, in the kubelet's order."""

    by_resource: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    problem: str = ""  # why there are none (checkpoint missing, unreadable)


def parse_checkpoint(data: bytes, *, pod_uid: str) -> dict[str, tuple[str, ...]]:
    """The pod's devices from kubelet checkpoint JSON (old list or NUMA-map form)."""
    try:
        doc = jsoncodec.loads(data)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    entries = doc.get("Data", {}).get("PodDeviceEntries") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ValueError("no Data.PodDeviceEntries list")
    found: dict[str, list[str]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("PodUID") != pod_uid:
            continue
        resource = entry.get("ResourceName")
        ids = entry.get("DeviceIDs")
        if not isinstance(resource, str):
            continue
        if isinstance(ids, dict):  # kubelet >= 1.20: {"<numa node>": [ids]}
            flat = [i for key in sorted(ids) for i in (ids[key] or [])]
        elif isinstance(ids, list):
            flat = list(ids)
        else:
            continue
        bucket = found.setdefault(resource, [])
        bucket.extend(i for i in flat if isinstance(i, str) and i not in bucket)
    return {resource: tuple(ids) for resource, ids in found.items()}


def load_pod_devices(path: str, *, pod_uid: str) -> PodDevices:
    """Read the checkpoint; never raises (a NAD that needs a device reports why)."""
    if not pod_uid:
        return PodDevices(problem="the runtime did not pass K8S_POD_UID")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return PodDevices(problem=f"kubelet checkpoint {path}: {exc.strerror or exc}")
    try:
        return PodDevices(by_resource=parse_checkpoint(data, pod_uid=pod_uid))
    except ValueError as exc:
        return PodDevices(problem=f"kubelet checkpoint {path} unreadable: {exc}")


class DeviceAllocator:
    """Hands out a pod's devices per resource, one per attachment, in order."""

    def __init__(self, devices: PodDevices) -> None:
        self.devices = devices
        self.used: dict[str, int] = {}

    def take(self, resource: str, *, network: str) -> str:
        ids = self.devices.by_resource.get(resource, ())
        index = self.used.get(resource, 0)
        if index >= len(ids):
            why = self.devices.problem or (
                f"the kubelet allocated {len(ids)} device(s) of it to this pod"
            )
            raise CniError(
                Code.INVALID_CONFIG,
                f"network {network} needs a device of resource {resource!r} and none is left",
                f"{why}; request one {resource} per attachment in the pod's resources",
            )
        self.used[resource] = index + 1
        return ids[index]


def with_device_id(config: NetworkConfig, device_id: str) -> NetworkConfig:
    """Every plugin of the chain gets `deviceID` (sriov-cni, Multus's behaviour);
    a plugin declaring the `deviceID` capability also gets it as runtimeConfig
    (reference host-device), through the usual capability filter."""
    doc: dict[str, Any] = config.to_json()
    plugins = doc["plugins"] if config.is_list else [doc]
    for plugin in plugins:
        plugin["deviceID"] = device_id
    return NetworkConfig.parse(doc)
