"""Where pods and NADs come from: one small interface, two implementations.

`Source` is what the meta-plugin (meta.py) reads pods and NADs through and
writes network-status and Events to. `LocalSource` serves the clusterless
store (a directory of manifests); `ApiSource` the Kubernetes API through
`kubeclient.KubeClient`. Object shapes follow NPWG v1.3 (CRD, annotations).
"""

from __future__ import annotations

# = collections.abc, which imports the whole `collections` package (~1.5 ms a call)
import _collections_abc as _abc
import os
import time

from jaring.cni import jsoncodec
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import NadName, Namespace, PodName, PodUID
from jaring.cni.logs import get_logger
from jaring.cni.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # the binary imports kubeclient only when it talks to an API
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path  # and pathlib only for a manifest directory (LocalSource)
    from typing import Any, Protocol

    from .kubeclient import KubeClient
else:
    Protocol = object  # the classes below are only ever checked statically

log = get_logger(__name__)

NAD_API_VERSION = "k8s.cni.cncf.io/v1"
NAD_KIND = "NetworkAttachmentDefinition"
STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"
EVENT_COMPONENT = "jaring"

# Path-safe Kubernetes names (DNS-1123 subdomains): no '/', never '.' or '..'.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")  # no `re` on the binary's path


@record(frozen=True)
class PodInfo:
    namespace: Namespace
    name: PodName
    uid: PodUID
    annotations: Mapping[str, str]
    node_name: str = ""


@record(frozen=True)
class NadInfo:
    namespace: Namespace
    name: NadName
    config: str  # spec.config text ("" if none)
    annotations: Mapping[str, str]


class Source(Protocol):
    def get_pod(self, *, namespace: Namespace, name: PodName) -> PodInfo:
        """The pod; CniError(3) if it does not exist."""
        ...

    def get_nad(self, *, namespace: Namespace, name: NadName) -> NadInfo | None:
        """The NAD; None if it does not exist."""
        ...

    def write_status(self, *, namespace: Namespace, name: PodName, status: str) -> None:
        """Store the network-status annotation text; CniError on failure."""
        ...

    def post_event(
        self,
        *,
        namespace: Namespace,
        name: PodName,
        uid: PodUID,
        reason: str,
        message: str,
        warning: bool = False,
    ) -> None:
        """Record a Kubernetes Event about the pod; never raises (logs)."""
        ...


# -- object shapes (shared by both sources and by whoever caches objects) ---------


def pod_info(obj: object, *, origin: str, namespace: str = "default") -> PodInfo:
    """A Pod object (API JSON or a manifest) as a PodInfo; CniError(7) on a bad shape.

    `origin` names where the object came from (a URL, a file) for the message;
    `namespace` is the one to assume when the object does not say.
    """
    meta = _metadata(obj, kind="Pod", origin=origin, namespace=namespace)
    where = f"Pod {meta.namespace}/{meta.name} ({origin})"
    assert isinstance(obj, _abc.Mapping)
    spec = obj.get("spec")
    node_name: object = ""
    if spec is not None:
        if not isinstance(spec, _abc.Mapping):
            raise CniError(Code.INVALID_CONFIG, f"{where}: spec is not an object")
        node_name = spec.get("nodeName")
        node_name = "" if node_name is None else node_name
    if not isinstance(node_name, str):
        raise CniError(Code.INVALID_CONFIG, f"{where}: spec.nodeName is not a string")
    return PodInfo(
        namespace=Namespace(meta.namespace),
        name=PodName(meta.name),
        uid=PodUID(meta.uid),
        annotations=meta.annotations,
        node_name=node_name,
    )


def nad_info(obj: object, *, origin: str, namespace: str = "default") -> NadInfo:
    """A NetworkAttachmentDefinition object as a NadInfo; CniError(7) on a bad shape."""
    meta = _metadata(obj, kind=NAD_KIND, origin=origin, namespace=namespace)
    where = f"{NAD_KIND} {meta.namespace}/{meta.name} ({origin})"
    assert isinstance(obj, _abc.Mapping)
    spec = obj.get("spec")
    config: object = ""
    if spec is not None:
        if not isinstance(spec, _abc.Mapping):
            raise CniError(Code.INVALID_CONFIG, f"{where}: spec is not an object")
        config = spec.get("config")
        if config is None:
            config = ""
    if not isinstance(config, str):
        raise CniError(
            Code.INVALID_CONFIG,
            f"{where}: spec.config is not a string",
            f"got {type(config).__name__}; NPWG v1.3 spec.config is the CNI config as JSON text",
        )
    return NadInfo(
        namespace=Namespace(meta.namespace),
        name=NadName(meta.name),
        config=config,
        annotations=meta.annotations,
    )


@record(frozen=True)
class _Meta:
    namespace: str
    name: str
    uid: str
    annotations: Mapping[str, str]


