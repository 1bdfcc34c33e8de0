"""The few API calls the operator makes outside Kopf's own patching: publishing the webhook
CA bundle into the webhook configurations. Uses the `kopf.ConnectionInfo` that the login
handler obtained, so it authenticates exactly as the rest of the operator does.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import aiohttp
import kopf

ADMISSION = "/apis/admissionregistration.k8s.io/v1"
# 409: the configuration changed since it was read; read it again and retry.
TRANSIENT_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status

    @property
    def transient(self) -> bool:
        return self.status in TRANSIENT_STATUSES


async def request(
    info: kopf.ConnectionInfo,
    method: str,
    path: str,
    *,
    body: object = None,
    content_type: str = "application/json",
) -> Mapping[str, Any]:
    # Kopf builds the TLS context and auth header from the same credentials it uses itself.
    headers = {**info.as_http_headers(), "Content-Type": content_type}
    tls = info.as_ssl_context() if info.server.startswith("https") else False
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.request(
            method,
            info.server.rstrip("/") + path,
            json=body,
            headers=headers,
            ssl=tls,
        ) as response,
    ):
        if response.status >= 400:
            raise ApiError(response.status, (await response.text())[:300])
        result: Mapping[str, Any] = await response.json(content_type=None)
        return result


def ca_bundle_patch(config: Mapping[str, Any], ca_pem: bytes) -> dict[str, Any] | None:
    """A merge patch giving every webhook `clientConfig.caBundle`; None when all have it.

    `webhooks` is a list, so the patch carries the whole list; the resourceVersion makes
    the API server refuse it (409) if someone changed the configuration since we read it.
    """
    wanted = base64.b64encode(ca_pem).decode()
    hooks = [dict(h) for h in config.get("webhooks") or []]
    if all((h.get("clientConfig") or {}).get("caBundle") == wanted for h in hooks):
        return None
    for hook in hooks:
        hook["clientConfig"] = {**(hook.get("clientConfig") or {}), "caBundle": wanted}
    patch: dict[str, Any] = {"webhooks": hooks}
    version = (config.get("metadata") or {}).get("resourceVersion")
    if version:
        patch["metadata"] = {"resourceVersion": version}
    return patch


async def publish_ca_bundle(
    info: kopf.ConnectionInfo, *, kind: str, name: str, ca_pem: bytes
) -> bool:
    """Patch the CA into one webhook configuration; False when it does not exist."""
    path = f"{ADMISSION}/{kind}/{name}"
    try:
        config = await request(info, "GET", path)
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    patch = ca_bundle_patch(config, ca_pem)
    if patch is not None:
        await request(info, "PATCH", path, body=patch, content_type="application/merge-patch+json")
    return True
