"""Which delegate config a network name stands for.

NPWG v1.3 "which plugins to run": a NAD's `spec.config` if set (the NAD name
injected when it has no `name`); else an on-disk conflist in `confDir` whose
`name` is the NAD name; else a single config with that name; else fail.
The cluster network is resolved the way Multus resolves `clusterNetwork`.
"""

from __future__ import annotations

import os

from jaring.cni import jsoncodec
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import NadName, Namespace
from jaring.cni.netconf import NetworkConfig

from .sources import NadInfo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    NadLookup = Callable[[Namespace, NadName], "NadInfo | None"]

_CONF_SUFFIXES = (".conflist", ".conf", ".json")


def from_nad(nad: NadInfo, *, conf_dir: str) -> NetworkConfig:
    """The delegate config a NAD stands for (NPWG resolution order)."""
    where = f"{nad.namespace}/{nad.name}"
    if nad.config.strip():
        try:
            return NetworkConfig.parse(nad.config, default_name=nad.name)
        except CniError as exc:
            raise CniError(
                Code.INVALID_CONFIG,
                f"NetworkAttachmentDefinition {where} has an invalid spec.config",
                str(exc),
            ) from None
    found = find_on_disk(nad.name, conf_dir=conf_dir)
    if found is None:
        raise CniError(
            Code.INVALID_CONFIG,
            f"NetworkAttachmentDefinition {where} has no spec.config",
            f"and no CNI config named {nad.name!r} in {conf_dir}",
        )
    return found


def find_on_disk(name: str, *, conf_dir: str) -> NetworkConfig | None:
    """A conflist named `name` in conf_dir, else a single conf; None if neither.

    Conflists win over single configs (NPWG); within a kind, files are taken
    in lexical order like libcni. Unreadable files are skipped.
    """
    try:
        files = sorted(os.listdir(conf_dir))
    except OSError:
        return None
    for want_list in (True, False):
        for file_name in files:
            if not file_name.endswith(_CONF_SUFFIXES):
                continue
            if file_name.endswith(".conflist") != want_list:
                continue
            try:
                with open(os.path.join(conf_dir, file_name), "rb") as fh:
                    doc = jsoncodec.loads(fh.read())
            except (OSError, ValueError):
                continue
            if not isinstance(doc, dict) or doc.get("name") != name:
                continue
            if ("plugins" in doc) != want_list:
                continue
            return NetworkConfig.parse(doc)
    return None


def cluster_network(
    name: str,
    *,
    conf_dir: str,
    namespace: Namespace,
    lookup: NadLookup | None,
) -> NetworkConfig:
    """Resolve Multus's `clusterNetwork`: a file path, a NAD, or a conf by name."""
    if name.startswith("/"):
        try:
            with open(name, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise CniError(
                Code.INVALID_CONFIG, "cluster network config file unreadable", f"{name}: {exc}"
            ) from None
        return NetworkConfig.parse(data)
    if lookup is not None:
        nad = lookup(namespace, NadName(name))
        if nad is not None:
            return from_nad(nad, conf_dir=conf_dir)
    found = find_on_disk(name, conf_dir=conf_dir)
    if found is None:
        raise CniError(
            Code.INVALID_CONFIG,
            "cluster network not found",
            f"{name!r} is neither a NAD in {namespace} nor a CNI config in {conf_dir}",
        )
    return found