def _metadata(obj: object, *, kind: str, origin: str, namespace: str) -> _Meta:
    if not isinstance(obj, _abc.Mapping):
        raise CniError(
            Code.INVALID_CONFIG, f"{kind} from {origin} is not an object", type(obj).__name__
        )
    meta = obj.get("metadata")
    if not isinstance(meta, _abc.Mapping):
        raise CniError(Code.INVALID_CONFIG, f"{kind} from {origin} has no metadata object")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise CniError(Code.INVALID_CONFIG, f"{kind} from {origin} has no metadata.name")
    found = meta.get("namespace")
    namespace = namespace if found is None or found == "" else found
    if not isinstance(namespace, str):
        raise CniError(Code.INVALID_CONFIG, f"{kind} {name} ({origin}): bad metadata.namespace")
    where = f"{kind} {namespace}/{name} ({origin})"
    uid = meta.get("uid")
    uid = "" if uid is None else uid
    if not isinstance(uid, str):
        raise CniError(Code.INVALID_CONFIG, f"{where}: metadata.uid is not a string")
    raw = meta.get("annotations")
    raw = {} if raw is None else raw
    if not isinstance(raw, _abc.Mapping):
        raise CniError(Code.INVALID_CONFIG, f"{where}: metadata.annotations is not an object")
    annotations: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise CniError(
                Code.INVALID_CONFIG,
                f"{where}: annotation {key!r} is not a string",
                "annotation values are strings (quote them in YAML)",
            )
        annotations[key] = value
    return _Meta(namespace=namespace, name=name, uid=uid, annotations=annotations)


def is_dns1123_name(value: str) -> bool:
    """A DNS-1123 subdomain: what Kubernetes allows as a pod or NAD name."""
    return (
        0 < len(value) <= 253
        and value[0] not in "-."
        and value[-1] not in "-."
        and _NAME_CHARS.issuperset(value)
    )


def _check_name(what: str, value: str) -> None:
    if not is_dns1123_name(value):
        raise CniError(
            Code.INVALID_CONFIG, f"invalid {what} name {value!r}", "expected a DNS-1123 name"
        )


# -- the Kubernetes API ------------------------------------------------------------

EVENT_MESSAGE_MAX = 1024  # what the API server accepts for Event.message


