"""The daemon's watch caches keep little and stay right (issue 6, LESSONS #5):
pods of other nodes are not kept, large annotations (last-applied, our own
network-status) are dropped, NADs keep only their config; watch events add,
change and remove entries, a pod moving off the node leaves the cache, and
410 Gone makes the reflector list again. Scripted API: no server needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jaring.metaplugin.kubeclient import KubeClient, KubeConfig
from jaring.metaplugin.nodecache import (
    NADS_PATH,
    PODS_PATH,
    Reflector,
    Resource,
    Store,
    nad_entry,
    pod_entry,
)
from jaring.metaplugin.sources import NadInfo, PodInfo

STATUS = "k8s.v1.cni.cncf.io/network-status"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def pod(name: str, node: str = "n1", uid: str = "u1", **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "annotations": annotations},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x" * 1000}]},
    }


def nad(name: str, config: str = "{}") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "annotations": {"big": "x" * 1000}},
        "spec": {"config": config},
    }


def test_pod_entry_keeps_identity_and_small_annotations() -> None:
    entry = pod_entry(
        pod("web", **{"k8s.v1.cni.cncf.io/networks": "data", STATUS: "[]", LAST_APPLIED: "{}"}),
        node_name="n1",
    )
    assert entry == PodInfo(
        namespace="ns",  # type: ignore[arg-type]  # NewType of str
        name="web",  # type: ignore[arg-type]
        uid="u1",  # type: ignore[arg-type]
        annotations={"k8s.v1.cni.cncf.io/networks": "data"},
        node_name="n1",
    )


def test_pods_of_other_nodes_are_not_kept() -> None:
    assert pod_entry(pod("web", node="n2"), node_name="n1") is None


def test_nad_entry_keeps_only_the_config() -> None:
    entry = nad_entry(nad("data", '{"type":"macvlan"}'))
    assert entry.config == '{"type":"macvlan"}'
    assert entry.annotations == {}


class ScriptedClient(KubeClient):
    """Answers LIST from `lists` in turn; never opens a connection."""

    def __init__(self, lists: list[dict[str, Any]]) -> None:
        super().__init__(KubeConfig(server="http://127.0.0.1:1"))
        self.lists = lists
        self.listed = 0

    def get(self, path: str) -> dict[str, Any] | None:
        self.listed += 1
        return self.lists.pop(0)


class ScriptedReflector(Reflector[Any]):
    """A reflector whose watch streams are scripted lists of events."""

    def __init__(self, client: KubeClient, resource: Resource[Any], store: Store[Any]) -> None:
        super().__init__(client, resource, store, sleep=lambda _: True)
        self.streams: list[list[dict[str, Any]]] = []

    def _stream(self, path: str) -> Iterator[dict[str, Any]]:
        if not self.streams:
            self._stop.set()  # the script is over: end the run loop
            return
        yield from self.streams.pop(0)


def listing(items: list[dict[str, Any]], version: str = "1") -> dict[str, Any]:
    return {"metadata": {"resourceVersion": version}, "items": items}


def test_watch_events_update_the_store_and_410_relists() -> None:
    store: Store[PodInfo] = Store()
    client = ScriptedClient([listing([pod("a"), pod("b")]), listing([pod("c")], "9")])
    resource = Resource("Pod", PODS_PATH, "", lambda o: pod_entry(o, node_name="n1"))
    reflector = ScriptedReflector(client, resource, store)
    reflector.streams = [
        [
            {"type": "MODIFIED", "object": pod("a", uid="u2")},
            {"type": "DELETED", "object": pod("b")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "5"}}},
            {"type": "ADDED", "object": pod("d", node="n2")},  # not ours
            {"type": "MODIFIED", "object": pod("a", node="n2", uid="u2")},  # moved away
            {"type": "ERROR", "object": {"kind": "Status", "code": 410}},
        ],
    ]
    seen: list[set[str]] = []
    original_put = store.put

    def put(key: tuple[str, str], value: PodInfo | None) -> None:
        original_put(key, value)
        seen.append({k[1] for k in store._items})

    store.put = put  # type: ignore[method-assign]  # observe each step
    reflector._run()
    assert seen == [{"a", "b"}, {"a"}, {"a"}, set()]
    assert client.listed == 2  # the 410 made it list again
    assert {k[1] for k in store._items} == {"c"}
    assert store.synced.is_set()


def test_a_watch_error_other_than_410_also_relists_after_a_pause() -> None:
    store: Store[NadInfo] = Store()
    client = ScriptedClient([listing([nad("x")]), listing([nad("y")])])
    reflector = ScriptedReflector(client, Resource("NAD", NADS_PATH, "", nad_entry), store)
    reflector.streams = [[{"type": "ERROR", "object": {"code": 500, "message": "boom"}}]]
    reflector._run()
    assert client.listed == 2
    assert store.get(("ns", "y")) is not None
    assert store.get(("ns", "x")) is None
