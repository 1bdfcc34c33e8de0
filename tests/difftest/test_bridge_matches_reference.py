"""bridge: jaring leaves the reference bridge plugin's state and result, config by config.

Every config runs at every CNI version through the reference binary and
through jaring (in-process PLUGIN and the jaring-bridge executable), each
side in fresh namespaces with fresh host parts.
"""

from __future__ import annotations

from typing import Any

import pytest

from .harness import VERSIONS, Case, Side, compare

pytestmark = pytest.mark.root

V4 = {"type": "host-local", "dataDir": "@DATADIR@", "ranges": [[{"subnet": "10.61.0.0/24"}]]}
V6 = {"type": "host-local", "dataDir": "@DATADIR@", "ranges": [[{"subnet": "fd61::/64"}]]}
DUAL = {
    "type": "host-local",
    "dataDir": "@DATADIR@",
    "ranges": [[{"subnet": "10.62.0.0/24"}], [{"subnet": "fd62::/64"}]],
    "routes": [{"dst": "10.80.0.0/16"}, {"dst": "fd80::/48"}],
}

CONFIGS: dict[str, dict[str, Any]] = {
    "l2-only": {"type": "bridge", "bridge": "@BRIDGE@"},
    "v4-plain": {"type": "bridge", "bridge": "@BRIDGE@", "ipam": V4},
    "v4-gateway": {"type": "bridge", "bridge": "@BRIDGE@", "isGateway": True, "ipam": V4},
    "v4-default-gw-masq": {
        "type": "bridge",
        "bridge": "@BRIDGE@",
        "isDefaultGateway": True,
        "ipMasq": True,
        "ipam": V4,
        "dns": {"nameservers": ["10.61.0.53"], "search": ["svc.local"]},
    },
    "v6-default-gw": {"type": "bridge", "bridge": "@BRIDGE@", "isDefaultGateway": True, "ipam": V6},
    "dual-gateway-masq-routes": {
        "type": "bridge",
        "bridge": "@BRIDGE@",
        "isDefaultGateway": True,
        "ipMasq": True,
        "ipam": DUAL,
    },
    "mtu-hairpin": {
        "type": "bridge",
        "bridge": "@BRIDGE@",
        "mtu": 1400,
        "hairpinMode": True,
        "ipam": V4,
    },
    "promisc-gateway": {
        "type": "bridge",
        "bridge": "@BRIDGE@",
        "promiscMode": True,
        "isGateway": True,
        "ipam": V4,
    },
    "vlan": {"type": "bridge", "bridge": "@BRIDGE@", "vlan": 100, "ipam": V4},
    "vlan-gateway": {
        "type": "bridge",
        "bridge": "@BRIDGE@",
        "vlan": 200,
        "isGateway": True,
        "ipam": V4,
    },
    "macspoofchk": {"type": "bridge", "bridge": "@BRIDGE@", "macspoofchk": True, "ipam": V4},
    "hairpin-and-promisc-is-refused": {
        "type": "bridge",
        "bridge": "@BRIDGE@",
        "hairpinMode": True,
        "promiscMode": True,
        "ipam": V4,
    },
    "ipam-without-ips-fails": {
        "type": "bridge",
        "bridge": "@BRIDGE@",
        "ipam": {"type": "static", "addresses": []},
    },
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bridge_in_process_matches_reference(
    name: str, version: str, sides: tuple[Side, Side]
) -> None:
    compare(Case("bridge", CONFIGS[name], version, "inproc"), *sides)


@pytest.mark.parametrize("version", ["0.3.1", "1.0.0", "1.1.0"])
@pytest.mark.parametrize("name", ["dual-gateway-masq-routes", "vlan-gateway", "l2-only"])
def test_bridge_executable_matches_reference(
    name: str, version: str, sides: tuple[Side, Side]
) -> None:
    compare(Case("bridge", CONFIGS[name], version, "bin"), *sides)
