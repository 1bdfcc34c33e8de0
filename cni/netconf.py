"""A delegate's network configuration: a single config or a conflist.

Parsed once from bytes or a dict into `NetworkConfig`, which `invoke` turns
into one plugin config per chain step (CNI SPEC.md "Network configuration",
"Plugin configuration objects"). Keys jaring does not know pass through
untouched; `type` must be a plain file name so no config can exec an
arbitrary path.
"""

from __future__ import annotations

# = collections.abc, which imports the whole `collections` package (~1.5 ms a call)
import _collections_abc as _abc

from . import jsoncodec
from . import version as versions
from .errors import CniError, Code
from .records import record

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


def check_type(plugin_type: object, where: str) -> str:
    """A plugin `type` is a bare executable name: no path, no '..'."""
    if not isinstance(plugin_type, str) or not plugin_type:
        raise CniError(Code.INVALID_CONFIG, f"{where}: 'type' is required", repr(plugin_type))
    if (
        "/" in plugin_type
        or "\\" in plugin_type
        or plugin_type in (".", "..")
        or ("\x00" in plugin_type)
    ):
        raise CniError(
            Code.INVALID_CONFIG, f"{where}: 'type' must be a plain file name", repr(plugin_type)
        )
    return plugin_type


@record(frozen=True)
class NetworkConfig:
    """One network: its name, version and plugin chain (a conf is a chain of one)."""

    name: str
    cni_version: str
    plugins: tuple[Mapping[str, Any], ...]
    is_list: bool = False
    disable_check: bool = False
    disable_gc: bool = False
    raw: Mapping[str, Any] | None = None  # the document as given, for to_json

    @classmethod
    def parse(
        cls, data: bytes | str | Mapping[str, Any], *, default_name: str | None = None
    ) -> NetworkConfig:
        """Parse a conf or conflist; CniError(6) for bad JSON, (7) for bad shape.

        `default_name` is injected when the document has no `name` (NPWG:
        a NAD's spec.config without a name takes the NAD's name).
        """
        if isinstance(data, _abc.Mapping):
            doc: Any = dict(data)
        else:
            try:
                doc = jsoncodec.loads(data)
            except (ValueError, UnicodeDecodeError) as exc:
                raise CniError(Code.DECODE, "network config is not valid JSON", str(exc)) from None
        if not isinstance(doc, dict):
            raise CniError(Code.DECODE, "network config must be a JSON object", type(doc).__name__)
        name = doc.get("name")
        if name is None or name == "":
            if not default_name:
                raise CniError(Code.INVALID_CONFIG, "network config has no 'name'")
            name = default_name
            doc["name"] = name
        if not isinstance(name, str):
            raise CniError(
                Code.INVALID_CONFIG, "network config 'name' must be a string", repr(name)
            )
        cni_version = doc.get("cniVersion")
        if not isinstance(cni_version, str) or not cni_version:
            raise CniError(
                Code.INVALID_CONFIG,
                f"network {name!r}: 'cniVersion' is required",
                repr(cni_version),
            )
        versions.require_supported(cni_version)
        if "plugins" in doc:
            plugins = doc["plugins"]
            if not isinstance(plugins, list) or not plugins:
                raise CniError(
                    Code.INVALID_CONFIG,
                    f"network {name!r}: 'plugins' must be a non-empty list",
                    repr(plugins)[:200],
                )
            for index, plugin in enumerate(plugins):
                if not isinstance(plugin, dict):
                    raise CniError(
                        Code.INVALID_CONFIG,
                        f"network {name!r}: plugins[{index}] must be an object",
                        repr(plugin)[:200],
                    )
                check_type(plugin.get("type"), f"network {name!r} plugins[{index}]")
            return cls(
                name=name,
                cni_version=cni_version,
                plugins=tuple(plugins),
                is_list=True,
                disable_check=_flag(doc, "disableCheck", name),
                disable_gc=_flag(doc, "disableGC", name),
                raw=doc,
            )
        check_type(doc.get("type"), f"network {name!r}")
        return cls(name=name, cni_version=cni_version, plugins=(doc,), raw=doc)

    def capabilities(self) -> frozenset[str]:
        """Capabilities any plugin of the chain declares (`true` values only)."""
        found: set[str] = set()
        for plugin in self.plugins:
            caps = plugin.get("capabilities")
            if isinstance(caps, dict):
                found.update(k for k, v in caps.items() if v is True)
        return frozenset(found)

    def with_cni_args(self, args: Mapping[str, Any]) -> NetworkConfig:
        """Every plugin gets `args.cni` = args (NPWG `cni-args`), other args kept."""
        plugins = []
        for plugin in self.plugins:
            copy = dict(plugin)
            old = copy.get("args")
            merged = dict(old) if isinstance(old, dict) else {}
            merged["cni"] = dict(args)
            copy["args"] = merged
            plugins.append(copy)
        raw = dict(self.raw) if self.raw is not None else None
        if raw is not None:
            if self.is_list:
                raw["plugins"] = plugins
            else:
                raw = plugins[0]
        return NetworkConfig(
            name=self.name,
            cni_version=self.cni_version,
            plugins=tuple(plugins),
            is_list=self.is_list,
            disable_check=self.disable_check,
            disable_gc=self.disable_gc,
            raw=raw,
        )

    def to_json(self) -> dict[str, Any]:
        """The document as given (name injected): what the cache stores."""
        if self.raw is not None:
            copy: dict[str, Any] = jsoncodec.loads(jsoncodec.dumps(self.raw))  # deep, plain JSON
            return copy
        if self.is_list:
            return {
                "cniVersion": self.cni_version,
                "name": self.name,
                "plugins": list(self.plugins),
            }
        return dict(self.plugins[0])

    def plugin_config(
        self,
        index: int,
        *,
        runtime_config: Mapping[str, Any] | None = None,
        prev_result: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Plugin `index`'s config as sent on stdin (SPEC.md "Deriving execution configuration").

        `cniVersion` and `name` come from the network; `runtimeConfig` carries
        only the keys this plugin declares in `capabilities`; `capabilities`
        itself is not passed.
        """
        conf = dict(self.plugins[index])
        conf["cniVersion"] = self.cni_version
        conf["name"] = self.name
        caps = conf.pop("capabilities", None)
        declared = {k for k, v in caps.items() if v is True} if isinstance(caps, dict) else set()
        conf.pop("runtimeConfig", None)
        if runtime_config:
            chosen = {k: v for k, v in runtime_config.items() if k in declared}
            if chosen:
                conf["runtimeConfig"] = chosen
        if prev_result is not None:
            conf["prevResult"] = dict(prev_result)
        else:
            conf.pop("prevResult", None)
        return conf


def _flag(doc: Mapping[str, Any], key: str, name: str) -> bool:
    value = doc.get(key, False)
    if not isinstance(value, bool):
        raise CniError(
            Code.INVALID_CONFIG, f"network {name!r}: {key!r} must be a boolean", repr(value)
        )
    return value
