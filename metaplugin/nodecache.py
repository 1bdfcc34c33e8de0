"""The node daemon's caches: NADs of every namespace and the pods of its node.

One `Reflector` thread per resource lists, then watches (resourceVersion,
bookmarks, relist on 410 Gone or a broken stream) and keeps only what an ADD
reads: pods as `PodInfo`, NADs as `NadInfo`, large annotations dropped
(LESSONS #5, #8). Used by `nodesource.CachedSource`; started by `daemon.py`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

from jaring.cni.errors import CniError
from jaring.cni.ids import NadName, Namespace, PodName
from jaring.cni.records import replace

from .kubeclient import KubeClient
from .sources import (
    NAD_API_VERSION,
    NAD_KIND,
    STATUS_ANNOTATION,
    NadInfo,
    PodInfo,
    nad_info,
    pod_info,
)

log = logging.getLogger(__name__)

# Annotations an ADD never reads and that can be large: not kept in memory.
DROPPED_ANNOTATIONS = frozenset(
    {"kubectl.kubernetes.io/last-applied-configuration", STATUS_ANNOTATION}
)
PODS_PATH = "/api/v1/pods"
NADS_PATH = f"/apis/{NAD_API_VERSION}/network-attachment-definitions"
WATCH_SECONDS = 300  # server-side watch timeout; the stream is then resumed
READ_SLACK = 30.0  # a watch read gives up this long after the server should have spoken
MAX_BACKOFF = 10.0
QUICK_END = 1.0

T = TypeVar("T")
Key = tuple[str, str]


class WatchGoneError(Exception):
    """The API said 410 Gone: the resourceVersion is too old, relist."""


def trim(annotations: dict[str, str] | Any) -> dict[str, str]:
    return {sys.intern(k): v for k, v in dict(annotations).items() if k not in DROPPED_ANNOTATIONS}


def pod_entry(obj: object, *, node_name: str) -> PodInfo | None:
    """The cached shape of a pod object; None when it is not on this node."""
    pod = pod_info(obj, origin="watch")
    if node_name and pod.node_name and pod.node_name != node_name:
        return None
    return replace(
        pod,
        namespace=Namespace(sys.intern(pod.namespace)),
        annotations=trim(pod.annotations),
        node_name=sys.intern(pod.node_name),
    )


def nad_entry(obj: object) -> NadInfo:
    nad = nad_info(obj, origin="watch")
    return replace(nad, namespace=Namespace(sys.intern(nad.namespace)), annotations={})


@dataclass(frozen=True)
class Resource(Generic[T]):
    """What a reflector watches and how it turns an object into a cache entry."""

    kind: str
    path: str
    field_selector: str
    entry: Callable[[object], T | None]


class Store(Generic[T]):
    """A dict of entries by (namespace, name), replaced whole on relist."""

    def __init__(self) -> None:
        self._items: dict[Key, T] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()

    def get(self, key: Key) -> T | None:
        return self._items.get(key)  # a dict read is atomic under the GIL

    def __len__(self) -> int:
        return len(self._items)

    def replace_all(self, items: dict[Key, T]) -> None:
        with self._lock:
            self._items = items
        self.synced.set()

    def put(self, key: Key, value: T | None) -> None:
        with self._lock:
            if value is None:
                self._items.pop(key, None)
            else:
                self._items[key] = value


def _key(obj: object) -> Key | None:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return None
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not isinstance(namespace, str):
        return None
    return (sys.intern(namespace), name)


class Reflector(Generic[T]):
    """List + watch one resource into a `Store`, on its own daemon thread."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource[T],
        store: Store[T],
        *,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.store = store
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"watch-{resource.kind}", daemon=True
        )
        self.relists = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            # close() alone does not wake a recv() blocked in another thread.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                version = self._list()
                backoff = 0.2
                while not self._stop.is_set():
                    started = time.monotonic()
                    version = self._watch(version)
                    if time.monotonic() - started < QUICK_END:
                        # A server ends a watch at timeoutSeconds; an early end
                        # means trouble: do not spin on it.
                        self._sleep(QUICK_END)
            except WatchGoneError:
                log.info("%s watch: resourceVersion expired, relisting", self.resource.kind)
            except Exception as exc:  # any failure: relist after a pause, never die
                if self._stop.is_set():
                    return
                log.warning("%s watch failed (%s), relisting", self.resource.kind, exc)
                self._sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)

    def _query(self, **extra: str) -> str:
        params = dict(extra)
        if self.resource.field_selector:
            params["fieldSelector"] = self.resource.field_selector
        return "&".join(f"{k}={quote(v, safe='=,')}" for k, v in params.items())

    def _list(self) -> str:
        doc = self.client.get(f"{self.resource.path}?{self._query()}")
        if doc is None:
            # 404: the CRD is not installed (yet). Nothing of that kind exists:
            # serve an empty cache and look again later.
            self.store.replace_all({})
            raise CniError(5, f"{self.resource.kind}: the API does not serve {self.resource.path}")
        items: dict[Key, T] = {}
        for obj in doc.get("items") or ():
            self._absorb(items, obj)
        self.store.replace_all(items)
        self.relists += 1
        meta = doc.get("metadata")
        version = meta.get("resourceVersion") if isinstance(meta, dict) else None
        log.info("%s: listed %d", self.resource.kind, len(items))
        return version if isinstance(version, str) else ""

    def _absorb(self, items: dict[Key, T], obj: object) -> None:
        key = _key(obj)
        if key is None:
            return
        try:
            value = self.resource.entry(obj)
        except CniError as exc:
            log.warning("%s %s/%s ignored: %s", self.resource.kind, key[0], key[1], exc)
            return
        if value is not None:
            items[key] = value

    def _watch(self, version: str) -> str:
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        if version:
            params["resourceVersion"] = version
        for event in self._stream(f"{self.resource.path}?{self._query(**params)}"):
            kind, obj = event.get("type"), event.get("object")
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            found = meta.get("resourceVersion") if isinstance(meta, dict) else None
            if kind == "ERROR":
                code = obj.get("code") if isinstance(obj, dict) else None
                if code == 410:
                    raise WatchGoneError()
                raise CniError(5, f"{self.resource.kind} watch error", json.dumps(obj)[:300])
            if isinstance(found, str) and found:
                version = found
            if kind == "BOOKMARK":
                continue
            key = _key(obj)
            if key is None:
                continue
            if kind == "DELETED":
                self.store.put(key, None)
                continue
            one: dict[Key, T] = {}
            self._absorb(one, obj)
            self.store.put(key, one.get(key))  # None: left this node or became invalid
        return version

    def _stream(self, path: str) -> Iterator[dict[str, Any]]:
        """The events of one watch request, until the server ends it."""
        client = self.client
        # KubeClient has no streaming call: a connection of our own, opened and
        # verified by the client (kubeconfig, token and TLS material re-read
        # per watch, LESSONS #7; tls-server-name honoured).
        headers = client.headers()
        headers["User-Agent"] = "jaring-node"
        conn = http.client.HTTPConnection(urlsplit(client.config.server).hostname or "")
        try:
            conn.sock = client.connect()  # http.client sends on a socket it is given
            conn.request("GET", client.target(path), headers=headers)
            if conn.sock is not None:
                conn.sock.settimeout(WATCH_SECONDS + READ_SLACK)
                self._sock = conn.sock
                if self._stop.is_set():
                    return
            response = conn.getresponse()
            if response.status == 410:
                raise WatchGoneError()
            if response.status >= 300:
                body = response.read()[:300].decode(errors="replace")
                raise CniError(5, f"{self.resource.kind} watch refused: {response.status}", body)
            while not self._stop.is_set():
                line = response.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                event = json.loads(line)
                if isinstance(event, dict):
                    yield event
        finally:
            self._sock = None
            conn.close()


