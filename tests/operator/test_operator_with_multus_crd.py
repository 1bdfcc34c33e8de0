"""Clusters that keep Multus's CRD (no status subresource): the operator still validates
and posts its Events. On a real cluster: `crds/` applies cleanly over whatever CRD is
there, twice, and the status subresource works."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import kmock
import pytest

pytestmark = pytest.mark.api
Eventually = Callable[..., Awaitable[Any]]
BAD = {"cniVersion": "1.0.0", "type": "bridge", "mtu": "big"}


async def test_without_a_status_subresource_events_are_still_posted(
    api: Any, operator_config: Any, start_operator: Any, eventually: Eventually
) -> None:
    if api.emulator is None:
        pytest.skip("a real cluster has the CRD from crds/, with the status subresource")
    # Multus's CRD as the operator would discover it: no `/status`.
    api.emulator.resources["k8s.cni.cncf.io/v1/network-attachment-definitions"] = (
        kmock.ResourceInfo(
            kind="NetworkAttachmentDefinition",
            namespaced=True,
            verbs={"list", "watch", "get", "patch", "create", "delete"},
        )
    )
    async with start_operator(operator_config):
        await api.create_nad("multus-made", BAD)

        async def warning() -> list[dict[str, Any]]:
            return [e for e in await api.events("multus-made") if e["type"] == "Warning"]

        (event, *_) = await eventually(warning, what="a Warning Event")
        assert event["reason"] == "InvalidConfig"
        assert event["message"].startswith("spec.config.mtu: bridge: 'big'")


async def test_crds_apply_again_and_the_status_subresource_works(
    api: Any, crds_applied: Callable[..., Awaitable[list[str]]]
) -> None:
    if api.emulator is not None:
        pytest.skip("needs JARING_TEST_KUBECONFIG: kmock has no server-side apply")
    assert sorted(await crds_applied(api.info)) == [
        "ipamclaims.k8s.cni.cncf.io",
        "network-attachment-definitions.k8s.cni.cncf.io",
    ]
    await api.create_nad("plain", {"cniVersion": "1.0.0", "type": "bridge"})
    status = {"status": {"conditions": [{"type": "Probe", "status": "True"}]}}
    await api.call(
        "PATCH",
        api.nad_path("plain") + "/status",
        status,
        content_type="application/merge-patch+json",
    )
    obj = await api.get(api.nad_path("plain"))
    assert {"type": "Probe", "status": "True"} in obj["status"]["conditions"]
