"""NetworkAttachmentDefinition validation: a NAD in, findings and a `Ready` condition out.

Pure functions used by the Kopf handlers (status + Events) and by the NAD admission
webhook (the same message rejects the apply). Implements NPWG v1.3 section 2 (names,
`spec.config`) and checks known plugin types against `schemas/<type>.json`.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # jsonschema ships no py.typed marker
from jaring.cni.errors import CniError
from jaring.cni.netconf import NetworkConfig

RESOURCE_NAME_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"
# Plugin types with a schema; IPAM types are checked where a plugin's `ipam` names them.
# importlib.resources cannot read a namespace portion on 3.11: the package is a plain dir.
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_TYPES = ("bridge", "macvlan", "ipvlan", "host-device", "sriov", "host-local", "static")

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_MAC = re.compile(r"[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}")


class Severity(enum.Enum):
    ERROR = "error"  # the NAD cannot work: Ready=False, admission denies
    WARNING = "warning"  # works, but probably not what was meant: admission warning


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One problem, with the path of the field it is about (e.g. `spec.config.plugins[0].mode`)."""

    field: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _error(field: str, message: str) -> Finding:
    return Finding(field=field, message=message)


def _warning(field: str, message: str) -> Finding:
    return Finding(field=field, message=message, severity=Severity.WARNING)


@dataclass(frozen=True, kw_only=True)
class Condition:
    """A metav1.Condition of type `Ready`, minus the transition time (see `conditions`)."""

    status: bool
    reason: str
    message: str
    observed_generation: int | None = None


def is_dns1123_label(text: str) -> bool:
    return len(text) <= 63 and _LABEL.fullmatch(text) is not None


def is_dns1123_subdomain(text: str) -> bool:
    return 0 < len(text) <= 253 and all(_LABEL.fullmatch(p) for p in text.split("."))


def resource_name_problem(value: str) -> str | None:
    """An extended resource name `domain/name`, e.g. `intel.com/intel_sriov_netdevice`.

    Kubernetes accepts extended resources only in this fully qualified form,
    outside the `kubernetes.io` domain (IsExtendedResourceName).
    """
    domain, slash, name = value.partition("/")
    if not slash:
        return f"{value!r} must be <domain>/<name>, e.g. intel.com/sriov_netdevice"
    if not is_dns1123_subdomain(domain):
        return f"{domain!r} is not a DNS-1123 subdomain"
    if domain == "kubernetes.io" or domain.endswith(".kubernetes.io"):
        return f"{value!r}: the kubernetes.io domain is reserved for native resources"
    if len(name) > 63 or _QUALIFIED_NAME.fullmatch(name) is None:
        return f"{name!r} must be 1-63 characters [A-Za-z0-9-_.], alphanumeric at both ends"
    return None


def _is_ip(value: object) -> bool:
    try:
        ipaddress.ip_address(value)  # type: ignore[arg-type]  # any object; ValueError decides
    except (ValueError, TypeError):
        return False
    return True


def _is_cidr(value: object) -> bool:
    if not isinstance(value, str) or "/" not in value:
        return False
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return False
    return True


def _format_checker() -> Any:
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("ip-address")(_is_ip)
    checker.checks("cidr")(_is_cidr)
    checker.checks("mac-address")(lambda v: isinstance(v, str) and _MAC.fullmatch(v) is not None)
    return checker


@functools.cache
def _validator(plugin_type: str) -> Any:
    text = (SCHEMA_DIR / f"{plugin_type}.json").read_text()
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=_format_checker())


def _json_path(base: str, path: Sequence[object]) -> str:
    out = base
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_findings(plugin: Mapping[str, Any], where: str) -> Iterator[Finding]:
    """A plugin config (and its `ipam`) checked against the schema of its type, if any."""
    plugin_type = plugin.get("type")
    if plugin_type in SCHEMA_TYPES:
        errors = sorted(_validator(plugin_type).iter_errors(dict(plugin)), key=lambda e: e.path)
        for error in errors:
            yield _error(_json_path(where, list(error.path)), f"{plugin_type}: {error.message}")
    ipam = plugin.get("ipam")
    if isinstance(ipam, Mapping):
        ipam_type = ipam.get("type")
        if not isinstance(ipam_type, str) or not ipam_type:
            yield _error(f"{where}.ipam.type", "IPAM needs a plugin type")
        elif ipam_type in SCHEMA_TYPES and ipam_type != plugin_type:
            yield from schema_findings(ipam, f"{where}.ipam")


