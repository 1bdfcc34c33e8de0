"""Typed reads of a delegate's network config keys, with the reference's errors.

Every native delegate parses its stdin config through these helpers so a
wrong type is one clear CniError(INVALID_CONFIG) naming the key (SPEC.md
"Network configuration"; the reference plugins' JSON decoding).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaring.cni.errors import CniError, Code
from jaring.cni.plugin import Request


def _bad(key: str, want: str, value: object) -> CniError:
    return CniError(Code.INVALID_CONFIG, f"config key {key!r} must be {want}", repr(value))


def opt_str(conf: Mapping[str, Any], key: str, default: str = "") -> str:
    value = conf.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _bad(key, "a string", value)
    return value


def opt_bool(conf: Mapping[str, Any], key: str, default: bool = False) -> bool:
    value = conf.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(key, "a boolean", value)
    return value


def opt_int(conf: Mapping[str, Any], key: str, default: int = 0, *, minimum: int = 0) -> int:
    value = conf.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _bad(key, f"an integer >= {minimum}", value)
    return value


def opt_obj(conf: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = conf.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(key, "an object", value)
    return value


def ipam_conf(conf: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `ipam` section; empty when the network is layer 2 only."""
    ipam = opt_obj(conf, "ipam")
    if ipam and not opt_str(ipam, "type"):
        raise CniError(Code.INVALID_CONFIG, "ipam section has no type", repr(dict(ipam)))
    return ipam


def requested_mac(req: Request) -> str:
    """The MAC the runtime asked for: runtimeConfig.mac, args.cni.mac or CNI_ARGS MAC.

    Same precedence as the reference plugins (CNI_ARGS, then args, then
    runtimeConfig overriding).
    """
    mac = req.arg("MAC") or ""
    cni_args = opt_obj(opt_obj(req.config, "args"), "cni")
    mac = opt_str(cni_args, "mac", mac)
    return opt_str(opt_obj(req.config, "runtimeConfig"), "mac", mac)
