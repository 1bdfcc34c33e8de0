"""runtimeConfig: NPWG capability check, runtime config only to the cluster network."""

from __future__ import annotations

import pytest
from jaring.cni.errors import CniError
from jaring.cni.ids import NadName, Namespace
from jaring.cni.selection import Attachment, NetworkRef
from jaring.metaplugin.runtimeconf import (
    attachment_runtime_config,
    cluster_runtime_config,
    merge_cni_args,
)

NET = NetworkRef(namespace=Namespace("ns"), name=NadName("net-a"))


def test_requested_keys_pass_when_declared() -> None:
    a = Attachment(
        network=NET,
        ips=("10.0.0.5/24",),
        mac="02:00:00:00:00:01",
        port_mappings=({"hostPort": 1},),
        bandwidth={"ingressRate": 1},
        infiniband_guid="g",
    )
    caps = frozenset({"ips", "mac", "portMappings", "bandwidth", "infinibandGUID"})
    assert attachment_runtime_config(a, capabilities=caps) == {
        "ips": ["10.0.0.5/24"],
        "mac": "02:00:00:00:00:01",
        "portMappings": [{"hostPort": 1}],
        "bandwidth": {"ingressRate": 1},
        "infinibandGUID": "g",
    }


def test_missing_capability_fails_naming_network_and_capability() -> None:
    a = Attachment(network=NET, mac="02:00:00:00:00:01")
    with pytest.raises(CniError) as info:
        attachment_runtime_config(a, capabilities=frozenset({"ips"}))
    assert info.value.code == 7
    assert "ns/net-a" in str(info.value) and "'mac'" in str(info.value)


def test_nothing_requested_needs_no_capability() -> None:
    assert attachment_runtime_config(Attachment(network=NET), capabilities=frozenset()) == {}


def test_device_info_only_when_declared() -> None:
    a = Attachment(network=NET)
    caps = frozenset({"CNIDeviceInfoFile"})
    assert attachment_runtime_config(a, capabilities=caps, device_info_file="/f") == {
        "CNIDeviceInfoFile": "/f"
    }
    assert attachment_runtime_config(a, capabilities=frozenset(), device_info_file="/f") == {}


def test_runtime_config_filtered_to_cluster_capabilities() -> None:
    rc = {"portMappings": [{"hostPort": 1}], "bandwidth": {"x": 1}}
    assert cluster_runtime_config(rc, capabilities=frozenset({"portMappings"})) == {
        "portMappings": [{"hostPort": 1}]
    }
    assert cluster_runtime_config(None, capabilities=frozenset({"portMappings"})) == {}


def test_annotation_cni_args_win_over_nad_args() -> None:
    assert merge_cni_args({"a": 1, "b": 1}, {"b": 2}) == {"a": 1, "b": 2}
    assert merge_cni_args(None, None) == {}
