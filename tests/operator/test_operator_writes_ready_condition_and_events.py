"""The operator, running for real against the API, validates every NAD on create, update
and resume and reports it as a `Ready` condition and as Events."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytestmark = pytest.mark.api

GOOD = {"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0", "mode": "bridge"}
BAD = {"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0", "mode": "sideways"}

Eventually = Callable[..., Awaitable[Any]]


async def ready_of(api: Any, name: str) -> dict[str, Any] | None:
    obj = await api.get(api.nad_path(name))
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return None


def waiting_for(api: Any, name: str, status: str, reason: str | None = None) -> Any:
    async def probe() -> dict[str, Any] | None:
        cond = await ready_of(api, name)
        if cond and cond["status"] == status and reason in (None, cond["reason"]):
            return cond
        return None

    return probe


async def test_valid_nad_gets_ready_true_and_a_normal_event(
    api: Any, operator: Any, eventually: Eventually
) -> None:
    await api.create_nad("good", GOOD)
    cond = await eventually(waiting_for(api, "good", "True", "Valid"))
    assert cond["message"] == "configuration is valid"
    assert cond["lastTransitionTime"]
    events = await eventually(lambda: api.events("good"), what="an Event")
    assert any(e["type"] == "Normal" and e["reason"] == "Valid" for e in events)
    # Kopf's liveness endpoint reports the operator's cache sizes as probes.
    assert set(await operator.health()) == {"known_nads", "pods_using_nads"}


async def test_invalid_nad_gets_ready_false_naming_the_field_and_a_warning_event(
    api: Any, operator: Any, eventually: Eventually
) -> None:
    await api.create_nad("bad", BAD)
    cond = await eventually(waiting_for(api, "bad", "False", "InvalidConfig"))
    assert cond["message"].startswith("spec.config.mode: macvlan: 'sideways' is not one of")

    async def warning() -> list[dict[str, Any]]:
        return [e for e in await api.events("bad") if e["type"] == "Warning"]

    events = await eventually(warning, what="a Warning Event")
    assert events[0]["reason"] == "InvalidConfig"
    assert events[0]["message"] == cond["message"]


async def test_unparsable_config_and_bad_resource_name_are_reported(
    api: Any, operator: Any, eventually: Eventually
) -> None:
    await api.create_nad("broken", "{not json")
    cond = await eventually(waiting_for(api, "broken", "False"))
    assert cond["message"].startswith("spec.config: not valid JSON")
    await api.create_nad(
        "sriov-net",
        {"cniVersion": "1.0.0", "type": "sriov", "vlan": 10},
        annotations={"k8s.v1.cni.cncf.io/resourceName": "no-domain"},
    )
    cond = await eventually(waiting_for(api, "sriov-net", "False"))
    assert "metadata.annotations[k8s.v1.cni.cncf.io/resourceName]" in cond["message"]


async def test_changing_a_nad_flips_its_condition_both_ways(
    api: Any, operator: Any, eventually: Eventually
) -> None:
    await api.create_nad("flip", GOOD)
    first = await eventually(waiting_for(api, "flip", "True"))
    await api.patch_nad("flip", {"spec": {"config": json.dumps(BAD)}})
    second = await eventually(waiting_for(api, "flip", "False"))
    assert second["observedGeneration"] == first["observedGeneration"] + 1
    assert "spec.config.mode" in second["message"]
    assert second["lastTransitionTime"] >= first["lastTransitionTime"]
    await api.patch_nad("flip", {"spec": {"config": json.dumps(GOOD)}})
    await eventually(waiting_for(api, "flip", "True", "Valid"))


async def test_empty_config_means_the_on_disk_config(
    api: Any, operator: Any, eventually: Eventually
) -> None:
    await api.create_nad("on-disk", None)
    cond = await eventually(waiting_for(api, "on-disk", "True", "OnDiskConfig"))
    assert "on-disk" in cond["message"]


async def test_nads_that_existed_before_the_operator_are_validated_on_resume(
    api: Any, operator_config: Any, start_operator: Any, eventually: Eventually
) -> None:
    await api.create_nad("early-good", GOOD)
    await api.create_nad("early-bad", BAD)
    async with start_operator(operator_config):
        await eventually(waiting_for(api, "early-good", "True"))
        await eventually(waiting_for(api, "early-bad", "False"))


async def test_annotation_changes_are_revalidated_and_reach_the_webhooks(
    api: Any, operator: Any, eventually: Eventually
) -> None:
    sriov = {"cniVersion": "1.0.0", "type": "sriov"}
    key = "k8s.v1.cni.cncf.io/resourceName"
    await api.create_nad("vfs", sriov, annotations={key: "intel.com/vf"})
    first = await eventually(waiting_for(api, "vfs", "True", "Valid"))
    assert first["observedGeneration"] == 1
    await api.patch_nad("vfs", {"metadata": {"annotations": {key: "intel.com/vf!"}}})
    cond = await eventually(waiting_for(api, "vfs", "False"))
    assert cond["message"].startswith(f"metadata.annotations[{key}]: 'vf!' must be")
    await api.patch_nad("vfs", {"metadata": {"annotations": {key: "example.com/vf"}}})
    await eventually(waiting_for(api, "vfs", "True"))

    async def injected() -> bool:
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "request": {
                "uid": "u",
                "operation": "CREATE",
                "namespace": api.namespace,
                "object": {
                    "metadata": {"annotations": {"k8s.v1.cni.cncf.io/networks": "vfs"}},
                    "spec": {"containers": [{"name": "c"}]},
                },
            },
        }
        _, answer = await operator.review("mutate-pod", review)
        return "example.com" in base64.b64decode(answer["response"].get("patch", "")).decode()

    await eventually(injected, what="the new resourceName in the mutation")
