"""Kopf handlers of jaring-operator, kept thin: they read the object, call a pure decision
and write its outcome (status condition, Events). Registered on an explicit registry by
`build_registry` so tests and `main` run the same handlers (DESIGN.md, operator row)."""

from __future__ import annotations

import json
from typing import Any

import kopf

GROUP = "k8s.cni.cncf.io"
NAD_PLURAL = "network-attachment-definitions"


def _config_problem(spec: Any) -> str | None:
    config = spec.get("config") if spec else None
    if config is None:
        return None
    try:
        parsed = json.loads(config)
    except ValueError as exc:
        return f"spec.config: not JSON: {exc}"
    if not isinstance(parsed, dict):
        return "spec.config: not a JSON object"
    return None


def build_registry() -> kopf.OperatorRegistry:
    """A registry with the NAD handlers; main() and tests run exactly this."""
    registry = kopf.OperatorRegistry()

    @kopf.on.resume(GROUP, "v1", NAD_PLURAL, registry=registry)
    @kopf.on.create(GROUP, "v1", NAD_PLURAL, registry=registry)
    @kopf.on.update(GROUP, "v1", NAD_PLURAL, field="spec", registry=registry)
    def validate_nad(spec: Any, patch: kopf.Patch, **_: Any) -> None:
        problem = _config_problem(spec)
        ready = {
            "type": "Ready",
            "status": "False" if problem else "True",
            "reason": "InvalidConfig" if problem else "Valid",
            "message": problem or "configuration is valid",
        }
        patch.setdefault("status", {})["conditions"] = [ready]

    return registry
