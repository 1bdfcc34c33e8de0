"""The operator's own NPWG selection check (it may not import the meta-plugin's): both
forms, every key rule, and the cross-element rules (interfaces, default-route)."""

from __future__ import annotations

import pytest
from jaring.operator.selection import NetworkRef, Selected, SelectionError, parse, pod_selection


def test_short_form_with_namespaces_and_interfaces() -> None:
    assert parse("a, other/b@net5 ,c@x", pod_namespace="ns") == (
        Selected(NetworkRef(namespace="ns", name="a")),
        Selected(NetworkRef(namespace="other", name="b"), "net5"),
        Selected(NetworkRef(namespace="ns", name="c"), "x"),
    )


def test_json_form_with_every_key() -> None:
    text = """[{"name": "a", "namespace": "x", "interface": "dp0", "ips": ["10.0.0.2/24",
    "fd00::2"], "mac": "02:00:00:00:00:01", "cni-args": {"k": 1}, "portMappings":
    [{"hostPort": 1}], "bandwidth": {"ingressRate": 1}, "default-route": ["10.0.0.1"],
    "infiniband-guid": "g", "example.com/ext": 1}, {"name": "b",
    "ipam-claim-reference": "claim"}]"""
    assert parse(text, pod_namespace="ns") == (
        Selected(NetworkRef(namespace="x", name="a"), "dp0", default_route=True),
        Selected(NetworkRef(namespace="ns", name="b")),
    )


def test_empty_and_absent_annotations_select_nothing() -> None:
    assert parse("  ", pod_namespace="ns") == ()
    assert parse("[]", pod_namespace="ns") == ()
    assert pod_selection({}, pod_namespace="ns") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a/b/c", "networks[0]: expected name, namespace/name"),
        ("Caps", "networks[0]: network name must be a DNS-1123 label, got 'Caps'"),
        ("Bad_ns/a", "networks[0]: namespace must be a DNS-1123 label"),
        ("a@", "networks[0]: interface must be a valid Linux interface name: ''"),
        ("a@" + "x" * 16, "interface must be a valid Linux interface name"),
        ("a@has space", "interface must be a valid Linux interface name"),
        ("a,", "networks[1]: network name must be a DNS-1123 label, got ''"),
        ("[", "networks: invalid JSON"),
        ('{"name": "a"}', "the JSON form must be a list of objects"),
        ('["a"]', "networks[0]: must be an object"),
        ("[{}]", 'networks[0]: "name" must be a DNS-1123 label, got None'),
        ('[{"name": "a", "namespace": 5}]', '"namespace" must be a DNS-1123 label'),
        ('[{"name": "a", "interface": "a:b"}]', "interface must be a valid Linux"),
        ('[{"name": "a", "ips": "10.0.0.1"}]', '"ips" must be a list of IP addresses'),
        ('[{"name": "a", "ips": [5]}]', '"ips" has an invalid IP address 5'),
        ('[{"name": "a", "default-route": ["10.0.0.0/8"]}]', '"default-route" has an invalid'),
        ('[{"name": "a", "mac": "02:00:00:00:00"}]', '"mac" must look like'),
        ('[{"name": "a", "cni-args": []}]', '"cni-args" must be an object'),
        ('[{"name": "a", "bandwidth": 1}]', '"bandwidth" must be an object'),
        ('[{"name": "a", "portMappings": {}}]', '"portMappings" must be a list of objects'),
        ('[{"name": "a", "infiniband-guid": ""}]', '"infiniband-guid" must be a non-empty'),
        ('[{"name": "a", "ipam-claim-reference": 1}]', '"ipam-claim-reference" must be a non'),
        (
            '[{"name": "a", "ipam-claim-reference": "c", "ips": ["10.0.0.1"]}]',
            'cannot be combined with "ips"',
        ),
        ('[{"name": "a", "colour": 1}]', 'unknown key "colour" (keys without a dot are reserved)'),
        ("a@x,b@x", "networks[0] and networks[1] both use interface x"),
        (
            '[{"name": "a", "default-route": ["10.0.0.1"]}, {"name": "b", "default-route": '
            '["fd00::1"]}]',
            'at most one element may carry "default-route"',
        ),
    ],
)
def test_rule_violations(text: str, message: str) -> None:
    with pytest.raises(SelectionError) as caught:
        parse(text, pod_namespace="ns")
    assert message in str(caught.value)


def test_the_same_network_twice_is_two_selections() -> None:
    assert len(parse("a,a", pod_namespace="ns")) == 2


def test_empty_default_route_list_does_not_count() -> None:
    text = '[{"name": "a", "default-route": []}, {"name": "b", "default-route": ["10.0.0.1"]}]'
    assert [s.default_route for s in parse(text, pod_namespace="ns")] == [False, True]
