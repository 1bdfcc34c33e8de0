"""The admission webhook judges a pod's selection with the meta-plugin's own
rules (`jaring.cni.selection`): it accepts what jaring can attach and refuses,
with the very message a CNI ADD would fail with, what it cannot."""

from __future__ import annotations

import pytest
from jaring.cni.errors import CniError
from jaring.cni.ids import IfName, Namespace
from jaring.cni.selection import assign_ifnames, check_default_route, parse_selection
from jaring.operator.selection import SelectionError, network_ref, pod_selection

NETWORKS = "k8s.v1.cni.cncf.io/networks"


def select(text: str) -> tuple[tuple[str, str | None], ...]:
    chosen = pod_selection({NETWORKS: text}, pod_namespace="ns")
    return tuple((str(a.network), a.interface) for a in chosen)


def test_short_form_with_namespaces_and_interfaces() -> None:
    assert select("a, other/b@net5 ,c@x") == (
        ("ns/a", None),
        ("other/b", "net5"),
        ("ns/c", "x"),
    )


def test_json_form_with_every_key() -> None:
    text = """[{"name": "a", "namespace": "x", "interface": "dp0", "ips": ["10.0.0.2/24",
    "fd00::2/64"], "mac": "02:00:00:00:00:01", "cni-args": {"k": 1}, "portMappings":
    [{"hostPort": 1}], "bandwidth": {"ingressRate": 1}, "default-route": ["10.0.0.1"],
    "infiniband-guid": "g", "example.com/ext": 1}, {"name": "b",
    "ipam-claim-reference": "claim"}]"""
    chosen = pod_selection({NETWORKS: text}, pod_namespace="ns")
    assert [a.network for a in chosen] == [
        network_ref(namespace="x", name="a"),
        network_ref(namespace="ns", name="b"),
    ]
    assert chosen[0].default_route == ("10.0.0.1",)


def test_empty_and_absent_annotations_select_nothing() -> None:
    assert select("  ") == ()
    assert select("[]") == ()
    assert pod_selection({}, pod_namespace="ns") == ()


def _runtime_error(text: str) -> str:
    """What the meta-plugin's ADD says about the same annotation."""
    try:
        chosen = parse_selection(text, pod_namespace=Namespace("ns"))
        check_default_route(chosen)
        assign_ifnames(chosen, cluster_ifname=IfName("eth0"))
    except CniError as exc:
        return str(exc)
    return ""


@pytest.mark.parametrize(
    "text",
    [
        "a/b/c",
        "Caps",
        "Bad_ns/a",
        "a@",
        "a@" + "x" * 16,
        "a@has space",
        "a,",
        "[",
        '{"name": "a"}',
        '["a"]',
        "[{}]",
        '[{"name": "a", "namespace": 5}]',
        '[{"name": "a", "interface": "a:b"}]',
        '[{"name": "a", "ips": "10.0.0.1"}]',
        '[{"name": "a", "ips": [5]}]',
        '[{"name": "a", "mac": "02:00:00:00:00"}]',
        '[{"name": "a", "cni-args": []}]',
        '[{"name": "a", "bandwidth": 1}]',
        '[{"name": "a", "portMappings": {}}]',
        '[{"name": "a", "ipam-claim-reference": "c", "ips": ["10.0.0.1/24"]}]',
        '[{"name": "a", "colour": 1}]',
        "a@x,b@x",
        "a@eth0",
        '[{"name": "a", "default-route": ["10.0.0.1"]}, {"name": "b", "default-route": '
        '["fd00::1"]}]',
    ],
)
def test_refused_with_the_message_the_cni_add_would_give(text: str) -> None:
    with pytest.raises(SelectionError) as caught:
        pod_selection({NETWORKS: text}, pod_namespace="ns")
    assert str(caught.value) == _runtime_error(text) != ""


def test_the_same_network_twice_is_two_selections() -> None:
    assert len(select("a,a")) == 2
