"""SR-IOV sysfs VF/PF/index lookup over a fake sysfs tree built in tmp_path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jaring.cni.errors import CniError
from jaring.delegates.sriov_sysfs import lookup_vf

PF = "0000:3b:00.0"
VF0 = "0000:3b:02.0"
VF1 = "0000:3b:02.1"


def _tree(root: Path) -> Path:
    devices = root / "devices" / "pci0000:3a"
    pci_links = root / "bus" / "pci" / "devices"
    pci_links.mkdir(parents=True)
    drivers = root / "bus" / "pci" / "drivers"
    for name in ("iavf", "vfio-pci"):
        (drivers / name).mkdir(parents=True)
    for addr in (PF, VF0, VF1):
        (devices / addr).mkdir(parents=True)
        (pci_links / addr).symlink_to(devices / addr)
    (devices / PF / "net" / "ens1f0").mkdir(parents=True)
    (devices / VF0 / "net" / "ens1f0v0").mkdir(parents=True)
    (devices / VF0 / "driver").symlink_to(drivers / "iavf")
    (devices / VF1 / "driver").symlink_to(drivers / "vfio-pci")
    for i, vf in enumerate((VF0, VF1)):
        (devices / vf / "physfn").symlink_to(devices / PF)
        (devices / PF / f"virtfn{i}").symlink_to(devices / vf)
    return root


def test_kernel_bound_vf_resolves_netdev_pf_and_index(tmp_path: Path) -> None:
    info = lookup_vf(VF0, _tree(tmp_path))
    assert (info.netdev, info.pf_netdev, info.pf_pci, info.vf_index, info.driver) == (
        "ens1f0v0",
        "ens1f0",
        PF,
        0,
        "iavf",
    )


def test_userspace_driver_vf_has_no_netdev_but_keeps_index(tmp_path: Path) -> None:
    info = lookup_vf(VF1, _tree(tmp_path))
    assert (info.netdev, info.vf_index, info.driver) == (None, 1, "vfio-pci")


def test_missing_device_error_names_pci_address(tmp_path: Path) -> None:
    with pytest.raises(CniError, match=re.escape("0000:99:00.0")):
        lookup_vf("0000:99:00.0", _tree(tmp_path))


def test_pf_itself_is_rejected_as_not_a_vf(tmp_path: Path) -> None:
    with pytest.raises(CniError, match=re.escape(f"{PF} is not an SR-IOV VF")):
        lookup_vf(PF, _tree(tmp_path))
