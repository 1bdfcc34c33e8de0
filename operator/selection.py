"""The pod side of NPWG selection as the admission webhook sees it.

The parsing is the meta-plugin's own (`jaring.cni.selection`): a pod the
webhook admits is a pod jaring can attach, and the webhook refuses with the
very message the CNI ADD would fail with. Used by `admission` and `usage`.
"""

from __future__ import annotations

from collections.abc import Mapping

from jaring.cni.errors import CniError
from jaring.cni.ids import IfName, NadName, Namespace
from jaring.cni.selection import (
    NETWORKS_ANNOTATION,
    Attachment,
    NetworkRef,
    assign_ifnames,
    check_default_route,
    parse_selection,
)

# What every runtime passes as CNI_IFNAME for the cluster network.
CLUSTER_IFNAME = IfName("eth0")

__all__ = ["Attachment", "NetworkRef", "SelectionError", "network_ref", "pod_selection"]


class SelectionError(ValueError):
    """The annotation breaks an NPWG rule; the message says which element and key."""


def network_ref(*, namespace: str, name: str) -> NetworkRef:
    return NetworkRef(namespace=Namespace(namespace), name=NadName(name))


def pod_selection(annotations: Mapping[str, str], *, pod_namespace: str) -> tuple[Attachment, ...]:
    """The pod's selected networks in order; SelectionError when the annotation is invalid."""
    text = annotations.get(NETWORKS_ANNOTATION)
    if text is None:
        return ()
    try:
        chosen = parse_selection(text, pod_namespace=Namespace(pod_namespace))
        # The rules the meta-plugin applies to the whole list before any ADD.
        check_default_route(chosen)
        assign_ifnames(chosen, cluster_ifname=CLUSTER_IFNAME)
    except CniError as exc:
        raise SelectionError(str(exc)) from None
    return chosen
