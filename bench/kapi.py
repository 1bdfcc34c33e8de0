"""A kmock Kubernetes emulator on a background thread, for benchmarks.

Benchmarks are plain scripts, not pytest: this runs kmock's emulator in its
own event loop thread, writes a kubeconfig pointing at it, seeds objects with
real HTTP requests and counts the requests the code under measure made.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import threading
import urllib.request
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

import kmock

# One lean kmock for tests and bench: tests/api/cluster.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.api.cluster import LeanEmulator  # after the path above
from tests.api.scripted import Pki


class ApiServer:
    """`with ApiServer() as api:` serves an empty in-memory cluster.

    With `tls` (a `tests.api.scripted.Pki`), `tls_url` also serves it over
    HTTPS, as every real API server does: a TLS front in the same loop that
    relays each connection to kmock's plain port.
    """

    def __init__(self, tls: Pki | None = None) -> None:
        self.url = ""
        self.tls_url = ""
        self._pki = tls
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._emulator: LeanEmulator | None = None
        self._thread = threading.Thread(target=self._serve, name="kmock", daemon=True)

    def __enter__(self) -> ApiServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("kmock did not start within 30 s")
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        # kmock itself slows with every request it has served (it keeps and
        # scans them all): LeanEmulator keeps only those in flight.
        async with LeanEmulator() as emulator, kmock.Server(emulator) as server:
            self._emulator = emulator
            self.url = str(server.url).rstrip("/")
            front = None
            if self._pki is not None:
                front = await asyncio.start_server(
                    self._relay, "127.0.0.1", 0, ssl=self._pki.server_context()
                )
                self.tls_url = f"https://127.0.0.1:{front.sockets[0].getsockname()[1]}"
            self._ready.set()
            await self._stop.wait()
            if front is not None:
                front.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = int(self.url.rsplit(":", 1)[1])
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def kubeconfig(self, path: Path, *, tls: bool = False) -> Path:
        """Write a kubeconfig for this server (JSON is valid YAML); with `tls`,
        for its HTTPS front and its CA, as a node's kubeconfig names them."""
        cluster: dict[str, str] = {"server": self.url}
        if tls:
            assert self._pki is not None, "ApiServer(tls=...) serves no HTTPS"
            cluster = {"server": self.tls_url, "certificate-authority": str(self._pki.ca)}
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": cluster}],
            "users": [{"name": "bench", "user": {"token": "bench"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "bench"}}],
            "current-context": "kmock",
        }
        path.write_text(json.dumps(doc))
        return path

    def create(self, path: str, obj: dict[str, Any]) -> None:
        req = urllib.request.Request(
            self.url + path,
            data=json.dumps(obj).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
        return doc

    def pod(self, namespace: str, name: str, uid: str, annotations: dict[str, str]) -> None:
        meta = {"name": name, "namespace": namespace, "uid": uid, "annotations": annotations}
        self.create(
            f"/api/v1/namespaces/{namespace}/pods",
            {"apiVersion": "v1", "kind": "Pod", "metadata": meta},
        )

    def nad(self, namespace: str, name: str, config: dict[str, Any]) -> None:
        self.create(
            f"/apis/k8s.cni.cncf.io/v1/namespaces/{namespace}/network-attachment-definitions",
            {
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"config": json.dumps(config)},
            },
        )

    def request_counts(self) -> Counter[str]:
        """Requests seen so far, by HTTP method."""
        assert self._emulator is not None
        return Counter(dict(self._emulator.served))  # dict(): one atomic copy
