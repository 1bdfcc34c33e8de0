"""What every link plugin does around its link: IPAM with undo, results, prevResult.

Shared by bridge, macvlan, ipvlan, host-device and sriov so each plugin's
module holds only its own link logic (the reference plugins' shared
`pkg/ipam` and result handling; SPEC.md "Result", "prevResult", "CHECK").
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from typing import Any

from jaring.cni import version as versions
from jaring.cni.errors import CniError, Code
from jaring.cni.invoke import Executor
from jaring.cni.plugin import Request
from jaring.cni.records import replace
from jaring.cni.types import DNS, Interface, Result

from . import ipam as ipam_calls


@dataclass(frozen=True)
class Ipam:
    """How a link plugin reaches its IPAM; `executor` forces the exec path."""

    executor: Executor | None = None

    def add(self, req: Request, conf: Mapping[str, Any], undo: ExitStack) -> Result:
        """Allocate and register the release; error when IPAM gave no IPs."""
        result = ipam_calls.ipam_add(req, conf, executor=self.executor)
        undo.callback(self._release_quietly, req, conf)
        if not result.ips:
            raise CniError(Code.OTHER, "IPAM plugin returned missing IP config")
        return result

    def _release_quietly(self, req: Request, conf: Mapping[str, Any]) -> None:
        # Rollback is best effort; the ADD's own error is what the caller sees.
        with suppress(CniError):
            ipam_calls.ipam_del(req, conf, executor=self.executor)

    def delete(self, req: Request, conf: Mapping[str, Any]) -> None:
        ipam_calls.ipam_del(req, conf, executor=self.executor)

    def check(self, req: Request, conf: Mapping[str, Any]) -> None:
        ipam_calls.ipam_check(req, conf, executor=self.executor)

    def status(self, req: Request, conf: Mapping[str, Any]) -> None:
        ipam_calls.ipam_status(req, conf, executor=self.executor)

    def gc(self, req: Request, conf: Mapping[str, Any]) -> None:
        ipam_calls.ipam_gc(req, conf, executor=self.executor)


def cni_version(req: Request) -> str:
    return versions.require_supported(req.config.get("cniVersion"))


def network_name(req: Request) -> str:
    name = req.config.get("name")
    if not isinstance(name, str) or not name:
        raise CniError(Code.INVALID_CONFIG, "network config has no name", "'name' is required")
    return name


def dns_of(req: Request) -> DNS:
    try:
        return DNS.from_json(req.config.get("dns"))
    except CniError as exc:
        raise CniError(Code.INVALID_CONFIG, "invalid dns in network config", exc.msg) from None


def prev_result(req: Request) -> Result:
    """CHECK's prevResult, in the model; CniError when it is missing."""
    doc = req.config.get("prevResult")
    if doc is None:
        raise CniError(Code.INVALID_CONFIG, "Required prevResult missing", req.command)
    if isinstance(doc, dict) and "cniVersion" not in doc:
        doc = {**doc, "cniVersion": req.config.get("cniVersion", versions.LATEST)}
    return Result.from_json(doc)


def on_interface(ipam_result: Result, index: int) -> Result:
    """The IPAM result's IPs pointed at interface `index` (all IPs are the pod's)."""
    return replace(ipam_result, ips=tuple(replace(ip, interface=index) for ip in ipam_result.ips))


def result(
    req: Request,
    *,
    interfaces: tuple[Interface, ...],
    ipam_result: Result | None,
    pod_index: int,
) -> Result:
    """The plugin's ADD result: its interfaces, IPAM's IPs/routes, config DNS over IPAM's."""
    base = on_interface(ipam_result, pod_index) if ipam_result else Result()
    dns = dns_of(req) or base.dns
    return replace(base, cni_version=cni_version(req), interfaces=interfaces, dns=dns)


def pod_interface(result: Result, ifname: str, netns: str) -> int:
    """Index of the pod's interface in a (prev)result; CniError when absent."""
    for index, iface in enumerate(result.interfaces):
        if iface.name == ifname and iface.sandbox == netns:
            return index
    for index, iface in enumerate(result.interfaces):
        if iface.name == ifname and iface.sandbox:
            return index
    raise CniError(Code.OTHER, f"prevResult has no interface {ifname!r} in the pod", netns)


VALID_ATTACHMENTS_KEYS = ("cni.dev/valid-attachments", "cni.dev/attachments")


def valid_attachments(req: Request) -> set[tuple[str, str]]:
    """GC's (containerID, ifname) pairs to keep; either spelling of the key (SPEC.md GC)."""
    for key in VALID_ATTACHMENTS_KEYS:
        items = req.config.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise CniError(Code.INVALID_CONFIG, f"{key} must be a list", repr(items)[:200])
        pairs = set()
        for item in items:
            if not isinstance(item, dict):
                raise CniError(Code.INVALID_CONFIG, f"{key} entries must be objects", repr(item))
            pairs.add((str(item.get("containerID", "")), str(item.get("ifname", ""))))
        return pairs
    raise CniError(
        Code.INVALID_CONFIG,
        "GC needs the valid attachments",
        f"stdin has no {VALID_ATTACHMENTS_KEYS[0]!r}",
    )
