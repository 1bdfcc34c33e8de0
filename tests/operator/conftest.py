"""Fixtures for the operator's API tests: a Kubernetes API (kmock, or a real cluster when
JARING_TEST_KUBECONFIG names a kubeconfig) and the operator running for real in the test's
event loop, with its webhook server on a free local port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import kopf
import pytest
import yaml
from jaring.operator import kubeapi
from jaring.operator.config import OperatorConfig
from jaring.operator.main import run

from .emulator import Emulator

REAL_KUBECONFIG = os.environ.get("JARING_TEST_KUBECONFIG")
NADS = "k8s.cni.cncf.io/v1/network-attachment-definitions"
ADMISSION = "admissionregistration.k8s.io/v1"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def _declare(emulator: Emulator) -> None:
    info = kmock.ResourceInfo
    emulator.resources[NADS] = info(
        kind="NetworkAttachmentDefinition",
        namespaced=True,
        subresources={"status"},
        verbs={"list", "watch", "get", "patch", "create", "delete"},
    )
    emulator.resources["v1/pods"] = info(kind="Pod", namespaced=True, verbs={"list", "watch"})
    emulator.resources["v1/namespaces"] = info(
        kind="Namespace", namespaced=False, verbs={"list", "watch", "get"}
    )
    emulator.resources["v1/events"] = info(kind="Event", namespaced=True, verbs={"create"})
    for plural, kind in (
        ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration"),
        ("mutatingwebhookconfigurations", "MutatingWebhookConfiguration"),
    ):
        emulator.resources[f"{ADMISSION}/{plural}"] = info(
            kind=kind, namespaced=False, verbs={"get", "patch", "create"}
        )


@dataclass
class Api:
    """Plain HTTP calls against whichever API server the test runs on."""

    info: kopf.ConnectionInfo
    namespace: str
    kubeconfig: Path
    emulator: Emulator | None = None
    cleanups: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    async def call(self, method: str, path: str, body: object = None, **kw: Any) -> Any:
        return await kubeapi.request(self.info, method, path, body=body, **kw)

    def nad_path(self, name: str = "") -> str:
        base = (
            f"/apis/k8s.cni.cncf.io/v1/namespaces/{self.namespace}/network-attachment-definitions"
        )
        return f"{base}/{name}" if name else base

    async def create_nad(
        self, name: str, config: object, *, annotations: dict[str, str] | None = None
    ) -> None:
        text = config if isinstance(config, str) or config is None else json.dumps(config)
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace}
        if annotations:
            meta["annotations"] = annotations
        spec = {} if text is None else {"config": text}
        obj = {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": meta,
            "spec": spec,
        }
        await self.call("POST", self.nad_path(), obj)

    async def patch_nad(self, name: str, patch: dict[str, Any]) -> None:
        await self.call(
            "PATCH", self.nad_path(name), patch, content_type="application/merge-patch+json"
        )

    async def delete(self, path: str) -> None:
        await self.call("DELETE", path)

    async def get(self, path: str) -> Any:
        try:
            return await self.call("GET", path)
        except kubeapi.ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create_pod(self, name: str, networks: str) -> None:
        obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "annotations": {"k8s.v1.cni.cncf.io/networks": networks},
            },
            "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
            "status": {"phase": "Running"},
        }
        await self.call("POST", f"/api/v1/namespaces/{self.namespace}/pods", obj)

    async def events(self, involved: str) -> list[dict[str, Any]]:
        if self.emulator is not None:
            found = [
                obj.raw
                for (res, _, _), obj in self.emulator.objects.items()
                if res.plural == "events" and not obj.deleted
            ]
        else:
            doc = await self.call("GET", f"/api/v1/namespaces/{self.namespace}/events")
            found = doc.get("items", [])
        return [e for e in found if (e.get("involvedObject") or {}).get("name") == involved]


async def _eventually(
    probe: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, what: str = "condition"
) -> Any:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    return _eventually


def _kubeconfig(path: Path, server: str) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {"token": "test"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "test"}}],
        "current-context": "kmock",
    }
    path.write_text(json.dumps(doc))
    return path


def _login(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> kopf.ConnectionInfo:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # Kopf's login reads only the KUBECONFIG variable; settings are not consulted by it.
    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    assert info is not None
    return info


CRDS = Path(__file__).resolve().parents[2] / "crds"


async def apply_crds(info: kopf.ConnectionInfo) -> list[str]:
    """`kubectl apply -f crds/` as server-side apply, then wait until they are served."""
    names = []
    for path in sorted(CRDS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        name = doc["metadata"]["name"]
        names.append(name)
        await kubeapi.request(
            info,
            "PATCH",
            f"{CRD_PATH}/{name}?fieldManager=jaring-tests&force=true",
            body=doc,
            content_type="application/apply-patch+yaml",
        )

    async def established() -> bool:
        for name in names:
            crd = await kubeapi.request(info, "GET", f"{CRD_PATH}/{name}")
            conds = (crd.get("status") or {}).get("conditions") or []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                return False
        return True

    await _eventually(established, what="the CRDs to be established")
    return names


@pytest.fixture
def crds_applied() -> Callable[[kopf.ConnectionInfo], Awaitable[list[str]]]:
    return apply_crds


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # no in-cluster login
    if REAL_KUBECONFIG:
        info = _login(Path(REAL_KUBECONFIG), monkeypatch)
        await apply_crds(info)
        namespace = f"jaring-test-{uuid.uuid4().hex[:6]}"
        cluster = Api(info, namespace, Path(REAL_KUBECONFIG))
        await cluster.call("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        try:
            yield cluster
        finally:
            for cleanup in reversed(cluster.cleanups):
                with contextlib.suppress(kubeapi.ApiError):
                    await cleanup()
            await cluster.call("DELETE", f"/api/v1/namespaces/{namespace}")
        return
    async with Emulator() as emulator, kmock.Server(emulator) as server:
        _declare(emulator)
        kubeconfig = _kubeconfig(tmp_path / "kubeconfig", str(server.url).rstrip("/"))
        yield Api(_login(kubeconfig, monkeypatch), "default", kubeconfig, emulator)


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_tcp_port() -> Callable[[], int]:
    return free_port


@dataclass
class RunningOperator:
    config: OperatorConfig
    url: str
    liveness: str

    async def health(self) -> dict[str, Any]:
        """Kopf's liveness endpoint: the operator's probes (`known_nads`, `pods_using_nads`)."""
        async with aiohttp.ClientSession() as session, session.get(self.liveness) as resp:
            return dict(await resp.json())

    async def stats(self) -> dict[str, int]:
        """The webhook server's /stats: the operator's caches, uncached."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/stats", ssl=self.client_ssl()) as resp,
        ):
            return dict(await resp.json())

    async def sees(self, *, nads: int = 0, pods: int = 0) -> bool:
        stats = await self.stats()
        return stats["known_nads"] >= nads and stats["pods_using_nads"] >= pods

    def client_ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.config.cert_dir / "ca.crt"))

    async def review(self, webhook: str, review: object) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/{webhook}", json=review, ssl=self.client_ssl()) as resp,
        ):
            body = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, body


