"""A Kubernetes API for tests: kmock's emulator on a thread, or a real cluster.

`KmockServer` serves an in-memory cluster; `Cluster` is one test's view of an
API (a kubeconfig, a unique namespace, helpers to create pods and NADs) that
works the same against kmock and against the cluster named by
`JARING_TEST_KUBECONFIG`. Used by tests/api and tests/netns conftests.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs
import kmock
import pytest
from jaring.metaplugin.kubeclient import KubeApiError, KubeClient, KubeConfig

ENV_KUBECONFIG = "JARING_TEST_KUBECONFIG"
NAD_GROUP_VERSION = "k8s.cni.cncf.io/v1"


@attrs.define
class LeanEmulator(kmock.KubernetesEmulator):
    """kmock's emulator that keeps only the requests being served, counting all.

    kmock records every request and routes each new one by scanning that
    record (`request in view`): each request served makes every later one
    slower, ~6 ms per 100 on this kind of machine, so a session-wide server
    (or a benchmark) ends up measuring kmock. Nothing asserts on the record;
    `served` counts requests by HTTP method instead.
    """

    served: Counter[str] = attrs.field(factory=Counter, init=False)
    _inflight: dict[int, Any] = attrs.field(factory=dict, init=False)

    async def _handle(self, request: Any) -> Any:
        self.served[str(request.method.value)] += 1
        # Routing looks for the current request in the record: keep the ones in flight.
        self._inflight[id(request)] = request
        self._requests[:] = [r for r in self._requests if id(r) in self._inflight]
        try:
            return await super()._handle(request)
        finally:
            self._inflight.pop(id(request), None)


class KmockServer:
    """`with KmockServer() as api:` serves an empty in-memory cluster on a thread.

    A thread, not an async fixture: the code under test is synchronous and
    would block an event loop shared with the server.
    """

    def __init__(self) -> None:
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="kmock", daemon=True)

    def __enter__(self) -> KmockServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"kmock did not start within 30 s: {self._error!r}")
        if self._error is not None:
            raise RuntimeError("kmock failed to start") from self._error
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with LeanEmulator() as emulator, kmock.Server(emulator) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def write_kubeconfig(self, path: Path, *, token: str = "kmock-token") -> Path:
        """A kubeconfig for this server (JSON, which is also YAML)."""
        path.write_text(json.dumps(kubeconfig_doc(self.url, token=token)))
        return path


def kubeconfig_doc(server: str, *, token: str = "", **cluster: Any) -> dict[str, Any]:
    user: dict[str, Any] = {"token": token} if token else {}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "test", "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "current-context": "test",
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class Cluster:
    """One test's API: a kubeconfig, a fresh namespace, object helpers.

    Objects are created with an admin client of their own; on a real cluster
    every namespace made here is deleted afterwards (`cleanup`).
    """

    kubeconfig: Path
    real: bool
    namespace: str = field(default_factory=lambda: unique("jaring-t"))
    admin: KubeClient = field(init=False)
    _namespaces: list[str] = field(default_factory=list)
    _created: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.admin = KubeClient(KubeConfig.load(str(self.kubeconfig)), timeout=10.0)
        self.add_namespace(self.namespace)

    def add_namespace(self, name: str) -> str:
        """Create a namespace (kmock needs none: it only tracks objects)."""
        if self.real:
            self.admin.post(
                "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            )
        self._namespaces.append(name)
        return name

    def cleanup(self) -> None:
        try:
            if self.real:
                for name in self._namespaces:
                    self.admin.delete(f"/api/v1/namespaces/{name}")
            else:
                for path in reversed(self._created):
                    self.admin.delete(path)
        finally:
            self.admin.close()

    # pods
    @staticmethod
    def pod_path(namespace: str, name: str) -> str:
        return f"/api/v1/namespaces/{namespace}/pods/{name}"

    def pod(
        self,
        name: str,
        *,
        annotations: Mapping[str, str] | None = None,
        namespace: str | None = None,
    ) -> str:
        """Create a pod that never runs; returns its UID."""
        ns = namespace or self.namespace
        meta: dict[str, Any] = {"name": name, "namespace": ns}
        if annotations:
            meta["annotations"] = dict(annotations)
        if not self.real:
            meta["uid"] = str(uuid.uuid4())  # kmock assigns none
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {
                "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}],
                # Never scheduled: no kubelet ever runs a CNI for it.
                "nodeSelector": {"jaring.test/never": "true"},
                "automountServiceAccountToken": False,
            },
        }
        created = self._create_retrying(f"/api/v1/namespaces/{ns}/pods", body)
        self._created.append(self.pod_path(ns, name))
        uid = created.get("metadata", {}).get("uid") or meta.get("uid")
        assert isinstance(uid, str), created
        return uid

    def read_pod(self, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        found = self.admin.get(self.pod_path(namespace or self.namespace, name))
        assert found is not None, f"pod {name} not found"
        return found

    def delete_pod(self, name: str, *, namespace: str | None = None) -> None:
        path = self.pod_path(namespace or self.namespace, name)
        self.admin.delete(path + ("?gracePeriodSeconds=0" if self.real else ""))
        self._wait_gone(path)

    # NADs
    @staticmethod
    def nad_path(namespace: str, name: str) -> str:
        base = f"/apis/{NAD_GROUP_VERSION}/namespaces/{namespace}"
        return f"{base}/network-attachment-definitions/{name}"

    def nad(
        self,
        name: str,
        config: Mapping[str, Any] | str | None,
        *,
        namespace: str | None = None,
    ) -> None:
        ns = namespace or self.namespace
        spec: dict[str, Any] = {}
        if config is not None:
            spec["config"] = config if isinstance(config, str) else json.dumps(config)
        self.nad_raw(ns, name, spec)

    def nad_raw(self, namespace: str, name: str, spec: Mapping[str, Any]) -> None:
        body = {
            "apiVersion": NAD_GROUP_VERSION,
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace},
            "spec": dict(spec),
        }
        path = f"/apis/{NAD_GROUP_VERSION}/namespaces/{namespace}/network-attachment-definitions"
        try:
            self._create_retrying(path, body)
        except KubeApiError as exc:
            if self.real and exc.status == 404:
                pytest.skip("the cluster lacks the NAD CRD (kubectl apply -f crds/)")
            raise
        self._created.append(self.nad_path(namespace, name))

    def delete_nad(self, name: str, *, namespace: str | None = None) -> None:
        path = self.nad_path(namespace or self.namespace, name)
        self.admin.delete(path)
        self._wait_gone(path)

    # events
    def events(self, *, namespace: str | None = None) -> list[dict[str, Any]]:
        found = self.admin.get(f"/api/v1/namespaces/{namespace or self.namespace}/events")
        items = (found or {}).get("items") or []
        assert isinstance(items, list)
        return items

    def jaring_events(self, *, namespace: str | None = None) -> list[dict[str, Any]]:
        """Events jaring posted (a real cluster adds the scheduler's own)."""
        return [
            e
            for e in self.events(namespace=namespace)
            if (e.get("source") or {}).get("component") == "jaring"
        ]

    def _create_retrying(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        # A fresh namespace on a real cluster refuses pods until its default
        # ServiceAccount exists: poll against a deadline.
        deadline = time.monotonic() + 30
        while True:
            try:
                return self.admin.post(path, body)
            except KubeApiError as exc:
                if not self.real or exc.status != 403 or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def _wait_gone(self, path: str) -> None:
        deadline = time.monotonic() + 60
        while self.admin.get(path) is not None:
            assert time.monotonic() < deadline, f"{path} still exists"
            time.sleep(0.1)
