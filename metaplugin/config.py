"""The meta-plugin's own network configuration (the `00-jaring.conf` on stdin).

Accepts Multus's keys with Multus's meaning, so a Multus `00-multus.conf`
runs with only `type` changed (DESIGN.md "Compatibility promises"), plus
jaring's own keys. Parsed once per call into a frozen `MetaConfig`.
"""

from __future__ import annotations

from jaring.cni import version as versions
from jaring.cni.errors import CniError, Code
from jaring.cni.records import record

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

DEFAULT_CONF_DIR = "/etc/cni/jaring/net.d"
DEFAULT_CACHE_DIR = "/var/lib/cni/jaring"
DEFAULT_BIN_DIR = "/opt/cni/bin"
DEFAULT_SOCKET = "/run/jaring/jaring.sock"
DEFAULT_DEVINFO_DIR = "/var/run/k8s.cni.cncf.io/devinfo"
# Where the kubelet records device-plugin allocations (the path Multus reads).
DEFAULT_CHECKPOINT = "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint"
LOG_LEVELS = ("debug", "verbose", "error", "panic")


@record(frozen=True)
class MetaConfig:
    """What one call of the meta-plugin needs to know from its config."""

    name: str
    cni_version: str
    kubeconfig: str = ""
    # The cluster network: inline delegate configs (Multus `delegates`), or a
    # name/path resolved like Multus `clusterNetwork`.
    delegates: tuple[Mapping[str, Any], ...] = ()
    cluster_network: str = ""
    default_networks: tuple[str, ...] = ()
    multus_namespace: str = "kube-system"
    system_namespaces: tuple[str, ...] = ("kube-system",)
    namespace_isolation: bool = False
    global_namespaces: frozenset[str] = frozenset({"default"})
    conf_dir: str = DEFAULT_CONF_DIR
    cache_dir: str = DEFAULT_CACHE_DIR
    bin_dir: str = ""
    readiness_file: str = ""
    readiness_timeout: float = 10.0
    log_file: str = ""
    log_level: str = "error"
    log_to_stderr: bool = False
    capabilities: frozenset[str] = frozenset()
    runtime_config: Mapping[str, Any] | None = None
    # jaring's own keys
    manifest_dir: str = ""
    invalid_selection: str = "error"  # "error" | "ignore"
    exec_types: frozenset[str] = frozenset()
    native_types: frozenset[str] = frozenset()
    status_failure: str = "rollback"  # "rollback" | "warn"
    daemon_socket: str = DEFAULT_SOCKET
    devinfo_dir: str = DEFAULT_DEVINFO_DIR
    events: bool = True
    kubelet_checkpoint: str = DEFAULT_CHECKPOINT


def _get(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = doc.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise CniError(
            Code.INVALID_CONFIG, f"invalid jaring config: {key!r} must be {names}", repr(value)
        )
    return value


def _str_list(doc: Mapping[str, Any], key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    """A list of strings; Multus also accepts a comma-separated string here."""
    value = doc.get(key)
    if value is None:
        return default
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise CniError(
        Code.INVALID_CONFIG,
        f"invalid jaring config: {key!r} must be a list of strings",
        repr(value),
    )


def _choice(doc: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = _get(doc, key, str, default)
    if value not in choices:
        raise CniError(
            Code.INVALID_CONFIG,
            f"invalid jaring config: {key!r} must be one of {', '.join(choices)}",
            repr(value),
        )
    return str(value)


def parse_config(doc: Mapping[str, Any]) -> MetaConfig:
    """Validate the meta-plugin config; CniError(7) names the bad key."""
    cni_version = versions.require_supported(doc.get("cniVersion"))
    name = _get(doc, "name", str, "")
    if not name:
        raise CniError(Code.INVALID_CONFIG, "invalid jaring config: 'name' is required")
    delegates = _get(doc, "delegates", list, [])
    for index, delegate in enumerate(delegates):
        if not isinstance(delegate, dict):
            raise CniError(
                Code.INVALID_CONFIG,
                f"invalid jaring config: delegates[{index}] must be an object",
                repr(delegate)[:200],
            )
    cluster_network = _get(doc, "clusterNetwork", str, "")
    if not delegates and not cluster_network:
        # LESSONS #4: never fall back silently to "no cluster network".
        raise CniError(
            Code.INVALID_CONFIG,
            "invalid jaring config: no cluster network",
            "set 'clusterNetwork' (NAD name, conf name or file path) or 'delegates'",
        )
    capabilities = _get(doc, "capabilities", dict, {})
    runtime_config = _get(doc, "runtimeConfig", dict, None)
    log_level = _get(doc, "logLevel", str, "error").lower() or "error"
    if log_level not in LOG_LEVELS:
        raise CniError(
            Code.INVALID_CONFIG,
            f"invalid jaring config: 'logLevel' must be one of {', '.join(LOG_LEVELS)}",
            repr(log_level),
        )
    timeout = _get(doc, "readinessTimeout", (int, float), 10.0)
    return MetaConfig(
        name=name,
        cni_version=cni_version,
        kubeconfig=_get(doc, "kubeconfig", str, ""),
        delegates=tuple(delegates),
        cluster_network=cluster_network,
        default_networks=_str_list(doc, "defaultNetworks"),
        multus_namespace=_get(doc, "multusNamespace", str, "kube-system") or "kube-system",
        system_namespaces=_str_list(doc, "systemNamespaces", ("kube-system",)),
        namespace_isolation=_get(doc, "namespaceIsolation", bool, False),
        # Multus: with namespaceIsolation, NADs in "default" are usable from any
        # namespace unless globalNamespaces names the global ones explicitly.
        global_namespaces=frozenset(_str_list(doc, "globalNamespaces", ("default",))),
        conf_dir=_get(doc, "confDir", str, DEFAULT_CONF_DIR) or DEFAULT_CONF_DIR,
        cache_dir=_get(doc, "cniDir", str, DEFAULT_CACHE_DIR) or DEFAULT_CACHE_DIR,
        bin_dir=_get(doc, "binDir", str, ""),
        readiness_file=_get(doc, "readinessindicatorfile", str, ""),
        readiness_timeout=float(timeout),
        log_file=_get(doc, "logFile", str, ""),
        log_level=log_level,
        log_to_stderr=_get(doc, "logToStderr", bool, False),
        capabilities=frozenset(k for k, v in capabilities.items() if v is True),
        runtime_config=runtime_config,
        manifest_dir=_get(doc, "manifestDir", str, ""),
        invalid_selection=_choice(doc, "invalidSelection", ("error", "ignore"), "error"),
        exec_types=frozenset(_str_list(doc, "execTypes")),
        native_types=frozenset(_str_list(doc, "nativeTypes")),
        status_failure=_choice(doc, "statusFailure", ("rollback", "warn"), "rollback"),
        daemon_socket=_get(doc, "daemonSocket", str, DEFAULT_SOCKET),
        devinfo_dir=_get(doc, "deviceInfoDir", str, DEFAULT_DEVINFO_DIR) or DEFAULT_DEVINFO_DIR,
        events=_get(doc, "events", bool, True),
        kubelet_checkpoint=_get(doc, "kubeletCheckpoint", str, DEFAULT_CHECKPOINT)
        or DEFAULT_CHECKPOINT,
    )