class ApiSource:
    """Pods and NADs from the Kubernetes API; status and Events written back to it."""

    def __init__(
        self,
        client: KubeClient,
        *,
        clock: Callable[[], float] = time.time,
        host: str = "",
    ) -> None:
        self.client = client
        self.clock = clock
        self.host = host or os.uname().nodename

    @staticmethod
    def pod_path(*, namespace: Namespace, name: PodName) -> str:
        _check_name("namespace", namespace)
        _check_name("pod", name)
        return f"/api/v1/namespaces/{namespace}/pods/{name}"

    @staticmethod
    def nad_path(*, namespace: Namespace, name: NadName) -> str:
        _check_name("namespace", namespace)
        _check_name(NAD_KIND, name)
        return (
            f"/apis/{NAD_API_VERSION}/namespaces/{namespace}/network-attachment-definitions/{name}"
        )

    def get_pod(self, *, namespace: Namespace, name: PodName) -> PodInfo:
        path = self.pod_path(namespace=namespace, name=name)
        obj = self.client.get(path)
        if obj is None:
            raise CniError(Code.CONTAINER_UNKNOWN, "pod not found", f"{namespace}/{name}")
        return pod_info(obj, origin=self.client.url(path), namespace=namespace)

    def get_nad(self, *, namespace: Namespace, name: NadName) -> NadInfo | None:
        path = self.nad_path(namespace=namespace, name=name)
        obj = self.client.get(path)
        if obj is None:
            return None
        return nad_info(obj, origin=self.client.url(path), namespace=namespace)

    def write_status(self, *, namespace: Namespace, name: PodName, status: str) -> None:
        from .kubeclient import KubeApiError

        path = self.pod_path(namespace=namespace, name=name)
        patch = {"metadata": {"annotations": {STATUS_ANNOTATION: status}}}
        try:
            self.client.patch(path, patch)
        except KubeApiError as exc:
            if exc.status == 404:
                raise CniError(
                    Code.CONTAINER_UNKNOWN,
                    "pod not found: cannot write network-status",
                    f"{namespace}/{name}",
                ) from None
            raise

    def post_event(
        self,
        *,
        namespace: Namespace,
        name: PodName,
        uid: PodUID,
        reason: str,
        message: str,
        warning: bool = False,
    ) -> None:
        now = self.clock()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        involved: dict[str, str] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": namespace,
            "name": name,
        }
        if uid:
            involved["uid"] = uid
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            # client-go's naming: unique without generateName, so any API accepts it.
            "metadata": {"name": _event_name(name, now), "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message[:EVENT_MESSAGE_MAX],
            "type": "Warning" if warning else "Normal",
            "source": {"component": EVENT_COMPONENT, "host": self.host},
            "reportingComponent": EVENT_COMPONENT,
            "reportingInstance": self.host,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            _check_name("namespace", namespace)
            self.client.post(f"/api/v1/namespaces/{namespace}/events", event)
        except Exception as exc:  # an Event is best effort: never fail a CNI call for it
            log.warning("cannot post event %s for %s/%s: %s", reason, namespace, name, exc)


def _event_name(pod: str, now: float) -> str:
    suffix = f".{int(now * 1e9):x}{os.urandom(2).hex()}"
    return pod[: 253 - len(suffix)] + suffix


# -- the local (clusterless) store ------------------------------------------------

_MANIFEST_SUFFIXES = (".json", ".yaml", ".yml")
_PRIVATE_DIRS = (".status", ".jaring")
_POD_KEY = "Pod"
_NAD_KEY = NAD_KIND

_Key = tuple[str, str, str]  # (kind, namespace, name)


@record(frozen=True)
class _Parsed:
    stamp: tuple[int, int]  # (mtime_ns, size): reparse only when the file changed
    objects: tuple[Mapping[str, Any], ...]


class LocalSource:
    """Pods and NADs from manifest files under `root`; status and events beside them.

    The local store contract: canonical JSON files written by `jaringctl
    apply` (`pods/<ns>/<name>.json`, `network-attachment-definitions/<ns>/
    <name>.json`) are read directly; any other `*.json`/`*.yaml`/`*.yml`
    under the root (not under `.status/` or `.jaring/`) is scanned when the
    canonical file is absent. YAML is imported only for files that are not JSON.
    """

    def __init__(self, root: Path, *, clock: Callable[[], float] = time.time) -> None:
        from pathlib import Path

        self.root = Path(root)
        self.clock = clock
        self._parsed: dict[Path, _Parsed] = {}

    # paths of the contract
    @property
    def status_dir(self) -> Path:
        return self.root / ".status"

    def status_path(self, *, namespace: Namespace, name: PodName) -> Path:
        _check_name("namespace", namespace)
        _check_name("pod", name)
        return self.status_dir / f"{namespace}_{name}.json"

    @property
    def events_path(self) -> Path:
        return self.status_dir / "events.log"

    def pod_path(self, *, namespace: Namespace, name: PodName) -> Path:
        _check_name("namespace", namespace)
        _check_name("pod", name)
        return self.root / "pods" / namespace / f"{name}.json"

    def nad_path(self, *, namespace: Namespace, name: NadName) -> Path:
        _check_name("namespace", namespace)
        _check_name(NAD_KIND, name)
        return self.root / "network-attachment-definitions" / namespace / f"{name}.json"

    # Source
    def get_pod(self, *, namespace: Namespace, name: PodName) -> PodInfo:
        found = self._find(_POD_KEY, namespace, name, self.pod_path(namespace=namespace, name=name))
        if found is None:
            raise CniError(
                Code.CONTAINER_UNKNOWN, "pod not found", f"{namespace}/{name} in {self.root}"
            )
        obj, path = found
        return pod_info(obj, origin=str(path))

    def get_nad(self, *, namespace: Namespace, name: NadName) -> NadInfo | None:
        found = self._find(_NAD_KEY, namespace, name, self.nad_path(namespace=namespace, name=name))
        if found is None:
            return None
        obj, path = found
        return nad_info(obj, origin=str(path))

    def write_status(self, *, namespace: Namespace, name: PodName, status: str) -> None:
        path = self.status_path(namespace=namespace, name=name)
        try:
            _write_atomic(path, status.encode())
        except OSError as exc:
            raise CniError(Code.IO, "cannot write network-status", f"{path}: {exc}") from None

    def read_status(self, *, namespace: Namespace, name: PodName) -> str | None:
        """The network-status text last written for the pod, None if none."""
        path = self.status_path(namespace=namespace, name=name)
        try:
            return path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CniError(Code.IO, "cannot read network-status", f"{path}: {exc}") from None

    def post_event(
        self,
        *,
        namespace: Namespace,
        name: PodName,
        uid: PodUID,
        reason: str,
        message: str,
        warning: bool = False,
    ) -> None:
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock())),
            "namespace": namespace,
            "name": name,
            "uid": uid,
            "type": "Warning" if warning else "Normal",
            "reason": reason,
            "message": message,
        }
        line = (jsoncodec.dumps(record, sort_keys=True) + "\n").encode()
        try:
            self.status_dir.mkdir(parents=True, exist_ok=True)
            # One O_APPEND write per event: lines from parallel calls never interleave.
            fd = os.open(self.events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("cannot record event %s for %s/%s: %s", reason, namespace, name, exc)

    def events(self) -> list[dict[str, Any]]:
        """Every event recorded so far, oldest first; unreadable lines are skipped."""
        try:
            text = self.events_path.read_text()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CniError(Code.IO, "cannot read events", f"{self.events_path}: {exc}") from None
        found: list[dict[str, Any]] = []
        for line in text.splitlines():
            try:
                doc = jsoncodec.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                found.append(doc)
        return found

    # lookup
    def _find(
        self, kind: str, namespace: str, name: str, canonical: Path
    ) -> tuple[Mapping[str, Any], Path] | None:
        key = (kind, namespace, name)
        if canonical.is_file():
            for obj in self._objects(canonical):
                if _key(obj) == key:
                    return obj, canonical
        hits = [(obj, path) for path in self._manifests() for obj in self._objects(path)]
        matches = [(obj, path) for obj, path in hits if _key(obj) == key]
        if len(matches) > 1:
            raise CniError(
                Code.INVALID_CONFIG,
                f"{kind} {namespace}/{name} is defined more than once",
                ", ".join(str(path) for _, path in matches),
            )
        return matches[0] if matches else None

    def _manifests(self) -> Iterator[Path]:
        from pathlib import Path

        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            here = Path(dirpath)
            if here == self.root:
                dirnames[:] = [d for d in dirnames if d not in _PRIVATE_DIRS]
            dirnames.sort()
            for file_name in sorted(filenames):
                if file_name.endswith(_MANIFEST_SUFFIXES):
                    yield here / file_name

    def _objects(self, path: Path) -> tuple[Mapping[str, Any], ...]:
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            cached = self._parsed.get(path)
            if cached is not None and cached.stamp == stamp:
                return cached.objects
            data = path.read_bytes()
        except OSError as exc:
            raise CniError(Code.IO, "cannot read manifest", f"{path}: {exc}") from None
        objects = tuple(_expand(doc, path) for doc in _documents(data, path))
        flat = tuple(obj for group in objects for obj in group)
        self._parsed[path] = _Parsed(stamp=stamp, objects=flat)
        return flat


def _key(obj: Mapping[str, Any]) -> _Key | None:
    kind = obj.get("kind")
    meta = obj.get("metadata")
    if kind not in (_POD_KEY, _NAD_KEY) or not isinstance(meta, _abc.Mapping):
        return None
    namespace = meta.get("namespace") or "default"
    name = meta.get("name")
    if not isinstance(namespace, str) or not isinstance(name, str):
        return None
    return (kind, namespace, name)


def _documents(data: bytes, path: Path) -> list[object]:
    """Every document in a manifest file: JSON first, YAML only when it is not JSON."""
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise CniError(Code.DECODE, "manifest is not UTF-8", f"{path}: {exc}") from None
    stripped = text.lstrip()
    if path.suffix == ".json" or stripped.startswith(("{", "[")):
        try:
            return [jsoncodec.loads(text)]
        except ValueError as exc:
            if path.suffix == ".json":
                raise CniError(
                    Code.DECODE, "manifest is not valid JSON", f"{path}: {exc}"
                ) from None
    if not stripped:
        return []
    try:
        import yaml
    except ImportError:
        raise CniError(
            Code.INVALID_CONFIG,
            "reading YAML manifests needs PyYAML (pip install 'jaring[local]')",
            str(path),
        ) from None
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise CniError(Code.DECODE, "manifest is not valid YAML", f"{path}: {exc}") from None


def _expand(doc: object, path: Path) -> tuple[Mapping[str, Any], ...]:
    """One document as its objects: a `kind: List` (or `PodList` ...) gives its items."""
    if not isinstance(doc, _abc.Mapping):
        raise CniError(
            Code.INVALID_CONFIG,
            "manifest document is not an object",
            f"{path}: got {type(doc).__name__}",
        )
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
        items = doc["items"]
        if not isinstance(items, list) or not all(isinstance(i, _abc.Mapping) for i in items):
            raise CniError(Code.INVALID_CONFIG, f"{kind} items are not objects", str(path))
        objects: tuple[Mapping[str, Any], ...] = tuple(items)
    else:
        objects = (doc,)
    for obj in objects:
        if (
            obj.get("kind") == _NAD_KEY
            and obj.get("apiVersion", NAD_API_VERSION) != NAD_API_VERSION
        ):
            raise CniError(
                Code.INVALID_CONFIG,
                f"{NAD_KIND} has apiVersion {obj.get('apiVersion')!r}",
                f"{path}: expected {NAD_API_VERSION}",
            )
    return objects


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file + fsync + rename in the same directory: readers see old or new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile: it imports shutil, bz2 and lzma (~3 ms) on the binary's path.
    tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:  # noqa: SIM105  # contextlib costs the binary ~2 ms a call
            os.unlink(tmp)
        except OSError:
            pass
        raise
