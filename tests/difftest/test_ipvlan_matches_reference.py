"""ipvlan (and macvlan over a dummy master): jaring against the reference, kernel lab only.

This machine's kernel has neither ipvlan nor dummy; the tests detect that
and skip, and run for real in the kernel lab VM (`make`-free:
`../shared/kernel-lab/run-in-vm.sh .venv/bin/python -m pytest -m kernel tests/difftest`).
"""

from __future__ import annotations

from typing import Any

import pytest

from .harness import VERSIONS, Case, Side, compare, kernel_has

pytestmark = [pytest.mark.root, pytest.mark.kernel]

V4 = {
    "type": "host-local",
    "dataDir": "@DATADIR@",
    "ranges": [[{"subnet": "10.91.0.0/24"}]],
    "routes": [{"dst": "0.0.0.0/0"}],
}
DUAL = {
    "type": "host-local",
    "dataDir": "@DATADIR@",
    "ranges": [[{"subnet": "10.92.0.0/24"}], [{"subnet": "fd92::/64"}]],
}

IPVLAN: dict[str, dict[str, Any]] = {
    "l2-v4": {"type": "ipvlan", "master": "@MASTER@", "ipam": V4},
    "l3-dual": {"type": "ipvlan", "master": "@MASTER@", "mode": "l3", "ipam": DUAL},
    "l3s-mtu": {"type": "ipvlan", "master": "@MASTER@", "mode": "l3s", "mtu": 1400, "ipam": V4},
    "unknown-mode-is-refused": {"type": "ipvlan", "master": "@MASTER@", "mode": "l4", "ipam": V4},
}
MACVLAN_ON_DUMMY: dict[str, dict[str, Any]] = {
    "bridge-v4": {"type": "macvlan", "master": "@MASTER@", "ipam": V4},
    "private-dual": {"type": "macvlan", "master": "@MASTER@", "mode": "private", "ipam": DUAL},
}


@pytest.fixture
def master_kind() -> str:
    if not kernel_has("dummy"):
        pytest.skip("kernel has no dummy links (run in the kernel lab)")
    return "dummy"


@pytest.fixture
def ipvlan_kernel() -> None:
    if not kernel_has("ipvlan"):
        pytest.skip("kernel has no ipvlan (run in the kernel lab)")


@pytest.mark.usefixtures("ipvlan_kernel")
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(IPVLAN))
def test_ipvlan_in_process_matches_reference(
    name: str, version: str, sides: tuple[Side, Side]
) -> None:
    compare(Case("ipvlan", IPVLAN[name], version, "inproc", ifname="net1"), *sides)


@pytest.mark.usefixtures("ipvlan_kernel")
@pytest.mark.parametrize("version", ["0.4.0", "1.1.0"])
def test_ipvlan_executable_matches_reference(version: str, sides: tuple[Side, Side]) -> None:
    compare(Case("ipvlan", IPVLAN["l2-v4"], version, "bin", ifname="net1"), *sides)


@pytest.mark.parametrize("version", ["0.3.1", "1.0.0"])
@pytest.mark.parametrize("name", sorted(MACVLAN_ON_DUMMY))
def test_macvlan_over_dummy_matches_reference(
    name: str, version: str, sides: tuple[Side, Side]
) -> None:
    compare(Case("macvlan", MACVLAN_ON_DUMMY[name], version, "inproc", ifname="net1"), *sides)
