"""Admission decisions: an AdmissionReview (admission.k8s.io/v1) in, its response out.

Three webhooks, all pure over the review and a NAD catalog: `validate-nad` (the same
findings as the Ready condition), `validate-pod` (NPWG selection syntax, namespace
isolation, missing NADs as warnings) and `mutate-pod` (one unit of a NAD's
`k8s.v1.cni.cncf.io/resourceName` per attachment, like network-resources-injector).
Served over HTTPS by `webhook.py`.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

from jaring.cni.errors import CniError
from jaring.cni.ids import Namespace
from jaring.cni.selection import check_isolation
from jaring.operator import validation
from jaring.operator.selection import Attachment, NetworkRef, SelectionError, pod_selection
from jaring.operator.usage import NadInfo

VALIDATE_NAD = "validate-nad"
VALIDATE_POD = "validate-pod"
MUTATE_POD = "mutate-pod"
WEBHOOKS = (VALIDATE_NAD, VALIDATE_POD, MUTATE_POD)


class NadLookup(Protocol):
    def get(self, network: NetworkRef) -> NadInfo | None: ...


@dataclass(frozen=True, kw_only=True)
class PodPolicy:
    """Multus `namespaceIsolation` / `globalNamespaces` (default `default`)."""

    namespace_isolation: bool = False
    global_namespaces: frozenset[str] = frozenset({"default"})


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    _: KW_ONLY
    message: str = ""
    code: int = 200
    warnings: tuple[str, ...] = ()
    patch: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)


def deny(message: str, *, warnings: Sequence[str] = ()) -> Verdict:
    return Verdict(False, message=message, code=400, warnings=tuple(warnings))


def review_nad(obj: Mapping[str, Any]) -> Verdict:
    meta = obj.get("metadata") or {}
    findings = validation.validate_nad(
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""),
        spec=obj.get("spec"),
        annotations=meta.get("annotations") or {},
    )
    notes = [str(f) for f in validation.warnings(findings)]
    bad = validation.errors(findings)
    if bad:
        return deny(validation.summary(bad), warnings=notes)
    return Verdict(True, warnings=tuple(notes))


def _selection(pod: Mapping[str, Any], namespace: str) -> tuple[Attachment, ...]:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return pod_selection(annotations, pod_namespace=namespace)


def review_pod(
    pod: Mapping[str, Any], *, namespace: str, nads: NadLookup, policy: PodPolicy
) -> Verdict:
    try:
        selected = _selection(pod, namespace)
    except SelectionError as exc:
        return deny(str(exc))
    try:  # the meta-plugin's own rule, so both refuse the same pods
        check_isolation(
            selected,
            pod_namespace=Namespace(namespace),
            enabled=policy.namespace_isolation,
            global_namespaces=frozenset(policy.global_namespaces),
        )
    except CniError as exc:
        return deny(str(exc))
    missing = sorted({str(s.network) for s in selected if nads.get(s.network) is None})
    warnings = tuple(
        f"NetworkAttachmentDefinition {m} does not exist (yet): the pod will not start "
        "until it does"
        for m in missing
    )
    return Verdict(True, warnings=warnings)


def _escape(key: str) -> str:
    """JSON Pointer (RFC 6901) escaping, for resource names such as `intel.com/sriov`."""
    return key.replace("~", "~0").replace("/", "~1")


def _quantity(value: object) -> int:
    """An extended resource's quantity is a whole number; anything else counts as 0."""
    try:
        return int(str(value))
    except ValueError:
        return 0


def resource_patch(pod: Mapping[str, Any], wanted: Mapping[str, int]) -> tuple[dict[str, Any], ...]:
    """JSON patch ops putting `wanted` into the first container's requests and limits.

    Each resource ends up with requests == limits (Kubernetes demands it for extended
    resources) at the larger of what the user asked for and one per attachment.
    """
    containers = (pod.get("spec") or {}).get("containers") or []
    if not wanted or not containers:
        return ()
    resources = containers[0].get("resources")
    base = "/spec/containers/0/resources"
    if not isinstance(resources, dict):
        counts = {k: str(v) for k, v in sorted(wanted.items())}
        return ({"op": "add", "path": base, "value": {"requests": counts, "limits": counts}},)
    sections = {
        name: section if isinstance(section := resources.get(name), dict) else None
        for name in ("requests", "limits")
    }
    targets = {
        key: str(max([count] + [_quantity(s[key]) for s in sections.values() if s and key in s]))
        for key, count in sorted(wanted.items())
    }
    ops: list[dict[str, Any]] = []
    for name, current in sections.items():
        if current is None:
            ops.append({"op": "add", "path": f"{base}/{name}", "value": dict(targets)})
            continue
        for key, target in targets.items():
            if key in current and str(current[key]) == target:
                continue
            op = "replace" if key in current else "add"
            ops.append({"op": op, "path": f"{base}/{name}/{_escape(key)}", "value": target})
    return tuple(ops)


def mutate_pod(pod: Mapping[str, Any], *, namespace: str, nads: NadLookup) -> Verdict:
    """Never denies: a bad annotation is `validate-pod`'s business."""
    try:
        selected = _selection(pod, namespace)
    except SelectionError:
        return Verdict(True)
    wanted: Counter[str] = Counter()
    for item in selected:
        info = nads.get(item.network)
        if info is not None and info.resource_name:
            wanted[info.resource_name] += 1
    return Verdict(True, patch=resource_patch(pod, wanted))


def decide(
    webhook: str, request: Mapping[str, Any], *, nads: NadLookup, policy: PodPolicy
) -> Verdict:
    obj = request.get("object")
    if request.get("operation") == "DELETE" or not isinstance(obj, Mapping):
        return Verdict(True)
    namespace = str(request.get("namespace") or (obj.get("metadata") or {}).get("namespace") or "")
    if webhook == VALIDATE_NAD:
        return review_nad(obj)
    if webhook == VALIDATE_POD:
        return review_pod(obj, namespace=namespace, nads=nads, policy=policy)
    if webhook == MUTATE_POD:
        return mutate_pod(obj, namespace=namespace, nads=nads)
    raise ValueError(f"unknown webhook {webhook!r}; known: {', '.join(WEBHOOKS)}")


class BadReviewError(ValueError):
    """The AdmissionReview itself is malformed (HTTP 400, not a denial)."""


def respond(webhook: str, review: object, *, nads: NadLookup, policy: PodPolicy) -> dict[str, Any]:
    """The AdmissionReview response for a review request (same apiVersion as asked)."""
    if not isinstance(review, Mapping) or not isinstance(review.get("request"), Mapping):
        raise BadReviewError("not an AdmissionReview with a request")
    request = review["request"]
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReviewError("AdmissionReview request has no uid")
    verdict = decide(webhook, request, nads=nads, policy=policy)
    response: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        response["status"] = {"code": verdict.code, "message": verdict.message}
    if verdict.warnings:
        response["warnings"] = list(verdict.warnings)
    if verdict.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(list(verdict.patch)).encode()).decode()
    return {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    }
