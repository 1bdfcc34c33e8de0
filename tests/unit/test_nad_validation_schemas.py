"""NAD validation: `spec.config` shape (conf or conflist), names, the resourceName
annotation, and every known plugin type against its JSON Schema, with the path of the
bad field in the message; unknown types are checked for shape only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jaring.operator.validation import (
    SCHEMA_TYPES,
    Severity,
    errors,
    validate_nad,
    warnings,
)


def check(
    config: object,
    *,
    name: str = "net",
    annotations: dict[str, str] | None = None,
    namespace: str = "default",
) -> list[str]:
    text = config if isinstance(config, str) or config is None else json.dumps(config)
    found = validate_nad(
        name=name, namespace=namespace, spec={"config": text}, annotations=annotations or {}
    )
    return [str(f) for f in errors(found)]


def conf(plugin_type: str, **keys: Any) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "type": plugin_type, **keys}


GOOD = [
    conf(
        "bridge",
        bridge="br0",
        isGateway=True,
        ipMasq=True,
        mtu=1500,
        vlan=10,
        hairpinMode=False,
        vlanTrunk=[{"minID": 100, "maxID": 200}],
        ipam={"type": "host-local", "subnet": "10.10.0.0/16"},
    ),
    conf("macvlan", master="eth0", mode="vepa", mtu=9000, linkInContainer=False),
    conf(
        "ipvlan",
        master="eth0",
        mode="l3s",
        ipam={
            "type": "static",
            "addresses": [{"address": "10.1.1.5/24", "gateway": "10.1.1.1"}],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {"nameservers": ["10.1.1.1"]},
        },
    ),
    conf("host-device", device="ens5"),
    conf("host-device", pciBusID="0000:3b:00.1"),
    conf("host-device", hwaddr="aa:bb:cc:dd:ee:ff"),
    conf(
        "sriov",
        deviceID="0000:af:06.0",
        vlan=1000,
        vlanQoS=3,
        spoofchk="on",
        trust="off",
        link_state="enable",
        min_tx_rate=0,
        max_tx_rate=100,
        mac="02:00:00:00:00:01",
    ),
    conf(
        "macvlan",
        master="eth0",
        ipam={
            "type": "host-local",
            "ranges": [
                [
                    {
                        "subnet": "10.0.0.0/24",
                        "rangeStart": "10.0.0.10",
                        "rangeEnd": "10.0.0.20",
                        "gateway": "10.0.0.1",
                    }
                ],
                [{"subnet": "fd00::/64"}],
            ],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}],
            "dataDir": "/var/lib/x",
        },
    ),
    conf("tuning", sysctl={"net.core.somaxconn": "500"}),  # unknown type: shape only
    {
        "cniVersion": "1.0.0",
        "name": "net",
        "plugins": [conf("bridge"), conf("portmap", capabilities={"portMappings": True})],
    },
]


@pytest.mark.parametrize("config", GOOD, ids=lambda c: c.get("type", "conflist"))
def test_reference_plugin_configs_are_valid(config: dict[str, Any]) -> None:
    assert check(config) == []


def test_there_is_a_schema_for_every_promised_type() -> None:
    assert set(SCHEMA_TYPES) == {
        "bridge",
        "macvlan",
        "ipvlan",
        "host-device",
        "sriov",
        "host-local",
        "static",
    }


BAD = [
    (conf("bridge", mtu="1500"), "spec.config.mtu: bridge: '1500' is not of type 'integer'"),
    (conf("bridge", vlan=4095), "spec.config.vlan: bridge: 4095 is greater than the maximum"),
    (conf("bridge", bridge="a-very-long-bridge-name"), "spec.config.bridge: bridge:"),
    (conf("macvlan", mode="bridged"), "spec.config.mode: macvlan: 'bridged' is not one of"),
    (conf("ipvlan", mode="l2e"), "spec.config.mode: ipvlan: 'l2e' is not one of"),
    (conf("ipvlan", master=7), "spec.config.master: ipvlan: 7 is not of type 'string'"),
    (conf("host-device", pciBusID="3b:00"), "spec.config.pciBusID: host-device:"),
    (conf("host-device", hwaddr="zz:bb:cc:dd:ee:ff"), "spec.config.hwaddr: host-device:"),
    (conf("sriov", spoofchk=True), "spec.config.spoofchk: sriov: True is not one of"),
    (conf("sriov", vlanQoS=8), "spec.config.vlanQoS: sriov: 8 is greater than"),
    (conf("sriov", link_state="up"), "spec.config.link_state: sriov:"),
    (
        conf("macvlan", ipam={"type": "host-local"}),
        "spec.config.ipam: host-local: {'type': 'host-local'} is not valid under any",
    ),
    (
        conf("macvlan", ipam={"type": "host-local", "ranges": [[{"subnet": "10.0.0.0"}]]}),
        "spec.config.ipam.ranges[0][0].subnet: host-local: '10.0.0.0' is not a 'cidr'",
    ),
    (
        conf(
            "macvlan", ipam={"type": "host-local", "subnet": "10.0.0.0/8", "gateway": "10.0.0.256"}
        ),
        "spec.config.ipam.gateway: host-local: '10.0.0.256' is not a 'ip-address'",
    ),
    (
        conf("macvlan", ipam={"type": "static", "addresses": [{"gateway": "10.0.0.1"}]}),
        "spec.config.ipam.addresses[0]: static: 'address' is a required property",
    ),
    (
        conf("macvlan", ipam={"type": "static", "routes": [{"dst": "default"}]}),
        "spec.config.ipam.routes[0].dst: static: 'default' is not a 'cidr'",
    ),
    (conf("macvlan", ipam={"subnet": "10.0.0.0/8"}), "spec.config.ipam.type: IPAM needs"),
    (
        {
            "cniVersion": "1.0.0",
            "name": "net",
            "plugins": [conf("portmap"), conf("bridge", mtu=-1)],
        },
        "spec.config.plugins[1].mtu: bridge: -1 is less than the minimum of 68",
    ),
]


@pytest.mark.parametrize(("config", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_schema_violations_name_the_field(config: dict[str, Any], message: str) -> None:
    found = check(config)
    assert len(found) == 1, found
    assert found[0].startswith(message)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{nope", "spec.config: not valid JSON: Expecting property name"),
        ("[]", "spec.config: must be a JSON object"),
        ('"text"', "spec.config: must be a JSON object"),
        (json.dumps({"type": "bridge"}), "spec.config: network 'net': 'cniVersion' is required"),
        (json.dumps(conf("bridge", cniVersion="0.2.0")), "spec.config: incompatible CNI versions"),
        (json.dumps({"cniVersion": "1.0.0"}), "spec.config: network 'net': 'type' is required"),
        (json.dumps(conf("../../bin/sh")), "spec.config: network 'net': 'type' must be a plain"),
        (
            json.dumps({"cniVersion": "1.0.0", "plugins": []}),
            "spec.config: network 'net': 'plugins' must be a non-empty list",
        ),
        (
            json.dumps({"cniVersion": "1.0.0", "plugins": ["bridge"]}),
            "spec.config: network 'net': plugins[0] must be an object",
        ),
    ],
)
def test_config_shape_errors(config: str, message: str) -> None:
    found = check(config)
    assert len(found) == 1, found
    assert found[0].startswith(message)


def test_config_that_is_not_a_string() -> None:
    found = validate_nad(name="n", namespace="d", spec={"config": {"type": "x"}}, annotations={})
    assert [str(f) for f in found] == ["spec.config: must be a string, got dict"]
    found = validate_nad(name="n", namespace="d", spec=["x"], annotations={})
    assert [str(f) for f in found] == ["spec: must be an object"]


@pytest.mark.parametrize("spec", [None, {}, {"config": ""}])
def test_absent_or_empty_config_is_valid(spec: object) -> None:
    assert validate_nad(name="n", namespace="d", spec=spec, annotations={}) == ()


@pytest.mark.parametrize("name", ["UPPER", "under_score", "-lead", "trail-", "a" * 64, "dot.ted"])
def test_nad_names_must_be_dns1123_labels(name: str) -> None:
    found = check(conf("bridge"), name=name)
    assert found[0].startswith(f"metadata.name: {name!r} is not a DNS-1123 label")


def test_namespace_must_be_a_label_too() -> None:
    assert check(conf("bridge"), namespace="Bad")[0].startswith("metadata.namespace:")


def test_cni_name_that_differs_is_a_warning_and_a_missing_one_is_fine() -> None:
    found = validate_nad(
        name="net",
        namespace="d",
        spec={"config": json.dumps(conf("bridge", name="other"))},
        annotations={},
    )
    assert errors(found) == ()
    assert [str(w) for w in warnings(found)] == [
        "spec.config.name: CNI name 'other' differs from the NAD name 'net'"
    ]
    assert warnings(found)[0].severity is Severity.WARNING
    assert (
        validate_nad(
            name="net", namespace="d", spec={"config": json.dumps(conf("bridge"))}, annotations={}
        )
        == ()
    )


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("intel_sriov", "must be <domain>/<name>"),
        ("Intel.com/sriov", "is not a DNS-1123 subdomain"),
        ("kubernetes.io/sriov", "kubernetes.io domain is reserved"),
        ("node.kubernetes.io/x", "kubernetes.io domain is reserved"),
        ("intel.com/-bad", "must be 1-63 characters"),
        ("intel.com/" + "a" * 64, "must be 1-63 characters"),
        ("intel.com/", "must be 1-63 characters"),
    ],
)
def test_resource_name_annotation_form(value: str, fragment: str) -> None:
    found = check(conf("sriov"), annotations={"k8s.v1.cni.cncf.io/resourceName": value})
    assert len(found) == 1
    assert found[0].startswith("metadata.annotations[k8s.v1.cni.cncf.io/resourceName]: ")
    assert fragment in found[0]


@pytest.mark.parametrize(
    "value", ["intel.com/intel_sriov_netdevice", "openshift.io/mlnx_vfs", "example.com/a.b-c"]
)
def test_good_resource_names(value: str) -> None:
    assert check(conf("sriov"), annotations={"k8s.v1.cni.cncf.io/resourceName": value}) == []


def test_errors_come_before_warnings_and_all_are_reported() -> None:
    found = validate_nad(
        name="Bad",
        namespace="d",
        spec={"config": json.dumps(conf("macvlan", name="x", mode="?", mtu="1"))},
        annotations={},
    )
    severities = [f.severity for f in found]
    assert severities == sorted(severities, key=lambda s: s is Severity.WARNING)
    assert [f.field for f in errors(found)] == [
        "metadata.name",
        "spec.config.mode",
        "spec.config.mtu",
    ]