def _config_findings(nad_name: str, config: object) -> Iterator[Finding]:
    if not isinstance(config, str):
        yield _error("spec.config", f"must be a string, got {type(config).__name__}")
        return
    try:
        doc = json.loads(config)
    except ValueError as exc:
        yield _error("spec.config", f"not valid JSON: {exc}")
        return
    if not isinstance(doc, dict):
        yield _error("spec.config", "must be a JSON object (a conf or a conflist)")
        return
    try:
        netconf = NetworkConfig.parse(doc, default_name=nad_name)
    except CniError as exc:
        yield _error("spec.config", str(exc))
        return
    if "name" in doc and netconf.name != nad_name:
        # NPWG "should": the CNI name equals the NAD name. Multus runs it anyway.
        yield _warning(
            "spec.config.name",
            f"CNI name {netconf.name!r} differs from the NAD name {nad_name!r}",
        )
    for index, plugin in enumerate(netconf.plugins):
        where = f"spec.config.plugins[{index}]" if netconf.is_list else "spec.config"
        yield from schema_findings(plugin, where)


def validate_nad(
    *, name: str, namespace: str, spec: object, annotations: Mapping[str, str]
) -> tuple[Finding, ...]:
    """Everything wrong with one NAD, errors first. An empty tuple means valid."""
    found: list[Finding] = []
    if not is_dns1123_label(name):
        found.append(_error("metadata.name", f"{name!r} is not a DNS-1123 label (NPWG)"))
    if namespace and not is_dns1123_label(namespace):
        found.append(_error("metadata.namespace", f"{namespace!r} is not a DNS-1123 label"))
    resource_name = annotations.get(RESOURCE_NAME_ANNOTATION)
    if resource_name is not None:
        problem = resource_name_problem(resource_name)
        if problem:
            found.append(_error(f"metadata.annotations[{RESOURCE_NAME_ANNOTATION}]", problem))
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        found.append(_error("spec", "must be an object"))
    elif spec.get("config") not in (None, ""):
        # NPWG: an absent/empty config means "the node's on-disk config with this name".
        found.extend(_config_findings(name, spec["config"]))
    return tuple(sorted(found, key=lambda f: f.severity != Severity.ERROR))


def errors(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    return tuple(f for f in findings if f.severity is Severity.ERROR)


def warnings(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    return tuple(f for f in findings if f.severity is Severity.WARNING)


def summary(findings: Sequence[Finding]) -> str:
    """The one message shown in the condition, the Event and the admission denial."""
    return "; ".join(str(f) for f in findings)


def ready_condition(
    findings: Sequence[Finding], *, generation: int | None, uses_disk_config: bool = False
) -> Condition:
    bad = errors(findings)
    if bad:
        return Condition(
            status=False,
            reason="InvalidConfig",
            message=summary(bad),
            observed_generation=generation,
        )
    if uses_disk_config:
        return Condition(
            status=True,
            reason="OnDiskConfig",
            message="spec.config is empty: nodes use their on-disk config with this name",
            observed_generation=generation,
        )
    notes = warnings(findings)
    if notes:
        return Condition(
            status=True,
            reason="ValidWithWarnings",
            message=summary(notes),
            observed_generation=generation,
        )
    return Condition(
        status=True,
        reason="Valid",
        message="configuration is valid",
        observed_generation=generation,
    )


def conditions(old: object, ready: Condition, *, now: str) -> tuple[list[dict[str, Any]], bool]:
    """The new `status.conditions` list and whether it differs from `old`.

    Other condition types are kept; `lastTransitionTime` moves only when the status flips
    (metav1.Condition semantics), so re-validating an unchanged NAD writes nothing.
    """
    old_list = [c for c in old if isinstance(c, dict)] if isinstance(old, list) else []
    previous = next((c for c in old_list if c.get("type") == "Ready"), None)
    status = "True" if ready.status else "False"
    flipped = previous is None or previous.get("status") != status
    entry: dict[str, Any] = {
        "type": "Ready",
        "status": status,
        "reason": ready.reason,
        "message": ready.message,
        "lastTransitionTime": now
        if flipped or previous is None
        else previous.get("lastTransitionTime", now),
    }
    if ready.observed_generation is not None:
        entry["observedGeneration"] = ready.observed_generation
    new_list = [c for c in old_list if c.get("type") != "Ready"] + [entry]
    return new_list, new_list != old_list