class NodeCache:
    """The daemon's view of the API: NADs everywhere, pods of this node."""

    def __init__(self, make_client: Callable[[], KubeClient], *, node_name: str) -> None:
        self.node_name = node_name
        self.pods: Store[PodInfo] = Store()
        self.nads: Store[NadInfo] = Store()
        selector = f"spec.nodeName={node_name}" if node_name else ""
        self._reflectors: list[Reflector[Any]] = [
            Reflector(
                make_client(),
                Resource("Pod", PODS_PATH, selector, lambda o: pod_entry(o, node_name=node_name)),
                self.pods,
            ),
            Reflector(make_client(), Resource(NAD_KIND, NADS_PATH, "", nad_entry), self.nads),
        ]

    def start(self) -> None:
        for reflector in self._reflectors:
            reflector.start()

    def stop(self) -> None:
        for reflector in self._reflectors:
            reflector.stop()
        for reflector in self._reflectors:
            reflector.join(5)

    def synced(self) -> bool:
        return self.pods.synced.is_set() and self.nads.synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for store in (self.pods, self.nads):
            if not store.synced.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def pod(self, *, namespace: Namespace, name: PodName) -> PodInfo | None:
        return self.pods.get((namespace, name))

    def nad(self, *, namespace: Namespace, name: NadName) -> NadInfo | None:
        return self.nads.get((namespace, name))
