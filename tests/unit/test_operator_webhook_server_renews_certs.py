"""The webhook HTTPS server: it serves AdmissionReviews with the operator's certificate,
and when the certificate nears expiry it issues a new one, serves it on new connections
and hands the new CA to `on_renewed` (which publishes it)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from jaring.operator import admission, certs, webhook
from jaring.operator.usage import NadCatalog

NAMES = ("localhost", "127.0.0.1")


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def served_cert(port: int) -> x509.Certificate:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


async def test_serves_reviews_and_renews_its_certificate(tmp_path: Path) -> None:
    now = [datetime.datetime.now(datetime.UTC)]
    files = certs.Files.under(tmp_path)
    first, _ = certs.ensure(files, hostnames=NAMES, now=now[0])
    renewed: list[certs.Bundle] = []

    async def on_renewed(bundle: certs.Bundle) -> None:
        renewed.append(bundle)

    port = free_port()
    started = asyncio.Event()
    task = asyncio.create_task(
        webhook.serve(
            endpoint=webhook.Endpoint("127.0.0.1", port),
            files=files,
            hostnames=NAMES,
            nads=NadCatalog(),
            policy=admission.PodPolicy(),
            on_renewed=on_renewed,
            started=started,
            clock=lambda: now[0],
            check_every=0.05,
            stats=lambda: {"known_nads": 0},
        )
    )
    try:
        await asyncio.wait_for(started.wait(), 10)
        client = ssl.create_default_context(cafile=str(files.ca))
        review = {"request": {"uid": "u1", "operation": "CREATE", "object": {}}}
        async with aiohttp.ClientSession() as session:
            url = f"https://localhost:{port}"
            async with session.post(f"{url}/validate-pod", json=review, ssl=client) as resp:
                assert resp.status == 200
                assert (await resp.json())["response"] == {"uid": "u1", "allowed": True}
            async with session.get(f"{url}/stats", ssl=client) as resp:
                assert await resp.json() == {"known_nads": 0}
            async with session.post(f"{url}/validate-pod", data=b"{", ssl=client) as resp:
                assert resp.status == 400
        before = await asyncio.to_thread(served_cert, port)
        assert before.public_bytes(Encoding.PEM) == first.cert_pem
        assert renewed == []

        now[0] += datetime.timedelta(days=340)  # within 30 days of expiry
        deadline = asyncio.get_running_loop().time() + 10
        while not renewed:
            assert asyncio.get_running_loop().time() < deadline, "no renewal"
            await asyncio.sleep(0.02)
        (bundle,) = renewed
        assert bundle != first
        after = await asyncio.to_thread(served_cert, port)
        assert after.public_bytes(Encoding.PEM) == bundle.cert_pem
        after.verify_directly_issued_by(x509.load_pem_x509_certificate(bundle.ca_pem))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
