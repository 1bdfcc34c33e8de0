"""The few API calls the operator makes outside Kopf's own patching: publishing the webhook
CA bundle into the webhook configurations. Uses the `kopf.ConnectionInfo` that the login
handler obtained, so it authenticates exactly as the rest of the operator does.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import kopf

ADMISSION = "/apis/admissionregistration.k8s.io/v1"
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status

    @property
    def transient(self) -> bool:
        return self.status in TRANSIENT_STATUSES


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


def _ssl(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if not info.server.startswith("https"):
        return False
    if info.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        cadata = None
        if info.ca_data:
            cadata = base64.b64decode(info.ca_data).decode()
        context = ssl.create_default_context(
            cafile=str(info.ca_path) if info.ca_path else None, cadata=cadata
        )
    cert, key = info.certificate_path, info.private_key_path
    if info.certificate_data and info.private_key_data:
        with tempfile.TemporaryDirectory() as tmp:
            certf, keyf = Path(tmp, "c"), Path(tmp, "k")
            certf.write_bytes(base64.b64decode(_as_bytes(info.certificate_data)))
            keyf.write_bytes(base64.b64decode(_as_bytes(info.private_key_data)))
            context.load_cert_chain(certf, keyf)
    elif cert and key:
        context.load_cert_chain(str(cert), str(key))
    return context


def _headers(info: kopf.ConnectionInfo) -> dict[str, str]:
    if info.token:
        return {"Authorization": f"{info.scheme or 'Bearer'} {info.token}"}
    return {}


async def request(
    info: kopf.ConnectionInfo,
    method: str,
    path: str,
    *,
    body: object = None,
    content_type: str = "application/json",
) -> Mapping[str, Any]:
    headers = {**_headers(info), "Content-Type": content_type}
    auth = aiohttp.BasicAuth(info.username, info.password or "") if info.username else None
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.request(
            method,
            info.server.rstrip("/") + path,
            json=body,
            headers=headers,
            ssl=_ssl(info),
            auth=auth,
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
