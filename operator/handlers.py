"""Kopf handlers of jaring-operator, kept thin: read the object, call a pure decision
(`validation`, `usage`, `admission`), write its outcome (status condition, Events, the CA
bundle). Registered on an explicit registry by `build_registry`, so `main` and the tests
run the same handlers (DESIGN.md, operator row; issue 5).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf
from jaring.operator import certs, kubeapi, validation, webhook
from jaring.operator.config import OperatorConfig
from jaring.operator.selection import NetworkRef, network_ref
from jaring.operator.usage import (
    NadCatalog,
    NadInfo,
    PodRef,
    UsageIndex,
    in_use_message,
    networks_of_pod,
)
from jaring.operator.validation import RESOURCE_NAME_ANNOTATION

GROUP = "k8s.cni.cncf.io"
NAD_PLURAL = "network-attachment-definitions"
NAD = (GROUP, "v1", NAD_PLURAL)
VALIDATING_CONFIGS = "validatingwebhookconfigurations"
MUTATING_CONFIGS = "mutatingwebhookconfigurations"

Clock = Callable[[], datetime.datetime]
PublishCa = Callable[[kopf.ConnectionInfo, str, str, bytes], Awaitable[bool]]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def _publish_ca(info: kopf.ConnectionInfo, kind: str, name: str, ca_pem: bytes) -> bool:
    return await kubeapi.publish_ca_bundle(info, kind=kind, name=name, ca_pem=ca_pem)


@dataclass
class OperatorState:
    """What the handlers and the webhook server share inside one operator process."""

    config: OperatorConfig
    nads: NadCatalog = field(default_factory=NadCatalog)
    usage: UsageIndex = field(default_factory=UsageIndex)
    connection: kopf.ConnectionInfo | None = None


def _rfc3339(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _network(meta: Mapping[str, Any]) -> NetworkRef:
    return network_ref(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""))


def build_registry(
    state: OperatorState,
    *,
    clock: Clock = _utcnow,
    publish_ca: PublishCa = _publish_ca,
) -> kopf.OperatorRegistry:
    """A registry with every handler of the operator, bound to `state`."""
    registry = kopf.OperatorRegistry()
    config = state.config
    log = logging.getLogger("jaring.operator")

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        state.connection = info
        return info

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
        prefix = config.annotations_prefix
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=prefix)
        settings.persistence.finalizer = f"{prefix}/in-use"
        # Only our own Events reach the API; Kopf's per-handler chatter stays in the log.
        settings.posting.level = logging.WARNING
        if config.webhooks:
            memo.webhook_task = asyncio.create_task(_serve_webhooks(), name="jaring webhooks")

    async def _publish(bundle: certs.Bundle) -> None:
        info = state.connection
        if info is None:
            raise kopf.TemporaryError("no API credentials yet", delay=config.retry_delay)
        for kind, name in (
            (VALIDATING_CONFIGS, config.validating_webhook_configuration),
            (MUTATING_CONFIGS, config.mutating_webhook_configuration),
        ):
            if not await publish_ca(info, kind, name, bundle.ca_pem):
                log.warning("%s/%s not found: its caBundle is not managed", kind, name)

    async def _serve_webhooks() -> None:
        files = certs.Files.under(config.cert_dir)
        # The serving cert exists (and its CA is published) before the first request.
        while True:
            try:
                bundle, _ = certs.ensure(files, hostnames=config.hostnames, now=clock())
                await _publish(bundle)
                break
            except (kopf.TemporaryError, OSError, aiohttp.ClientError) as exc:
                log.warning("publishing the webhook CA failed, retrying: %s", exc)
                await asyncio.sleep(config.retry_delay)
            except kubeapi.ApiError as exc:
                # Not transient (RBAC, a broken configuration): someone has to fix it;
                # keep trying, less often, so the fix takes effect without a restart.
                log.error("publishing the webhook CA failed: %s", exc)
                await asyncio.sleep(config.retry_delay * (1 if exc.transient else 6))
        await webhook.serve(
            endpoint=webhook.Endpoint(config.webhook_host, config.webhook_port),
            files=files,
            hostnames=config.hostnames,
            nads=state.nads,
            policy=config.pod_policy,
            on_renewed=_publish,
            stats=lambda: {"known_nads": len(state.nads), "pods_using_nads": len(state.usage)},
            clock=clock,
        )

    @kopf.on.cleanup(registry=registry)
    async def stop_webhooks(memo: Any, **_: Any) -> None:
        task = getattr(memo, "webhook_task", None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @kopf.on.probe(registry=registry, id="known_nads")
    def known_nads(**_: Any) -> int:
        return len(state.nads)

    @kopf.on.probe(registry=registry, id="pods_using_nads")
    def pods_using_nads(**_: Any) -> int:
        return len(state.usage)

    # --- NetworkAttachmentDefinitions: validation, status, Events -------------------------

    @kopf.on.resume(*NAD, registry=registry, id="validate")
    @kopf.on.create(*NAD, registry=registry, id="validate")
    @kopf.on.update(*NAD, registry=registry, id="validate")
    def validate_nad(
        body: kopf.Body,
        meta: kopf.Meta,
        spec: kopf.Spec,
        status: kopf.Status,
        patch: kopf.Patch,
        **_: Any,
    ) -> None:
        findings = validation.validate_nad(
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            spec=dict(spec),
            annotations=dict(meta.annotations),
        )
        ready = validation.ready_condition(
            findings,
            generation=meta.get("generation"),
            uses_disk_config=not spec.get("config"),
        )
        new, changed = validation.conditions(status.get("conditions"), ready, now=_rfc3339(clock()))
        if not changed:  # resumed or re-run with the same verdict: no write, no Event
            return
        patch.status["conditions"] = new
        if ready.status:
            kopf.event(body, type="Normal", reason=ready.reason, message=ready.message)
        else:
            kopf.event(body, type="Warning", reason=ready.reason, message=ready.message)

    # --- The catalog of NADs the webhooks consult, and which pods use which NAD -----------

    @kopf.on.event(*NAD, registry=registry)
    def track_nad(event: kopf.RawEvent, body: kopf.Body, meta: kopf.Meta, **_: Any) -> None:
        network = _network(meta)
        if event["type"] == "DELETED":
            state.nads.remove(network)
            users = state.usage.users(network)
            if users and not config.block_delete_in_use:
                kopf.event(
                    body,
                    type="Warning",
                    reason="DeletedInUse",
                    message=in_use_message(network, users),
                )
            return
        resource_name = meta.annotations.get(RESOURCE_NAME_ANNOTATION)
        state.nads.put(NadInfo(network, resource_name or None))

    @kopf.on.event("", "v1", "pods", registry=registry)
    def track_pod(event: kopf.RawEvent, meta: kopf.Meta, status: kopf.Status, **_: Any) -> None:
        pod = PodRef(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""))
        if event["type"] == "DELETED":
            state.usage.drop_pod(pod)
            return
        state.usage.set_pod(
            pod,
            networks_of_pod(
                namespace=pod.namespace,
                annotations=dict(meta.annotations),
                phase=phase if isinstance(phase := status.get("phase"), str) else None,
            ),
        )

    if config.block_delete_in_use:

        @kopf.on.delete(*NAD, registry=registry, id="wait-until-unused")
        def wait_until_unused(body: kopf.Body, meta: kopf.Meta, **_: Any) -> None:
            network = _network(meta)
            users = state.usage.users(network)
            if users:
                message = in_use_message(network, users)
                kopf.event(body, type="Warning", reason="DeletionBlocked", message=message)
                raise kopf.TemporaryError(message, delay=config.retry_delay)

    return registry
