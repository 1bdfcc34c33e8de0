"""The operator's settings: one frozen dataclass built by `main` from flags and environment
variables, passed to `handlers.build_registry` and to the webhook server. Nothing else
reads the environment (STYLE.md #4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jaring.operator.admission import PodPolicy


@dataclass(frozen=True)
class OperatorConfig:
    # NAD deletion while pods use it: False = warning Event, True = a finalizer that waits.
    block_delete_in_use: bool = False
    pod_policy: PodPolicy = PodPolicy()
    # Webhooks: served over HTTPS when enabled; caBundle patched into these objects.
    webhooks: bool = True
    webhook_host: str = "0.0.0.0"  # a pod serves on all its addresses
    webhook_port: int = 8443
    cert_dir: Path = Path("/run/jaring-operator/certs")
    service: str = "jaring-operator"
    service_namespace: str = "jaring-system"
    extra_hostnames: tuple[str, ...] = ()
    validating_webhook_configuration: str = "jaring-operator"
    mutating_webhook_configuration: str = "jaring-operator"
    # Kopf's own bookkeeping annotations live under this prefix.
    annotations_prefix: str = "operator.jaring.dev"
    retry_delay: float = 5.0

    @property
    def hostnames(self) -> tuple[str, ...]:
        from jaring.operator.certs import service_hostnames

        return service_hostnames(self.service, self.service_namespace) + self.extra_hostnames


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def from_environ(
    environ: Mapping[str, str], *, argv_hostnames: Sequence[str] = ()
) -> OperatorConfig:
    """`JARING_*` variables as the Deployment sets them; unset means the default."""
    base = OperatorConfig()
    global_namespaces = _list(environ.get("JARING_GLOBAL_NAMESPACES"))
    return OperatorConfig(
        block_delete_in_use=_flag(environ.get("JARING_BLOCK_DELETE_IN_USE"), False),
        pod_policy=PodPolicy(
            namespace_isolation=_flag(environ.get("JARING_NAMESPACE_ISOLATION"), False),
            global_namespaces=frozenset(global_namespaces)
            if global_namespaces
            else base.pod_policy.global_namespaces,
        ),
        webhooks=_flag(environ.get("JARING_WEBHOOKS"), True),
        webhook_port=int(environ.get("JARING_WEBHOOK_PORT") or base.webhook_port),
        cert_dir=Path(environ.get("JARING_CERT_DIR") or base.cert_dir),
        service=environ.get("JARING_SERVICE") or base.service,
        service_namespace=environ.get("JARING_SERVICE_NAMESPACE")
        or environ.get("POD_NAMESPACE")
        or base.service_namespace,
        extra_hostnames=tuple(argv_hostnames),
    )
