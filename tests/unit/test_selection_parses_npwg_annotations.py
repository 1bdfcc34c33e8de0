"""NPWG selection annotation: both forms, every key, every error names its element."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jaring.cni.errors import CniError
from jaring.cni.ids import IfName, NadName, Namespace
from jaring.cni.selection import (
    Attachment,
    NetworkRef,
    assign_ifnames,
    check_isolation,
    default_network_override,
    parse_selection,
    parse_selection_lenient,
)

POD_NS = Namespace("pods")


def ref(ns: str, name: str) -> NetworkRef:
    return NetworkRef(namespace=Namespace(ns), name=NadName(name))


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_annotation_selects_nothing(text: str) -> None:
    assert parse_selection(text, pod_namespace=POD_NS) == ()


def test_short_form_all_shapes_with_whitespace_trimmed() -> None:
    got = parse_selection(" a , other/b , c@eth9 , x/d@net5 ", pod_namespace=POD_NS)
    assert [(str(a.network), a.interface) for a in got] == [
        ("pods/a", None),
        ("other/b", None),
        ("pods/c", "eth9"),
        ("x/d", "net5"),
    ]


def test_json_form_every_key() -> None:
    doc = [
        {
            "name": "a",
            "namespace": "ns1",
            "interface": "sriov0",
            "ips": ["10.0.0.5/24", "fd00::5"],
            "mac": "02:00:00:00:00:01",
            "cni-args": {"k": "v"},
            "portMappings": [{"hostPort": 80, "containerPort": 8080}],
            "bandwidth": {"ingressRate": 1},
            "default-route": ["10.0.0.1"],
            "infiniband-guid": "c2:11:22:33:44:55:66:77",
            "example.com/thing": {"x": 1},
        },
        {"name": "b", "ipam-claim-reference": "claim-1"},
    ]
    a, b = parse_selection(json.dumps(doc), pod_namespace=POD_NS)
    assert a == Attachment(
        network=ref("ns1", "a"),
        interface=IfName("sriov0"),
        ips=("10.0.0.5/24", "fd00::5"),
        mac="02:00:00:00:00:01",
        cni_args={"k": "v"},
        port_mappings=({"hostPort": 80, "containerPort": 8080},),
        bandwidth={"ingressRate": 1},
        default_route=("10.0.0.1",),
        infiniband_guid="c2:11:22:33:44:55:66:77",
        extensions={"example.com/thing": {"x": 1}},
    )
    assert b.network == ref("pods", "b") and b.ipam_claim == "claim-1"
    hash(a)  # frozen and hashable despite mapping fields


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a,", "networks[1]"),
        ("a,B", "networks[1]: network name must be a DNS-1123 label"),
        ("a/b/c", "networks[0]"),
        ("a@", "networks[0]: interface"),
        ("a@" + "x" * 16, "networks[0]: interface"),
        ("a@..", "networks[0]: interface"),
        ("Ns/a", "networks[0]: namespace"),
        ("n" * 64, "networks[0]: network name"),
        ('{"name": "a"}', "must be a list"),
        ("[1]", "networks[0]: must be an object"),
        ("[{", "invalid JSON"),
        ('[{"namespace": "x"}]', 'networks[0]: "name" is required'),
        ('[{"name": "a"}, {"name": "b", "ips": ["nope"]}]', 'networks[1]: "ips"'),
        ('[{"name": "a", "ips": "10.0.0.1"}]', 'networks[0]: "ips"'),
        ('[{"name": "a", "mac": "zz:00:00:00:00:00"}]', 'networks[0]: "mac"'),
        ('[{"name": "a", "mac": "01:00:5e:00:00:01"}]', "multicast"),
        ('[{"name": "a", "cni-args": []}]', '"cni-args" must be an object'),
        ('[{"name": "a", "portMappings": [1]}]', '"portMappings"'),
        ('[{"name": "a", "bandwidth": 3}]', '"bandwidth"'),
        ('[{"name": "a", "default-route": ["10.0.0.0/8"]}]', '"default-route"'),
        ('[{"name": "a", "infiniband-guid": 5}]', '"infiniband-guid"'),
        (
            '[{"name": "a", "ips": ["10.0.0.1"], "ipam-claim-reference": "c"}]',
            "cannot be used together",
        ),
        ('[{"name": "a", "colour": "red"}]', 'unknown key "colour"'),
        ('[{"name": "a", "interface": "a b"}]', "networks[0]: interface"),
    ],
)
def test_invalid_selection_error_names_the_element(text: str, needle: str) -> None:
    with pytest.raises(CniError) as info:
        parse_selection(text, pod_namespace=POD_NS)
    assert info.value.code == 7
    assert needle in str(info.value)


def test_lenient_parse_returns_nothing_and_the_reason() -> None:
    assert parse_selection_lenient("a,B", pod_namespace=POD_NS)[0] == ()
    assert "networks[1]" in (parse_selection_lenient("a,B", pod_namespace=POD_NS)[1] or "")
    got, problem = parse_selection_lenient("a", pod_namespace=POD_NS)
    assert problem is None and got[0].network == ref("pods", "a")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_keys = st.sampled_from(
    [
        "name",
        "namespace",
        "interface",
        "ips",
        "mac",
        "cni-args",
        "portMappings",
        "bandwidth",
        "default-route",
        "infiniband-guid",
        "ipam-claim-reference",
        "a.b",
        "zz",
    ]
)


@settings(max_examples=1500)
@given(st.text(max_size=60))
def test_any_string_gives_attachments_or_cni_error(text: str) -> None:
    try:
        assert isinstance(parse_selection(text, pod_namespace=POD_NS), tuple)
    except CniError as exc:
        assert exc.code == 7


@settings(max_examples=1500)
@given(st.lists(st.dictionaries(_keys, _json_values | st.just("a"), max_size=6), max_size=4))
def test_any_json_list_gives_attachments_or_cni_error(doc: list[dict[str, Any]]) -> None:
    try:
        assert isinstance(parse_selection(json.dumps(doc), pod_namespace=POD_NS), tuple)
    except CniError as exc:
        assert exc.code == 7


def att(name: str, ifname: str | None = None) -> Attachment:
    return Attachment(network=ref("pods", name), interface=IfName(ifname) if ifname else None)


def test_ifnames_are_net_k_by_position_unless_requested() -> None:
    got = assign_ifnames([att("a"), att("b", "data0"), att("c")], cluster_ifname=IfName("eth0"))
    assert got == ("net1", "data0", "net3")


def test_same_network_twice_gets_two_interfaces() -> None:
    assert assign_ifnames([att("a"), att("a")], cluster_ifname=IfName("eth0")) == ("net1", "net2")


@pytest.mark.parametrize(
    ("attachments", "needle"),
    [
        ([att("a", "x"), att("b", "x")], "networks[0] (pods/a) and networks[1] (pods/b)"),
        ([att("a", "net2"), att("b")], "networks[0] (pods/a) and networks[1] (pods/b)"),
        ([att("a", "eth0")], "networks[0] (pods/a)"),
    ],
)
def test_duplicate_ifnames_fail_naming_both(attachments: list[Attachment], needle: str) -> None:
    with pytest.raises(CniError) as info:
        assign_ifnames(attachments, cluster_ifname=IfName("eth0"))
    assert info.value.code == 7 and needle in str(info.value)


def test_isolation_allows_own_and_global_namespaces_only() -> None:
    ok = [Attachment(network=ref("pods", "a")), Attachment(network=ref("default", "b"))]
    check_isolation(
        ok, pod_namespace=POD_NS, enabled=True, global_namespaces=frozenset({"default"})
    )
    bad = [*ok, Attachment(network=ref("other", "c"))]
    check_isolation(bad, pod_namespace=POD_NS, enabled=False, global_namespaces=frozenset())
    with pytest.raises(CniError) as info:
        check_isolation(
            bad, pod_namespace=POD_NS, enabled=True, global_namespaces=frozenset({"default"})
        )
    assert "pods" in str(info.value) and "other/c" in str(info.value)


def test_default_network_override() -> None:
    key = "v1.multus-cni.io/default-network"
    assert default_network_override({}, pod_namespace=POD_NS) is None
    assert default_network_override({key: "n"}, pod_namespace=POD_NS) == ref("pods", "n")
    assert default_network_override({key: "x/n"}, pod_namespace=POD_NS) == ref("x", "n")
    for bad in ("", "a/b/c", "N", "a@eth1"):
        with pytest.raises(CniError) as info:
            default_network_override({key: bad}, pod_namespace=POD_NS)
        assert info.value.code == 7
