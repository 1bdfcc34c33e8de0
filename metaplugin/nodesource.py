"""The node daemon's `Source`: caches first, the API only when they cannot answer.

`CachedSource` serves one CNI request: pod annotations from the runtime
(containerd's `io.kubernetes.cri.pod-annotations`), else the watch cache,
else one GET; NADs from the cache, else one GET. network-status is one
PATCH on a pooled keep-alive client; Events go to a background poster, off
the hot path (LESSONS #8, #9). Built per request by `daemon.py`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jaring.cni.ids import NadName, Namespace, PodName, PodUID

from .kubeclient import KubeClient
from .nodecache import NodeCache, trim
from .sources import ApiSource, NadInfo, PodInfo

log = logging.getLogger(__name__)

POD_ANNOTATIONS_KEY = "io.kubernetes.cri.pod-annotations"
EVENT_QUEUE = 10000  # beyond this, Events are dropped (logged), never blocking an ADD


class ClientPool:
    """Keep-alive API clients, one per concurrent user (KubeClient is not thread-safe)."""

    def __init__(self, make_client: Callable[[], KubeClient]) -> None:
        self._make = make_client
        self._idle: queue.LifoQueue[KubeClient] = queue.LifoQueue()

    @contextmanager
    def client(self) -> Iterator[KubeClient]:
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            client = self._make()
        try:
            yield client
        finally:
            self._idle.put(client)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


@dataclass(frozen=True)
class _Event:
    namespace: Namespace
    name: PodName
    uid: PodUID
    reason: str
    message: str
    warning: bool


class EventPoster:
    """Posts Events from a queue on its own thread, so an ADD never waits for one."""

    def __init__(self, pool: ClientPool, *, host: str = "") -> None:
        self.pool = pool
        self.host = host
        self._queue: queue.Queue[_Event | None] = queue.Queue(EVENT_QUEUE)
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self.dropped = 0

    def start(self) -> None:
        self._thread.start()

    def put(self, event: _Event) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            log.warning(
                "event queue full: dropped %s for %s/%s", event.reason, event.namespace, event.name
            )

    def stop(self, timeout: float = 5.0) -> None:
        """Post what is queued (within `timeout`), then end the thread."""
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def drain(self) -> None:
        """Wait until every queued Event was posted (tests, shutdown)."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is None:
                    return
                with self.pool.client() as client:
                    ApiSource(client, host=self.host).post_event(
                        namespace=event.namespace,
                        name=event.name,
                        uid=event.uid,
                        reason=event.reason,
                        message=event.message,
                        warning=event.warning,
                    )  # never raises: it logs
            finally:
                self._queue.task_done()


class Lookups:
    """Where pod and NAD reads were answered from (Prometheus counters)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def count(self, kind: str, origin: str) -> None:
        with self._lock:
            self.counts[(kind, origin)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.counts)


class CachedSource:
    """A `Source` for one request: runtime annotations, caches, then the API."""

    def __init__(
        self,
        *,
        cache: NodeCache | None,
        pool: ClientPool,
        events: EventPoster,
        runtime_config: Mapping[str, Any] | None = None,
        pod_uid: str = "",
        lookups: Lookups | None = None,
        host: str = "",
    ) -> None:
        self.cache = cache
        self.pool = pool
        self.events = events
        self.pod_uid = PodUID(pod_uid)
        self.lookups = lookups or Lookups()
        self.host = host
        annotations = (runtime_config or {}).get(POD_ANNOTATIONS_KEY)
        self.runtime_annotations: dict[str, str] | None = None
        if isinstance(annotations, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            self.runtime_annotations = trim(annotations)

    def get_pod(self, *, namespace: Namespace, name: PodName) -> PodInfo:
        cached = self.cache.pod(namespace=namespace, name=name) if self.cache else None
        fresh = cached is not None and (not self.pod_uid or cached.uid == self.pod_uid)
        if self.runtime_annotations is not None:
            # What the runtime saw when it made this sandbox: never stale.
            self.lookups.count("pod", "runtime")
            return PodInfo(
                namespace=namespace,
                name=name,
                uid=cached.uid if cached is not None and fresh else self.pod_uid,
                annotations=self.runtime_annotations,
                node_name=cached.node_name if cached is not None else "",
            )
        if cached is not None and fresh:
            self.lookups.count("pod", "cache")
            return cached
        # Not seen yet (the watch lags the scheduler) or replaced: one GET.
        self.lookups.count("pod", "api")
        with self.pool.client() as client:
            return ApiSource(client, host=self.host).get_pod(namespace=namespace, name=name)

    def get_nad(self, *, namespace: Namespace, name: NadName) -> NadInfo | None:
        cached = self.cache.nad(namespace=namespace, name=name) if self.cache else None
        if cached is not None:
            self.lookups.count("nad", "cache")
            return cached
        # A NAD created a moment ago may not have reached the watch: ask once.
        self.lookups.count("nad", "api")
        with self.pool.client() as client:
            return ApiSource(client, host=self.host).get_nad(namespace=namespace, name=name)

    def write_status(self, *, namespace: Namespace, name: PodName, status: str) -> None:
        with self.pool.client() as client:
            ApiSource(client, host=self.host).write_status(
                namespace=namespace, name=name, status=status
            )

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
        self.events.put(_Event(namespace, name, uid, reason, message, warning))
