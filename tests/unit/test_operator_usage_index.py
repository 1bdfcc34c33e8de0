"""Which pods use which NAD: derived from the selection annotation and the phase, kept
consistent as pods change and go, and summarised for the in-use warning."""

from __future__ import annotations

from jaring.operator.selection import network_ref
from jaring.operator.usage import (
    NadCatalog,
    NadInfo,
    PodRef,
    UsageIndex,
    in_use_message,
    networks_of_pod,
)

ANN = "k8s.v1.cni.cncf.io/networks"
A, B = network_ref(namespace="ns", name="a"), network_ref(namespace="other", name="b")


def test_networks_of_running_pending_and_finished_pods() -> None:
    ann = {ANN: "a,other/b,a@x"}
    assert networks_of_pod(namespace="ns", annotations=ann, phase="Running") == {A, B}
    assert networks_of_pod(namespace="ns", annotations=ann, phase=None) == {A, B}
    assert networks_of_pod(namespace="ns", annotations=ann, phase="Pending") == {A, B}
    for done in ("Succeeded", "Failed"):
        assert networks_of_pod(namespace="ns", annotations=ann, phase=done) == frozenset()


def test_an_unparsable_annotation_holds_nothing() -> None:
    assert networks_of_pod(namespace="ns", annotations={ANN: "[oops"}, phase="Running") == set()
    assert networks_of_pod(namespace="ns", annotations={}, phase="Running") == set()


def test_index_follows_pods_as_they_change_and_go() -> None:
    index = UsageIndex()
    p1, p2 = PodRef(namespace="ns", name="p1"), PodRef(namespace="ns", name="p2")
    index.set_pod(p1, frozenset({A, B}))
    index.set_pod(p2, frozenset({A}))
    assert index.users(A) == (p1, p2)
    assert index.users(B) == (p1,)
    index.set_pod(p1, frozenset({B}))  # annotation changed
    assert index.users(A) == (p2,)
    index.drop_pod(p2)
    assert index.users(A) == ()
    index.set_pod(p1, frozenset())  # finished: holds nothing
    assert index.users(B) == ()
    assert len(index) == 0
    index.drop_pod(PodRef(namespace="ns", name="never-seen"))  # harmless


def test_in_use_message_lists_a_few_pods_and_counts_the_rest() -> None:
    pods = tuple(PodRef(namespace="ns", name=f"p{i}") for i in range(7))
    assert in_use_message(A, pods[:2]) == (
        "NetworkAttachmentDefinition ns/a is still used by 2 pod(s): ns/p0, ns/p1"
    )
    assert in_use_message(A, pods).endswith("ns/p3, ns/p4 and 2 more")


def test_catalog_put_get_remove() -> None:
    nads = NadCatalog()
    nads.put(NadInfo(A, "intel.com/x"))
    assert nads.get(A) == NadInfo(A, "intel.com/x")
    nads.put(NadInfo(A))
    assert nads.get(A) == NadInfo(A)
    nads.remove(A)
    nads.remove(A)
    assert nads.get(A) is None
    assert len(nads) == 0
