"""Where the meta-plugin finds a native delegate for a CNI `type`.

The meta-plugin and the delegates never import each other (DESIGN.md): this
table names modules by string and loads one only when its type is used, so
the `jaring` binary's hot path never pays for pyroute2 unless it must.
Each named module exposes `PLUGIN`, an object satisfying `plugin.Plugin`.
"""

from __future__ import annotations

from .errors import CniError, Code
from .plugin import Plugin

NATIVE: dict[str, str] = {
    "bridge": "jaring.delegates.bridge",
    "macvlan": "jaring.delegates.macvlan",
    "ipvlan": "jaring.delegates.ipvlan",
    "host-device": "jaring.delegates.hostdevice",
    "sriov": "jaring.delegates.sriov",
    "host-local": "jaring.delegates.hostlocal",
    "static": "jaring.delegates.static",
}


def has_native(plugin_type: str) -> bool:
    return plugin_type in NATIVE


def load(plugin_type: str) -> Plugin:
    """Import and return the native plugin for a type; CniError if it cannot."""
    module_name = NATIVE.get(plugin_type)
    if module_name is None:
        raise CniError(Code.INVALID_CONFIG, "no native plugin for type", plugin_type)
    import importlib  # with `warnings`, ~0.5 ms the binary's exec-only path does without

    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CniError(
            Code.OTHER,
            f"native plugin {plugin_type!r} is not installed",
            f"{exc}; install jaring[delegates] or let jaring exec the binary",
        ) from None
    plugin: Plugin = module.PLUGIN
    return plugin
