"""SR-IOV delegate over a fake sysfs tree and a recording PF: which VF calls are made.

DPDK VFs (no netdev) need no namespaces, so every path here runs without
root: config validation, the PF calls ADD makes, the state file, and DEL
restoring exactly the settings ADD changed (sriov-cni semantics).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from jaring.cni.errors import CniError
from jaring.cni.plugin import Request
from jaring.delegates import rtnl
from jaring.delegates.sriov import SriovPlugin
from jaring.delegates.vfcontrol import (
    IFLA_VFINFO_LIST,
    VLAN_PROTOS,
    VfSettings,
    decode_vfs,
    encode_vf,
)

PF = "0000:3b:00.0"
VF = "0000:3b:02.1"
ORIGINAL = VfSettings(
    mac="00:00:00:00:00:00",
    vlan=0,
    qos=0,
    proto="802.1q",
    spoofchk=True,
    trust=False,
    link_state="auto",
    min_tx_rate=0,
    max_tx_rate=0,
)


def fake_sysfs(root: Path, netdev: str | None = None) -> Path:
    """PF ens1f0 with VF 1 at VF: on vfio-pci (DPDK), or on iavf with `netdev`."""
    devices = root / "devices" / "pci0000:3a"
    pci = root / "bus" / "pci" / "devices"
    pci.mkdir(parents=True)
    driver = "vfio-pci" if netdev is None else "iavf"
    (root / "bus" / "pci" / "drivers" / driver).mkdir(parents=True)
    for addr in (PF, VF):
        (devices / addr).mkdir(parents=True)
        (pci / addr).symlink_to(devices / addr)
    (devices / PF / "net" / "ens1f0").mkdir(parents=True)
    (devices / VF / "driver").symlink_to(root / "bus" / "pci" / "drivers" / driver)
    if netdev is not None:
        (devices / VF / "net" / netdev).mkdir(parents=True)
    (devices / VF / "physfn").symlink_to(devices / PF)
    (devices / PF / "virtfn1").symlink_to(devices / VF)
    return root


@dataclass
class RecordingPf:
    """A PF whose VF 1 starts as ORIGINAL; records every apply."""

    vfs: dict[int, VfSettings] = field(default_factory=lambda: {1: ORIGINAL})
    calls: list[tuple[str, int, VfSettings]] = field(default_factory=list)

    def read(self, *, pf: str, vf: int) -> VfSettings:
        return self.vfs[vf]

    def apply(self, *, pf: str, vf: int, settings: VfSettings) -> None:
        self.calls.append((pf, vf, settings))
        current = self.vfs[vf]
        self.vfs[vf] = replace(current, **settings.to_json())


def request(command: str, version: str = "1.1.0", **conf: object) -> Request:
    doc = {"cniVersion": version, "name": "sriovnet", "type": "sriov", "deviceID": VF, **conf}
    return Request.build(
        command,
        json.dumps(doc).encode(),
        container_id="c1",
        netns="/run/netns/nonexistent-dpdk",
        ifname="net1",
    )


@pytest.fixture
def pf() -> RecordingPf:
    return RecordingPf()


@pytest.fixture
def plugin(tmp_path: Path, pf: RecordingPf) -> SriovPlugin:
    return SriovPlugin(sysfs=fake_sysfs(tmp_path / "sys"), control=pf, state_dir=tmp_path / "state")


STATIC = {"type": "static", "addresses": [{"address": "10.9.0.5/24"}]}
FULL = {
    "vlan": 100,
    "vlanQoS": 3,
    "vlanProto": "802.1ad",
    "mac": "0e:00:00:00:00:05",
    "spoofchk": "off",
    "trust": "on",
    "link_state": "enable",
    "min_tx_rate": 100,
    "max_tx_rate": 1000,
}


def test_dpdk_vf_is_configured_through_its_pf_and_reported_unmoved(
    plugin: SriovPlugin, pf: RecordingPf
) -> None:
    result = plugin.add(request("ADD", ipam=STATIC, **FULL))
    assert pf.calls == [
        (
            "ens1f0",
            1,
            VfSettings(
                mac="0e:00:00:00:00:05",
                vlan=100,
                qos=3,
                proto="802.1ad",
                spoofchk=False,
                trust=True,
                link_state="enable",
                min_tx_rate=100,
                max_tx_rate=1000,
            ),
        )
    ]
    doc = result.to_json("1.1.0")
    assert doc["interfaces"] == [
        {
            "name": "net1",
            "mac": "0e:00:00:00:00:05",
            "sandbox": "/run/netns/nonexistent-dpdk",
            "pciID": VF,
        }
    ]
    assert doc["ips"] == [{"interface": 0, "address": "10.9.0.5/24"}]


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0"])
def test_result_drops_pci_id_before_1_1_0(plugin: SriovPlugin, version: str) -> None:
    doc = plugin.add(request("ADD", version, vlan=5)).to_json(version)
    assert "pciID" not in doc["interfaces"][0]


def test_del_restores_only_the_settings_add_changed(plugin: SriovPlugin, pf: RecordingPf) -> None:
    pf.vfs[1] = replace(ORIGINAL, trust=True, max_tx_rate=77)
    plugin.add(request("ADD", vlan=42, spoofchk="off"))
    plugin.delete(request("DEL", vlan=42, spoofchk="off"))
    restore = pf.calls[-1][2]
    assert restore == VfSettings(vlan=0, qos=0, proto="802.1q", spoofchk=True)
    assert pf.vfs[1] == replace(ORIGINAL, trust=True, max_tx_rate=77)


def test_second_del_makes_no_pf_calls_and_succeeds(plugin: SriovPlugin, pf: RecordingPf) -> None:
    plugin.add(request("ADD", vlan=42))
    plugin.delete(request("DEL", vlan=42))
    calls = len(pf.calls)
    plugin.delete(request("DEL", vlan=42))
    assert len(pf.calls) == calls


def test_del_without_any_add_succeeds(plugin: SriovPlugin, pf: RecordingPf) -> None:
    plugin.delete(request("DEL", vlan=42, ipam=STATIC))
    assert pf.calls == []


def test_state_file_is_written_before_the_vf_changes(
    tmp_path: Path, plugin: SriovPlugin, pf: RecordingPf
) -> None:
    seen: list[bool] = []
    original_apply = pf.apply

    def apply(*, pf: str, vf: int, settings: VfSettings) -> None:
        seen.append((tmp_path / "state" / "c1-net1.json").exists())
        original_apply(pf=pf, vf=vf, settings=settings)

    plugin.control = type("Spy", (), {"read": pf.read, "apply": staticmethod(apply)})()
    plugin.add(request("ADD", vlan=7))
    assert seen == [True]


def test_failed_ipam_restores_the_vf_and_forgets_the_state(
    tmp_path: Path, plugin: SriovPlugin, pf: RecordingPf
) -> None:
    bad_ipam = {"type": "static", "addresses": [{"address": "not-an-ip"}]}
    with pytest.raises(CniError):
        plugin.add(request("ADD", vlan=9, ipam=bad_ipam))
    assert pf.vfs[1] == ORIGINAL
    assert not (tmp_path / "state" / "c1-net1.json").exists()


def test_runtime_config_device_id_wins(tmp_path: Path, plugin: SriovPlugin) -> None:
    req = request("ADD", deviceID="0000:99:99.9", runtimeConfig={"deviceID": VF}, vlan=3)
    assert plugin.add(req).interfaces[0].pci_id == VF


def test_check_reports_vf_drift(plugin: SriovPlugin, pf: RecordingPf) -> None:
    result = plugin.add(request("ADD", vlan=11))
    check = request("CHECK", vlan=11, prevResult=result.to_json("1.1.0"))
    plugin.check(check)
    pf.vfs[1] = replace(pf.vfs[1], vlan=12)
    with pytest.raises(CniError, match="VF settings differ"):
        plugin.check(check)


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"vlanQoS": 2}, "non-zero value"),
        ({"vlanProto": "802.1q"}, "vlanQoS and vlanProto need vlan"),
        ({"vlan": 0, "vlanQoS": 2}, "non-zero value"),
        ({"vlan": 5000}, "0-4094"),
        ({"vlan": 5, "vlanQoS": 8}, "0-7"),
        ({"vlan": 5, "vlanProto": "802.1x"}, "802.1q or 802.1ad"),
        ({"vlan": 0, "vlanProto": "802.1ad"}, "other than 802.1q"),
        ({"link_state": "sideways"}, "auto, enable or disable"),
        ({"min_tx_rate": 10, "max_tx_rate": 5}, "greater than max_tx_rate"),
        ({"spoofchk": "maybe"}, '"on" or "off"'),
        ({"deviceID": ""}, "VF pci addr is required"),
        ({"deviceID": "0000:00:00.7"}, "not found"),
    ],
)
def test_bad_sriov_config_is_a_clear_error_and_touches_nothing(
    plugin: SriovPlugin, pf: RecordingPf, conf: dict[str, object], message: str
) -> None:
    with pytest.raises(CniError, match=message):
        plugin.add(request("ADD", **conf))
    assert pf.calls == []


def test_vf_encoding_round_trips_through_the_kernel_reply_decoder() -> None:
    settings = VfSettings(
        mac="0e:00:00:00:00:07",
        vlan=10,
        qos=1,
        proto="802.1ad",
        spoofchk=False,
        trust=True,
        link_state="disable",
        min_tx_rate=5,
        max_tx_rate=500,
    )
    # A reply carries the VF list inside an ifinfomsg; the request's IFLA_VF_INFO is
    # the same shape, so the decoder must read back exactly what the encoder wrote.
    body = rtnl.ifinfomsg() + rtnl.nested(IFLA_VFINFO_LIST, encode_vf(3, settings))
    assert decode_vfs(body) == {3: settings}


def test_802_1ad_vlan_info_is_the_kernels_16_byte_struct() -> None:
    info = encode_vf(0, VfSettings(vlan=10, qos=1, proto="802.1ad"))
    ((_, vlan_list),) = rtnl._attrs(info[4:])
    ((_, item),) = rtnl._attrs(vlan_list)
    assert len(item) == 16
    assert struct.unpack(">H", item[12:14]) == (VLAN_PROTOS["802.1ad"],)


def test_nothing_to_change_encodes_nothing() -> None:
    assert encode_vf(0, VfSettings()) == b""
