"""From a pod and its NADs to the ordered list of delegate calls (the plan).

Pure apart from the NAD lookups it is given: selection, ifnames, isolation,
delegate configs with `args.cni`, per-attachment runtimeConfig. Everything is
resolved before the first delegate runs, so a bad NAD or annotation fails
the ADD with nothing to roll back (NPWG "any setup failure fails the ADD").
"""

from __future__ import annotations

from jaring.cni import selection
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import IfName, NadName, Namespace
from jaring.cni.logs import get_logger
from jaring.cni.netconf import NetworkConfig
from jaring.cni.records import record
from jaring.cni.selection import NETWORKS_ANNOTATION, Attachment, NetworkRef

from . import devices, networks, runtimeconf
from .config import MetaConfig
from .sources import PodInfo

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from .networks import NadLookup

log = get_logger(__name__)

STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"


@record(frozen=True)
class Step:
    """One delegate call of a pod's ADD, in order."""

    network: str  # "namespace/name", or the cluster network's CNI name
    ifname: IfName
    config: NetworkConfig
    runtime_config: Mapping[str, Any]
    default: bool = False
    default_route: tuple[str, ...] = ()
    device_info_file: str = ""  # NPWG device-info: where the delegate writes it


def cluster_config(
    cfg: MetaConfig, *, lookup: NadLookup | None, override: NetworkRef | None = None
) -> NetworkConfig:
    """The cluster default network: the pod's override, `delegates[0]` or `clusterNetwork`."""
    if override is not None:
        if lookup is None:
            raise CniError(
                Code.INVALID_CONFIG,
                "default-network override needs a pod source",
                "set 'kubeconfig' or 'manifestDir'",
            )
        nad = lookup(override.namespace, override.name)
        if nad is None:
            raise CniError(Code.INVALID_CONFIG, "default network override not found", str(override))
        return networks.from_nad(nad, conf_dir=cfg.conf_dir)
    if cfg.delegates:
        return NetworkConfig.parse(cfg.delegates[0])
    return networks.cluster_network(
        cfg.cluster_network,
        conf_dir=cfg.conf_dir,
        namespace=Namespace(cfg.multus_namespace),
        lookup=lookup,
    )


def requested(cfg: MetaConfig, pod: PodInfo | None) -> tuple[Attachment, ...]:
    """defaultNetworks (outside system namespaces) then the pod's annotation."""
    if pod is None:
        return ()
    extra: list[Attachment] = []
    if pod.namespace not in cfg.system_namespaces:
        for name in cfg.default_networks:
            namespace, _, short = name.rpartition("/")
            extra.append(
                Attachment(
                    network=NetworkRef(
                        namespace=Namespace(namespace or cfg.multus_namespace),
                        name=NadName(short),
                    )
                )
            )
    text = pod.annotations.get(NETWORKS_ANNOTATION, "")
    if cfg.invalid_selection == "ignore":
        chosen, problem = selection.parse_selection_lenient(text, pod_namespace=pod.namespace)
        if problem:
            log.warning(
                "pod %s/%s: ignoring invalid %s: %s",
                pod.namespace,
                pod.name,
                NETWORKS_ANNOTATION,
                problem,
            )
    else:
        chosen = selection.parse_selection(text, pod_namespace=pod.namespace)
    selection.check_isolation(
        chosen,
        pod_namespace=pod.namespace,
        enabled=cfg.namespace_isolation,
        global_namespaces=cfg.global_namespaces,
    )
    return (*extra, *chosen)


def _nad_args(config: NetworkConfig) -> Mapping[str, Any] | None:
    """The `args.cni` a NAD's own config carries (first plugin's)."""
    if not config.plugins:
        return None
    args = config.plugins[0].get("args")
    cni = args.get("cni") if isinstance(args, dict) else None
    return cni if isinstance(cni, dict) else None


