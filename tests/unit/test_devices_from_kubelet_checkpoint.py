"""NADs naming a device-plugin resource get the pod's allocated device.

Like Multus: the kubelet checkpoint's device IDs for the pod, per resource,
one per attachment in order, as `deviceID` in the delegate config (and as
runtimeConfig `deviceID` where declared); a missing device is a clear error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.errors import CniError
from jaring.cni.ids import IfName, NadName, Namespace, PodName, PodUID
from jaring.metaplugin import devices, plan
from jaring.metaplugin.config import parse_config
from jaring.metaplugin.sources import NadInfo, PodInfo

RESOURCE = "intel.com/sriov_netdevice"


def checkpoint(ids: Any, uid: str = "uid-1") -> bytes:
    entry = {"PodUID": uid, "ContainerName": "c", "ResourceName": RESOURCE, "DeviceIDs": ids}
    other = {
        "PodUID": "other",
        "ContainerName": "c",
        "ResourceName": RESOURCE,
        "DeviceIDs": ["0000:09:00.1"],
    }
    return json.dumps({"Data": {"PodDeviceEntries": [other, entry]}, "Checksum": 1}).encode()


@pytest.mark.parametrize(
    "ids",
    [["0000:03:02.0", "0000:03:02.1"], {"0": ["0000:03:02.0"], "1": ["0000:03:02.1"]}],
    ids=["list-form", "numa-map-form"],
)
def test_checkpoint_gives_the_pods_devices_in_order(ids: Any) -> None:
    assert devices.parse_checkpoint(checkpoint(ids), pod_uid="uid-1") == {
        RESOURCE: ("0000:03:02.0", "0000:03:02.1")
    }


def test_an_unreadable_checkpoint_is_reported_not_raised(tmp_path: Path) -> None:
    missing = devices.load_pod_devices(str(tmp_path / "nope"), pod_uid="uid-1")
    assert missing.by_resource == {} and "nope" in missing.problem
    (tmp_path / "bad").write_text("{")
    bad = devices.load_pod_devices(str(tmp_path / "bad"), pod_uid="uid-1")
    assert "unreadable" in bad.problem


def _plan(nad_config: dict[str, Any], found: devices.PodDevices, annotation: str) -> Any:
    cfg = parse_config(
        {
            "cniVersion": "1.0.0",
            "name": "jaring",
            "type": "jaring",
            "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "bridge"}],
        }
    )
    nad = NadInfo(
        namespace=Namespace("default"),
        name=NadName("vf"),
        config=json.dumps(nad_config),
        annotations={devices.RESOURCE_ANNOTATION: RESOURCE},
    )
    pod = PodInfo(
        namespace=Namespace("default"),
        name=PodName("p"),
        uid=PodUID("uid-1"),
        annotations={"k8s.v1.cni.cncf.io/networks": annotation},
    )
    return plan.build_plan(
        cfg,
        pod=pod,
        cluster_ifname=IfName("eth0"),
        runtime_config=None,
        lookup=lambda namespace, name: nad if name == "vf" else None,
        container_id="c1",
        pod_devices=lambda: found,
    )


SRIOV = {"cniVersion": "1.0.0", "name": "vf", "type": "sriov", "vlan": 100}
HOSTDEV = {
    "cniVersion": "1.0.0",
    "name": "vf",
    "type": "host-device",
    "capabilities": {"deviceID": True},
}


def test_each_attachment_takes_the_next_device_of_its_resource() -> None:
    found = devices.PodDevices({RESOURCE: ("0000:03:02.0", "0000:03:02.1")})
    steps = _plan(SRIOV, found, "vf,vf")
    assert [s.config.plugins[0]["deviceID"] for s in steps[1:]] == ["0000:03:02.0", "0000:03:02.1"]
    assert all(s.config.plugins[0]["vlan"] == 100 for s in steps[1:])
    assert "deviceID" not in steps[0].config.plugins[0]  # the cluster network has no resource


def test_a_plugin_declaring_the_capability_also_gets_runtime_config_device_id() -> None:
    steps = _plan(HOSTDEV, devices.PodDevices({RESOURCE: ("0000:03:02.0",)}), "vf")
    assert steps[1].runtime_config["deviceID"] == "0000:03:02.0"


def test_more_attachments_than_devices_fails_naming_the_resource() -> None:
    found = devices.PodDevices({RESOURCE: ("0000:03:02.0",)})
    with pytest.raises(CniError, match=RESOURCE) as info:
        _plan(SRIOV, found, "vf,vf")
    assert info.value.code == 7


def test_no_checkpoint_fails_with_the_reason() -> None:
    found = devices.PodDevices(problem="kubelet checkpoint /x: No such file or directory")
    with pytest.raises(CniError) as info:
        _plan(SRIOV, found, "vf")
    assert "/x" in info.value.details


def test_a_nad_with_its_own_device_id_is_left_alone() -> None:
    steps = _plan({**SRIOV, "deviceID": "0000:05:00.2"}, devices.PodDevices(), "vf")
    assert steps[1].config.plugins[0]["deviceID"] == "0000:05:00.2"
