"""The writing side of the local (clusterless) store, for `jaringctl`.

Owns reading Pod and NetworkAttachmentDefinition manifests (JSON, or YAML
through a lazy `import yaml`), validating them before anything is written,
and the canonical files `LocalSource` reads (local store contract:
`root/pods/<ns>/<name>.json`, `root/network-attachment-definitions/...`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaring.cni import selection
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import IfName, Namespace
from jaring.cni.netconf import NetworkConfig

POD = "Pod"
NAD = "NetworkAttachmentDefinition"
API_VERSIONS = {POD: "v1", NAD: "k8s.cni.cncf.io/v1"}
FOLDERS = {POD: "pods", NAD: "network-attachment-definitions"}
STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"
NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
PRIVATE_DIRS = (".status", ".jaring")
MANIFEST_SUFFIXES = (".json", ".yaml", ".yml")

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True, order=True)
class ObjectKey:
    """An object of the store: kind, namespace, name (the contract's index)."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Manifest:
    """One validated object and where it came from (for messages)."""

    key: ObjectKey
    body: Mapping[str, Any]
    origin: str
    notes: tuple[str, ...] = ()


def _refuse(origin: str, what: str, reason: str) -> CniError:
    return CniError(Code.INVALID_CONFIG, f"{origin}: {what}: {reason}")


# -- reading files -----------------------------------------------------------


def _load_yaml(path: str, text: str) -> list[object]:
    try:
        import yaml
    except ImportError:
        raise CniError(
            Code.IO,
            f"{path}: reading YAML needs PyYAML",
            "install it with: pip install 'jaring[local]' (or write the manifest as JSON)",
        ) from None
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise CniError(Code.DECODE, f"{path}: not valid YAML: {reason}") from None


def read_documents(path: str, text: str) -> list[tuple[str, object]]:
    """(origin, raw object) for every object in one file; `kind: List` is unpacked."""
    stripped = text.lstrip()
    docs: list[object]
    if stripped.startswith(("{", "[")):
        try:
            docs = [json.loads(text)]
        except ValueError as exc:
            if path.endswith(".json"):
                raise CniError(Code.DECODE, f"{path}: not valid JSON: {exc}") from None
            docs = _load_yaml(path, text)  # YAML flow style also starts with { or [
    elif path.endswith(".json"):
        raise CniError(Code.DECODE, f"{path}: not valid JSON: expected an object")
    else:
        docs = _load_yaml(path, text)
    found: list[tuple[str, object]] = []
    for index, doc in enumerate(docs, 1):
        if doc is None:  # an empty YAML document (a trailing ---)
            continue
        where = path if len(docs) == 1 else f"{path} (document {index})"
        if isinstance(doc, dict) and doc.get("kind") == "List":
            items = doc.get("items")
            if not isinstance(items, list):
                raise _refuse(where, "List", "items must be a list")
            found += [(f"{where} item {i}", item) for i, item in enumerate(items)]
        else:
            found.append((where, doc))
    return found


def manifest_files(target: Path) -> list[Path]:
    """The manifests `-f` names: the file itself, or a directory's files (not recursive)."""
    if target.is_dir():
        return sorted(
            p for p in target.iterdir() if p.is_file() and p.name.endswith(MANIFEST_SUFFIXES)
        )
    if target.exists():
        return [target]
    raise CniError(Code.IO, f"{target}: no such file or directory")


def load_manifests(targets: Sequence[str], *, stdin_text: str | None = None) -> list[Manifest]:
    """Read and validate everything first: one bad object refuses the whole set."""
    manifests: list[Manifest] = []
    for target in targets:
        if target == "-":
            documents = read_documents("<stdin>", stdin_text or "")
        else:
            documents = []
            for path in manifest_files(Path(target)):
                try:
                    text = path.read_text()
                except (OSError, UnicodeDecodeError) as exc:
                    raise CniError(Code.IO, f"{path}: cannot read: {exc}") from None
                documents += read_documents(str(path), text)
        manifests += [validate(raw, origin=origin) for origin, raw in documents]
    seen: dict[ObjectKey, str] = {}
    for manifest in manifests:
        if manifest.key in seen:
            raise _refuse(
                manifest.origin, str(manifest.key), f"defined twice (also in {seen[manifest.key]})"
            )
        seen[manifest.key] = manifest.origin
    return manifests


# -- validation ----------------------------------------------------------------


def _string_map(origin: str, what: str, value: object, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _refuse(origin, what, f"{field} must map strings to strings")
    return dict(value)


def validate(raw: object, *, origin: str) -> Manifest:
    """A Pod or NAD object in its canonical form, or a CniError naming file, object, reason."""
    if not isinstance(raw, dict):
        raise _refuse(origin, "document", f"must be an object, got {type(raw).__name__}")
    kind = raw.get("kind")
    metadata = raw.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    what = f"{kind or 'object'} {name}" if isinstance(name, str) else str(kind or "object")
    if kind not in API_VERSIONS:
        reason = "has no kind" if kind is None else f"kind {kind!r} is not supported"
        raise _refuse(origin, what, reason + " (only Pod and NetworkAttachmentDefinition)")
    if raw.get("apiVersion") != API_VERSIONS[kind]:
        raise _refuse(
            origin,
            what,
            f"apiVersion must be {API_VERSIONS[kind]!r}, got {raw.get('apiVersion')!r}",
        )
    if not isinstance(metadata, dict):
        raise _refuse(origin, what, "metadata must be an object")
    if not isinstance(name, str) or not name:
        raise _refuse(origin, what, "metadata.name is required (generateName is not supported)")
    namespace = metadata.get("namespace", "default")
    if not isinstance(namespace, str) or not selection.is_label(namespace):
        raise _refuse(origin, what, f"metadata.namespace must be a DNS-1123 label: {namespace!r}")
    what = f"{kind} {namespace}/{name}"
    if kind == NAD and not selection.is_label(name):
        raise _refuse(origin, what, "a NetworkAttachmentDefinition name must be a DNS-1123 label")
    if kind == POD and (len(name) > 253 or _SUBDOMAIN.fullmatch(name) is None):
        raise _refuse(origin, what, "a Pod name must be a DNS-1123 subdomain")
    annotations = _string_map(origin, what, metadata.get("annotations"), "metadata.annotations")
    _string_map(origin, what, metadata.get("labels"), "metadata.labels")
    uid = metadata.get("uid")
    if uid is not None and (not isinstance(uid, str) or not uid):
        raise _refuse(origin, what, "metadata.uid must be a non-empty string")
    body = json.loads(json.dumps(raw))  # a deep copy that is surely plain JSON
    body["metadata"]["namespace"] = namespace
    body.get("metadata", {}).pop("resourceVersion", None)
    notes: tuple[str, ...] = ()
    if kind == POD:
        _validate_pod(origin, what, annotations, Namespace(namespace))
        body["metadata"].get("annotations", {}).pop(STATUS_ANNOTATION, None)
    else:
        notes = _validate_nad(origin, what, raw, name)
    return Manifest(key=ObjectKey(kind, namespace, name), body=body, origin=origin, notes=notes)


def _validate_pod(
    origin: str, what: str, annotations: Mapping[str, str], namespace: Namespace
) -> None:
    """The selection annotations must parse: refuse now rather than at `up`."""
    try:
        attachments = selection.parse_selection(
            annotations.get(NETWORKS_ANNOTATION, ""), pod_namespace=namespace
        )
        selection.assign_ifnames(attachments, cluster_ifname=IfName("eth0"))
        selection.default_network_override(annotations, pod_namespace=namespace)
    except CniError as exc:
        raise _refuse(origin, what, f"annotation {NETWORKS_ANNOTATION}: {exc}") from None


def _validate_nad(origin: str, what: str, raw: Mapping[str, Any], name: str) -> tuple[str, ...]:
    spec = raw.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise _refuse(origin, what, "spec must be an object")
    config = spec.get("config")
    if config is None or (isinstance(config, str) and not config.strip()):
        return (
            f"{what} has no spec.config: it needs a CNI config named {name!r} in the "
            "meta-plugin's confDir",
        )
    if not isinstance(config, str):
        raise _refuse(
            origin, what, f"spec.config must be a string of JSON, got {type(config).__name__}"
        )
    try:
        parsed = NetworkConfig.parse(config, default_name=name)
    except CniError as exc:
        raise _refuse(origin, what, f"spec.config is not a valid CNI config: {exc}") from None
    if parsed.name != name:
        return (
            f"{what}: spec.config names the network {parsed.name!r}; NPWG advises the "
            "NAD's own name",
        )
    return ()


def nad_network(body: Mapping[str, Any]) -> NetworkConfig | None:
    """A stored NAD's CNI config (None without spec.config); CniError when it is invalid."""
    spec = body.get("spec")
    config = spec.get("config") if isinstance(spec, dict) else None
    if not isinstance(config, str) or not config.strip():
        return None
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return NetworkConfig.parse(config, default_name=name if isinstance(name, str) else None)


# -- the store -------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    key: ObjectKey
    body: Mapping[str, Any]
    path: Path


class Store:
    """A store root: canonical files written by apply, and every manifest under it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def canonical_path(self, key: ObjectKey) -> Path:
        return self.root / FOLDERS[key.kind] / key.namespace / f"{key.name}.json"

    def status_path(self, *, namespace: str, name: str) -> Path:
        return self.root / ".status" / f"{namespace}_{name}.json"

    def _manifest_paths(self) -> Iterator[Path]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root:
                dirnames[:] = [d for d in dirnames if d not in PRIVATE_DIRS]
            dirnames.sort()
            for file_name in sorted(filenames):
                if file_name.endswith(MANIFEST_SUFFIXES) and not file_name.startswith("."):
                    yield Path(dirpath) / file_name

    def objects(self, *, warn: list[str] | None = None) -> dict[ObjectKey, Stored]:
        """Every Pod and NAD under the root, as LocalSource sees them.

        A file that does not read is reported in `warn` and skipped: `get`
        must still show the rest.
        """
        found: dict[ObjectKey, Stored] = {}
        for path in self._manifest_paths():
            try:
                documents = read_documents(str(path), path.read_text())
            except (OSError, UnicodeDecodeError, CniError) as exc:
                if warn is not None:
                    warn.append(f"skipped {path}: {exc}")
                continue
            for origin, raw in documents:
                if not isinstance(raw, dict) or raw.get("kind") not in API_VERSIONS:
                    continue
                metadata = raw.get("metadata")
                if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
                    continue
                namespace = metadata.get("namespace") or "default"
                key = ObjectKey(str(raw["kind"]), str(namespace), metadata["name"])
                if key in found and warn is not None:
                    warn.append(f"{key} is defined twice: {found[key].path} and {origin}")
                found.setdefault(key, Stored(key=key, body=raw, path=path))
        return found

    def get(self, key: ObjectKey) -> Stored | None:
        path = self.canonical_path(key)
        if path.exists():
            try:
                body = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise CniError(Code.IO, f"{path}: unreadable: {exc}") from None
            return Stored(key=key, body=body, path=path)
        return self.objects().get(key)

    def write(self, manifest: Manifest) -> str:
        """Write the canonical file; returns 'created', 'configured' or 'unchanged'."""
        path = self.canonical_path(manifest.key)
        body = json.loads(json.dumps(manifest.body))
        old: Mapping[str, Any] | None = None
        if path.exists():
            try:
                loaded = json.loads(path.read_text())
                old = loaded if isinstance(loaded, dict) else None
            except (OSError, ValueError):
                old = None
        if manifest.key.kind == POD and not body["metadata"].get("uid"):
            previous = old.get("metadata", {}).get("uid") if old else None
            body["metadata"]["uid"] = previous or str(uuid.uuid4())
        if old == body:
            return "unchanged"
        write_atomic(path, json.dumps(body, indent=2, sort_keys=True) + "\n")
        return "configured" if old is not None else "created"

    def remove(self, key: ObjectKey) -> bool:
        path = self.canonical_path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        for parent in (path.parent, path.parent.parent):
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break
        return True

    def network_status(self, *, namespace: str, name: str) -> list[Mapping[str, Any]] | None:
        """The pod's network-status list, None when there is none (or it does not read)."""
        try:
            doc = json.loads(self.status_path(namespace=namespace, name=name).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(doc, list):
            return None
        return [e for e in doc if isinstance(e, dict)]


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