def build_plan(
    cfg: MetaConfig,
    *,
    pod: PodInfo | None,
    cluster_ifname: IfName,
    runtime_config: Mapping[str, Any] | None,
    lookup: NadLookup | None,
    container_id: str = "",
    pod_devices: Callable[[], devices.PodDevices] | None = None,
) -> tuple[Step, ...]:
    """Every delegate call for one pod ADD, cluster network first.

    `pod_devices` reads the kubelet's device allocation; it is called only
    when a selected NAD names a resource.
    """
    override = (
        selection.default_network_override(pod.annotations, pod_namespace=pod.namespace)
        if pod is not None
        else None
    )
    cluster = cluster_config(cfg, lookup=lookup, override=override)
    steps = [
        Step(
            network=cluster.name,
            ifname=cluster_ifname,
            config=cluster,
            runtime_config=runtimeconf.cluster_runtime_config(
                runtime_config, capabilities=cluster.capabilities()
            ),
            default=True,
        )
    ]
    attachments = requested(cfg, pod)
    selection.check_default_route(attachments)
    ifnames = selection.assign_ifnames(attachments, cluster_ifname=cluster_ifname)
    allocator = _LazyAllocator(pod_devices)
    for attachment, ifname in zip(attachments, ifnames, strict=True):
        steps.append(
            _step(cfg, attachment, ifname, lookup, container_id=container_id, allocator=allocator)
        )
    return tuple(steps)


def device_info_path(cfg: MetaConfig, ref: NetworkRef, container_id: str, ifname: IfName) -> str:
    """device-info-spec v1.1.0: one file per attachment under `<devinfo>/cni/`."""
    return f"{cfg.devinfo_dir}/cni/{ref.namespace}-{ref.name}-{container_id}-{ifname}-device.json"


class _LazyAllocator:
    """Reads the kubelet checkpoint on first need only."""

    def __init__(self, load: Callable[[], devices.PodDevices] | None) -> None:
        self.load = load
        self.allocator: devices.DeviceAllocator | None = None

    def take(self, resource: str, *, network: str) -> str:
        if self.allocator is None:
            found = (
                self.load()
                if self.load is not None
                else devices.PodDevices(problem="no kubelet device information in this mode")
            )
            self.allocator = devices.DeviceAllocator(found)
        return self.allocator.take(resource, network=network)


def _step(
    cfg: MetaConfig,
    attachment: Attachment,
    ifname: IfName,
    lookup: NadLookup | None,
    *,
    container_id: str,
    allocator: _LazyAllocator,
) -> Step:
    ref = attachment.network
    nad = lookup(ref.namespace, ref.name) if lookup is not None else None
    if nad is None:
        found = networks.find_on_disk(ref.name, conf_dir=cfg.conf_dir)
        if found is None:
            raise CniError(
                Code.INVALID_CONFIG,
                f"network {ref} not found",
                "no such NetworkAttachmentDefinition and no CNI config of that name in "
                + cfg.conf_dir,
            )
        config = found
    else:
        config = networks.from_nad(nad, conf_dir=cfg.conf_dir)
    merged = runtimeconf.merge_cni_args(_nad_args(config), attachment.cni_args)
    if attachment.cni_args:
        config = config.with_cni_args(merged)
    resource = nad.annotations.get(devices.RESOURCE_ANNOTATION, "") if nad is not None else ""
    device_id = ""
    if resource and not config.plugins[0].get("deviceID"):
        device_id = allocator.take(resource, network=str(ref))
        config = devices.with_device_id(config, device_id)
    capabilities = config.capabilities()
    device_info = (
        device_info_path(cfg, ref, container_id, ifname)
        if container_id and runtimeconf.DEVICE_INFO_KEY in capabilities
        else ""
    )
    # Its errors already name the network.
    runtime = runtimeconf.attachment_runtime_config(
        attachment, capabilities=capabilities, device_info_file=device_info or None
    )
    if device_id and "deviceID" in capabilities:
        runtime["deviceID"] = device_id  # reference host-device reads it here
    return Step(
        network=str(ref),
        ifname=ifname,
        config=config,
        runtime_config=runtime,
        default_route=attachment.default_route,
        device_info_file=device_info,
    )
