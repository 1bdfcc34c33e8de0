"""Which running pods use which NetworkAttachmentDefinition, and what the operator knows of
each NAD. Fed by the Kopf pod and NAD event handlers; read by the NAD delete handler (a
NAD in use gets a warning Event or waits) and by the pod admission webhooks (NPWG v1.3
section 4.1.2: a pod may name a NAD that does not exist yet, which is only a warning).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jaring.operator.selection import NetworkRef, SelectionError, pod_selection

# Pods in these phases hold no attachments any more.
_FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, order=True, kw_only=True)
class PodRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class NadInfo:
    """The part of a NAD the webhooks need: the device-plugin resource it consumes."""

    network: NetworkRef
    resource_name: str | None = None


def networks_of_pod(
    *, namespace: str, annotations: Mapping[str, str], phase: str | None
) -> frozenset[NetworkRef]:
    """The NADs a pod holds attachments of; an unparsable annotation holds none.

    A terminating pod still holds them until it is gone (its CNI DEL has not run yet).
    """
    if phase in _FINISHED_PHASES:
        return frozenset()
    try:
        return frozenset(s.network for s in pod_selection(annotations, pod_namespace=namespace))
    except SelectionError:
        return frozenset()


class UsageIndex:
    """pod -> networks and network -> pods, kept consistent by `set_pod`/`drop_pod`."""

    def __init__(self) -> None:
        self._by_pod: dict[PodRef, frozenset[NetworkRef]] = {}
        self._by_network: dict[NetworkRef, set[PodRef]] = {}

    def set_pod(self, pod: PodRef, networks: frozenset[NetworkRef]) -> None:
        self.drop_pod(pod)
        if not networks:
            return
        self._by_pod[pod] = networks
        for network in networks:
            self._by_network.setdefault(network, set()).add(pod)

    def drop_pod(self, pod: PodRef) -> None:
        for network in self._by_pod.pop(pod, frozenset()):
            users = self._by_network.get(network)
            if users is not None:
                users.discard(pod)
                if not users:
                    del self._by_network[network]

    def users(self, network: NetworkRef) -> tuple[PodRef, ...]:
        return tuple(sorted(self._by_network.get(network, ())))

    def __len__(self) -> int:
        return len(self._by_pod)


class NadCatalog:
    """The NADs that exist, as last seen by the watch."""

    def __init__(self) -> None:
        self._nads: dict[NetworkRef, NadInfo] = {}

    def put(self, info: NadInfo) -> None:
        self._nads[info.network] = info

    def remove(self, network: NetworkRef) -> None:
        self._nads.pop(network, None)

    def get(self, network: NetworkRef) -> NadInfo | None:
        return self._nads.get(network)

    def __len__(self) -> int:
        return len(self._nads)


def in_use_message(network: NetworkRef, users: tuple[PodRef, ...], *, shown: int = 5) -> str:
    names = ", ".join(str(p) for p in users[:shown])
    more = f" and {len(users) - shown} more" if len(users) > shown else ""
    return (
        f"NetworkAttachmentDefinition {network} is still used by {len(users)} pod(s): {names}{more}"
    )
