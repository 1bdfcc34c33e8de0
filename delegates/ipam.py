"""The one IPAM entry the link plugins use (bridge, macvlan, ipvlan, host-device, sriov).

`ipam_add`/`ipam_del`/`ipam_check`/`ipam_status`/`ipam_gc` run host-local and static
natively in-process; any other IPAM `type` is exec'd from CNI_PATH with the link
plugin's own parameters and the full network config on stdin, as the reference
plugins' `ipam.Exec*` do (CNI SPEC.md "Section 4: Plugin Delegation").
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from jaring.cni.errors import CniError, Code
from jaring.cni.invoke import BinaryExecutor, Executor, Runtime
from jaring.cni.plugin import Plugin, Request
from jaring.cni.records import replace
from jaring.cni.types import Result

# IPAM types jaring implements itself; everything else is a binary on CNI_PATH.
NATIVE_IPAM: Mapping[str, str] = {
    "host-local": "jaring.delegates.hostlocal",
    "static": "jaring.delegates.static",
}


def ipam_type(ipam: Mapping[str, Any]) -> str:
    """The IPAM plugin's type; CniError(7) when the section has none."""
    value = ipam.get("type") if isinstance(ipam, Mapping) else None
    if not isinstance(value, str) or not value:
        raise CniError(Code.INVALID_CONFIG, "IPAM config has no type", "ipam.type is required")
    return value


def native_ipam(plugin_type: str) -> Plugin | None:
    """The in-process plugin for an IPAM type, or None when it must be exec'd."""
    module_name = NATIVE_IPAM.get(plugin_type)
    if module_name is None:
        return None
    plugin: Plugin = importlib.import_module(module_name).PLUGIN
    return plugin


def _derived(req: Request, command: str, ipam: Mapping[str, Any]) -> Request:
    """The IPAM plugin's request: the link plugin's, with `ipam` as the section."""
    if req.config.get("ipam") == ipam:
        return replace(req, command=command)
    config = dict(req.config)
    config["ipam"] = dict(ipam)
    stdin = json.dumps(config, separators=(",", ":")).encode()
    return replace(req, command=command, stdin=stdin, config=config)


Loader = Callable[[str], Plugin | None]


def _run(
    req: Request,
    command: str,
    ipam: Mapping[str, Any],
    executor: Executor | None,
    loader: Loader,
) -> Result | None:
    plugin_type = ipam_type(ipam)
    sub = _derived(req, command, ipam)
    plugin = loader(plugin_type) if executor is None else None
    if plugin is None:
        runtime = Runtime(
            container_id=sub.container_id,
            netns=sub.netns,
            ifname=sub.ifname,
            args=sub.args,
            path=sub.path,
        )
        out = (executor or BinaryExecutor())(command, plugin_type, sub.stdin, runtime)
        if command != "ADD":
            return None
        if out is None:
            raise CniError(Code.DECODE, f"IPAM plugin {plugin_type!r} returned no result")
        return Result.from_json(out)
    try:
        if command == "ADD":
            return plugin.add(sub)
        if command == "DEL":
            plugin.delete(sub)
        elif command == "CHECK":
            plugin.check(sub)
        elif command == "STATUS":
            plugin.status(sub)
        else:
            plugin.gc(sub)
    except CniError:
        raise
    except Exception as exc:  # a plugin bug must reach the caller as a CNI error
        raise CniError(
            Code.OTHER, f"IPAM plugin {plugin_type!r} failed", f"{type(exc).__name__}: {exc}"
        ) from exc
    return None


def ipam_add(
    req: Request,
    ipam: Mapping[str, Any],
    *,
    executor: Executor | None = None,
    loader: Loader = native_ipam,
) -> Result:
    """Allocate: the IPAM plugin's result (ips, routes, dns; no interfaces).

    `executor` forces the exec path (tests, or a config that asks for the binary);
    `loader` finds the in-process plugin for a type (None: exec it).
    """
    result = _run(req, "ADD", ipam, executor, loader)
    assert result is not None  # _run returns a result for ADD or raises
    return result


def ipam_del(
    req: Request,
    ipam: Mapping[str, Any],
    *,
    executor: Executor | None = None,
    loader: Loader = native_ipam,
) -> None:
    """Release; succeeds when nothing is allocated."""
    _run(req, "DEL", ipam, executor, loader)


def ipam_check(
    req: Request,
    ipam: Mapping[str, Any],
    *,
    executor: Executor | None = None,
    loader: Loader = native_ipam,
) -> None:
    """Verify the allocation ADD made still exists."""
    _run(req, "CHECK", ipam, executor, loader)


def ipam_status(
    req: Request,
    ipam: Mapping[str, Any],
    *,
    executor: Executor | None = None,
    loader: Loader = native_ipam,
) -> None:
    """Ready to allocate (CNI 1.1.0 STATUS)."""
    _run(req, "STATUS", ipam, executor, loader)


def ipam_gc(
    req: Request,
    ipam: Mapping[str, Any],
    *,
    executor: Executor | None = None,
    loader: Loader = native_ipam,
) -> None:
    """Release what is not in the request's `cni.dev/valid-attachments` (CNI 1.1.0 GC)."""
    _run(req, "GC", ipam, executor, loader)