class _OperatorThread:
    """`kopf.operator` cancels every task created while it runs, the test's own included:
    so it gets its own thread and event loop, as it would have its own process."""

    def __init__(self, config: OperatorConfig) -> None:
        self._config = config
        self.liveness = f"http://127.0.0.1:{free_port()}/healthz"
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="jaring-operator", daemon=True)

    def _main(self) -> None:
        async def go() -> None:
            self._stop = asyncio.Event()
            ready = asyncio.Event()
            watcher = asyncio.create_task(self._relay(ready))
            try:
                await run(self._config, stop=self._stop, ready=ready, liveness=self.liveness)
            finally:
                watcher.cancel()

        try:
            self._loop.run_until_complete(go())
        except BaseException as exc:  # reported to the test, which fails with it
            self.error = exc
        finally:
            self._loop.close()

    async def _relay(self, ready: asyncio.Event) -> None:
        await ready.wait()
        self.ready.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the operator did not stop within 30 s"


@contextlib.asynccontextmanager
async def running_operator(config: OperatorConfig) -> AsyncIterator[RunningOperator]:
    thread = _OperatorThread(config)
    thread.start()
    try:

        async def ready() -> bool:
            if thread.error is not None:
                raise thread.error
            return thread.ready.is_set()

        await _eventually(ready, what="the operator to start")
        url = f"https://localhost:{config.webhook_port}"
        running = RunningOperator(config, url, thread.liveness)
        if config.webhooks:

            async def listening() -> bool:
                try:
                    async with (
                        aiohttp.ClientSession() as session,
                        session.get(f"{url}/healthz", ssl=running.client_ssl()) as resp,
                    ):
                        return resp.status == 200
                except (aiohttp.ClientError, OSError, ssl.SSLError):
                    return False

            await _eventually(listening, what="the webhook server")
        yield running
    finally:
        await asyncio.to_thread(thread.stop)
    if thread.error is not None:
        raise thread.error


@pytest.fixture
def operator_config(tmp_path: Path) -> Iterator[OperatorConfig]:
    yield OperatorConfig(
        webhook_host="127.0.0.1",
        webhook_port=free_port(),
        cert_dir=tmp_path / "certs",
        extra_hostnames=("localhost", "127.0.0.1"),
        retry_delay=0.2,
    )


@pytest.fixture
async def operator(api: Api, operator_config: OperatorConfig) -> AsyncIterator[RunningOperator]:
    async with running_operator(operator_config) as running:
        yield running


@pytest.fixture
def start_operator(api: Api) -> Callable[[OperatorConfig], Any]:
    """For tests that need a non-default configuration (the `api` comes first)."""
    return running_operator


@pytest.fixture
def configure() -> Callable[..., OperatorConfig]:
    def make(base: OperatorConfig, **changes: Any) -> OperatorConfig:
        return replace(base, **changes)

    return make
