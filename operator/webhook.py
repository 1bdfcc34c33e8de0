"""The HTTPS endpoint of the admission webhooks: POST /<webhook> with an AdmissionReview.

Started by the operator's startup handler (`handlers.py`); decisions come from
`admission.respond`. TLS material comes from `certs`; a renewed certificate is loaded
into the live SSL context, and `on_renewed` re-publishes the CA bundle.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp.web
from jaring.operator import admission, certs

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


Stats = Callable[[], Mapping[str, int]]


def build_app(
    *, nads: admission.NadLookup, policy: admission.PodPolicy, stats: Stats | None = None
) -> aiohttp.web.Application:
    async def serve(request: aiohttp.web.Request) -> aiohttp.web.Response:
        webhook = request.match_info["webhook"]
        if webhook not in admission.WEBHOOKS:
            raise aiohttp.web.HTTPNotFound(text=f"no webhook {webhook!r}")
        try:
            review = json.loads(await request.read())
            answer = admission.respond(webhook, review, nads=nads, policy=policy)
        except (ValueError, admission.BadReviewError) as exc:
            raise aiohttp.web.HTTPBadRequest(text=str(exc)) from None
        return aiohttp.web.json_response(answer)

    async def healthz(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text="ok")

    async def state(_: aiohttp.web.Request) -> aiohttp.web.Response:
        # What the webhooks decide from, uncached (Kopf's probes are cached for 10 s).
        return aiohttp.web.json_response(dict(stats()) if stats is not None else {})

    app = aiohttp.web.Application(client_max_size=4 * 1024 * 1024)
    app.add_routes(
        [
            aiohttp.web.post("/{webhook}", serve),
            aiohttp.web.get("/healthz", healthz),
            aiohttp.web.get("/stats", state),
        ]
    )
    return app


def ssl_context(files: certs.Files) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    return context


async def serve(
    *,
    endpoint: Endpoint,
    files: certs.Files,
    hostnames: tuple[str, ...],
    nads: admission.NadLookup,
    policy: admission.PodPolicy,
    on_renewed: Callable[[certs.Bundle], Awaitable[None]],
    stats: Stats | None = None,
    started: asyncio.Event | None = None,
    clock: Clock = _utcnow,
    check_every: float = 3600.0,
) -> None:
    """Serve until cancelled; the caller has ensured and published the certificates."""
    context = ssl_context(files)
    runner = aiohttp.web.AppRunner(
        build_app(nads=nads, policy=policy, stats=stats), handle_signals=False
    )
    await runner.setup()
    try:
        site = aiohttp.web.TCPSite(runner, endpoint.host, endpoint.port, ssl_context=context)
        await site.start()
        logger.info("admission webhooks at https://%s:%d/", endpoint.host, endpoint.port)
        if started is not None:
            started.set()
        while True:
            await asyncio.sleep(check_every)
            bundle, renewed = certs.ensure(files, hostnames=hostnames, now=clock())
            if renewed:
                # New handshakes use the new chain; the CA bundle must follow.
                context.load_cert_chain(files.cert, files.key)
                await on_renewed(bundle)
    finally:
        await runner.cleanup()
