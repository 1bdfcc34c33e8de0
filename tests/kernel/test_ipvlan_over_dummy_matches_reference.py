"""ipvlan l2/l3/l3s over a dummy master: jaring leaves the reference ipvlan's state and result.

Each case runs ADD, CHECK, DEL and DEL again through the reference
`/usr/lib/cni/ipvlan` and through jaring (in-process `PLUGIN`, and the
`jaring-ipvlan` executable for a few), each side in a fresh netns with its own
dummy master, and compares the normalised pod/host state and the result JSON.
Spec versions are spread over the cases to keep the VM run short.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..difftest.harness import Case, Side
from .diffrun import compare

pytestmark = [pytest.mark.root, pytest.mark.kernel, pytest.mark.usefixtures("ipvlan_kernel")]

V4 = {
    "type": "host-local",
    "dataDir": "@DATADIR@",
    "ranges": [[{"subnet": "10.93.0.0/24", "gateway": "10.93.0.254"}]],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.94.0.0/16", "gw": "10.93.0.1"}],
}
V6 = {
    "type": "host-local",
    "dataDir": "@DATADIR@",
    "ranges": [[{"subnet": "fd93::/64"}]],
    "routes": [{"dst": "::/0"}],
}
DUAL = {
    "type": "host-local",
    "dataDir": "@DATADIR@",
    "ranges": [[{"subnet": "10.95.0.0/24"}], [{"subnet": "fd95::/64"}]],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
}
STATIC = {"type": "static", "addresses": [{"address": "10.96.0.9/24", "gateway": "10.96.0.1"}]}


def ipvlan(**extra: Any) -> dict[str, Any]:
    return {"type": "ipvlan", "master": "@MASTER@", **extra}


# (config, version): every mode, both families, every spec version at least once.
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "l2-default-mode-v4": (ipvlan(ipam=V4), "0.3.1"),
    "l2-v6": (ipvlan(mode="l2", ipam=V6), "1.0.0"),
    "l3-dual": (ipvlan(mode="l3", ipam=DUAL), "0.4.0"),
    "l3-v6": (ipvlan(mode="l3", ipam=V6), "1.1.0"),
    "l3s-static-v4-mtu": (ipvlan(mode="l3s", mtu=1400, ipam=STATIC), "0.3.0"),
    # The reference does not check the MTU against the master's: the kernel bounds it
    # by the master's max_mtu, and a dummy has none.
    "mtu-above-master-is-left-to-the-kernel": (ipvlan(mtu=9000, ipam=V4), "1.0.0"),
    "unknown-mode-is-refused": (ipvlan(mode="l4", ipam=V4), "0.4.0"),
    "without-ipam-is-refused": (ipvlan(mode="l2"), "1.0.0"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ipvlan_in_process_matches_reference(name: str, sides: tuple[Side, Side]) -> None:
    config, version = CASES[name]
    compare(Case("ipvlan", config, version, "inproc", ifname="net1"), *sides)


def test_ipvlan_executable_matches_reference(sides: tuple[Side, Side]) -> None:
    config, version = CASES["l3-dual"]
    compare(Case("ipvlan", config, version, "bin", ifname="net1"), *sides)
