"""macvlan: jaring leaves the reference macvlan plugin's state and result, config by config.

The master is a veth end (this kernel has no dummy); every config runs at
every CNI version, in-process, and a few through the jaring-macvlan executable.
"""

from __future__ import annotations

from typing import Any

import pytest

from .harness import VERSIONS, Case, Runner, Side, compare

pytestmark = pytest.mark.root

V4 = {
    "type": "host-local",
    "dataDir": "@DATADIR@",
    "ranges": [[{"subnet": "10.71.0.0/24", "gateway": "10.71.0.254"}]],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.72.0.0/16", "gw": "10.71.0.1"}],
}
DUAL = {
    "type": "host-local",
    "dataDir": "@DATADIR@",
    "ranges": [[{"subnet": "10.73.0.0/24"}], [{"subnet": "fd73::/64"}]],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
}
STATIC = {"type": "static", "addresses": [{"address": "10.74.0.9/24", "gateway": "10.74.0.1"}]}

CONFIGS: dict[str, dict[str, Any]] = {
    "l2-only": {"type": "macvlan", "master": "@MASTER@"},
    "v4-routes": {"type": "macvlan", "master": "@MASTER@", "ipam": V4},
    "dual-stack": {"type": "macvlan", "master": "@MASTER@", "ipam": DUAL},
    "mode-private-mtu": {
        "type": "macvlan",
        "master": "@MASTER@",
        "mode": "private",
        "mtu": 1300,
        "ipam": V4,
    },
    "mode-vepa": {"type": "macvlan", "master": "@MASTER@", "mode": "vepa", "ipam": V4},
    "mode-passthru": {"type": "macvlan", "master": "@MASTER@", "mode": "passthru"},
    "static-ipam": {"type": "macvlan", "master": "@MASTER@", "ipam": STATIC},
    "runtime-mac": {
        "type": "macvlan",
        "master": "@MASTER@",
        "runtimeConfig": {"mac": "0e:00:00:00:00:71"},
        "ipam": V4,
    },
    "mtu-above-master-is-refused": {"type": "macvlan", "master": "@MASTER@", "mtu": 9000},
    "unknown-mode-is-refused": {"type": "macvlan", "master": "@MASTER@", "mode": "bogus"},
    "missing-master-is-refused": {"type": "macvlan", "master": "jdnosuch0", "ipam": V4},
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_macvlan_in_process_matches_reference(
    name: str, version: str, sides: tuple[Side, Side]
) -> None:
    compare(Case("macvlan", CONFIGS[name], version, "inproc", ifname="net1"), *sides)


@pytest.mark.parametrize("version", ["0.3.0", "0.4.0", "1.1.0"])
@pytest.mark.parametrize("name", ["v4-routes", "l2-only"])
def test_macvlan_executable_matches_reference(
    name: str, version: str, sides: tuple[Side, Side]
) -> None:
    compare(Case("macvlan", CONFIGS[name], version, "bin", ifname="net1"), *sides)


def test_macvlan_keeps_ipam_dns_unlike_reference(sides: tuple[Side, Side]) -> None:
    """Reference 1.1.1 overwrites the result's DNS with the config's, even when empty,
    dropping what IPAM returned (fixed upstream later); jaring keeps IPAM's unless the
    config has its own."""
    ref, ours = sides
    resolv = ref.tmp / "resolv.conf"
    resolv.write_text("nameserver 10.71.0.53\nsearch pods.local\n")
    ipam = {**V4, "resolvConf": str(resolv)}
    conf = {"type": "macvlan", "master": "@MASTER@", "ipam": ipam}
    ref_out = Runner("ref", "macvlan")("ADD", ref, ref.render(conf, "1.0.0"), ifname="net1")
    our_out = Runner("inproc", "macvlan")("ADD", ours, ours.render(conf, "1.0.0"), ifname="net1")
    assert ref_out.doc is not None and our_out.doc is not None
    assert ref_out.doc["dns"] == {}
    assert our_out.doc["dns"] == {"nameservers": ["10.71.0.53"], "search": ["pods.local"]}
    for side, how in ((ref, "ref"), (ours, "inproc")):
        Runner(how, "macvlan")("DEL", side, side.render(conf, "1.0.0"), ifname="net1")
