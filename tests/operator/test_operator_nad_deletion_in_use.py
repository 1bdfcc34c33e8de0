"""Deleting a NAD that running pods use posts a warning Event; with
`block_delete_in_use` a finalizer holds the NAD until the last such pod is gone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytestmark = pytest.mark.api

CONF = {"cniVersion": "1.0.0", "type": "bridge", "bridge": "br-test"}
Eventually = Callable[..., Awaitable[Any]]


def has_event(api: Any, name: str, reason: str) -> Callable[[], Awaitable[list[Any]]]:
    async def probe() -> list[Any]:
        return [e for e in await api.events(name) if e["reason"] == reason]

    return probe


async def validated(api: Any, name: str) -> bool:
    obj = await api.get(api.nad_path(name))
    return bool(((obj or {}).get("status") or {}).get("conditions"))


async def test_deleting_a_nad_in_use_posts_a_warning_naming_the_pods(
    api: Any, operator: Any, eventually: Eventually
) -> None:
    await api.create_nad("data", CONF)
    await api.create_pod("cnf-1", "data@dp0")
    await api.create_pod("cnf-2", f'[{{"name": "data", "namespace": "{api.namespace}"}}]')
    await api.create_pod("bystander", "")
    await eventually(lambda: validated(api, "data"))
    await eventually(lambda: operator.sees(pods=2), what="the operator to see both pods")
    await api.delete(api.nad_path("data"))
    events = await eventually(has_event(api, "data", "DeletedInUse"), what="DeletedInUse")
    message = events[0]["message"]
    assert events[0]["type"] == "Warning"
    assert "used by 2 pod(s)" in message
    assert f"{api.namespace}/cnf-1" in message
    assert f"{api.namespace}/cnf-2" in message
    assert "bystander" not in message


async def test_deleting_an_unused_nad_posts_no_warning(
    api: Any, operator: Any, eventually: Eventually
) -> None:
    await api.create_nad("unused", CONF)
    await api.create_nad("marker", CONF)
    await api.create_pod("other", "marker")
    await eventually(lambda: validated(api, "unused"))
    await api.delete(api.nad_path("unused"))
    # Delete a NAD in use after it: Events are posted in order, so once its warning is
    # there, a warning for the unused one would have been too.
    await eventually(lambda: validated(api, "marker"))
    await eventually(lambda: operator.sees(pods=1))
    await api.delete(api.nad_path("marker"))
    await eventually(has_event(api, "marker", "DeletedInUse"))
    assert await has_event(api, "unused", "DeletedInUse")() == []


async def test_block_delete_in_use_holds_the_nad_until_its_pods_are_gone(
    api: Any,
    operator_config: Any,
    configure: Any,
    start_operator: Any,
    eventually: Eventually,
) -> None:
    config = configure(operator_config, block_delete_in_use=True)
    async with start_operator(config) as running:
        await api.create_nad("held", CONF)
        await api.create_pod("user", "held")
        await eventually(lambda: validated(api, "held"))
        await eventually(lambda: running.sees(pods=1))
        await api.delete(api.nad_path("held"))
        await eventually(has_event(api, "held", "DeletionBlocked"), what="DeletionBlocked")
        still = await api.get(api.nad_path("held"))
        assert still is not None
        assert still["metadata"].get("deletionTimestamp")
        await api.delete(f"/api/v1/namespaces/{api.namespace}/pods/user")

        async def gone() -> bool:
            return await api.get(api.nad_path("held")) is None

        await eventually(gone, what="the NAD to be deleted")
