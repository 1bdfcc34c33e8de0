"""Kernel-lab fixtures: skip cleanly where the kernel lacks dummy, ipvlan, 8021q, netdevsim.

Every test here is marked `kernel` and runs for real only in the kernel lab VM
(`../shared/kernel-lab/run-in-vm.sh`); on this machine the first probe (a
`dummy` link) fails and the whole folder skips with that reason. `sides`
gives the differential harness two fresh sides whose master is a dummy link.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..difftest.harness import Side
from .kernelprobe import can_make, drop_side, has_netdevsim, make_dummy_side


@pytest.fixture(scope="session")
def kernel_lab() -> None:
    """Skip unless root on a kernel that can make a dummy link (the kernel lab)."""
    if os.geteuid() != 0:
        pytest.skip("kernel-lab tests need root")
    if not can_make("dummy"):
        pytest.skip(
            "kernel has no dummy links: run in the kernel lab "
            "(../shared/kernel-lab/run-in-vm.sh '.venv/bin/python -m pytest tests/kernel')"
        )


@pytest.fixture(autouse=True)
def _needs_kernel_lab(kernel_lab: None) -> None:
    """Every test in this folder needs the kernel lab."""


@pytest.fixture(scope="session")
def ipvlan_kernel(kernel_lab: None) -> None:
    if not can_make("ipvlan"):
        pytest.skip("kernel has no ipvlan")


@pytest.fixture(scope="session")
def vlan_kernel(kernel_lab: None) -> None:
    if not can_make("vlan"):
        pytest.skip("kernel has no 8021q (vlan links)")


@pytest.fixture(scope="session")
def netdevsim_kernel(kernel_lab: None) -> None:
    if not has_netdevsim():
        pytest.skip("kernel has no netdevsim (/sys/bus/netdevsim/new_device)")


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Side, Side]]:
    """Reference side and jaring side, each with a netns and an up dummy master."""
    ref, ours = Side(tmp_path), Side(tmp_path)
    try:
        make_dummy_side(ref)
        make_dummy_side(ours)
        yield ref, ours
    finally:
        drop_side(ref)
        drop_side(ours)
