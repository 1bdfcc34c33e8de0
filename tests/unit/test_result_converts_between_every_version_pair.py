"""Result conversion (SPECS.md CNI "Versions"): any supported version in,
any supported version out, `ips[].version` only before 1.0.0, 1.1.0 fields
only in 1.1.0, nothing else lost."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from jaring.cni import version
from jaring.cni.errors import CniError
from jaring.cni.types import Result


def rich(v: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "cniVersion": v,
        "interfaces": [
            {"name": "br0", "mac": "02:00:00:00:00:01"},
            {"name": "eth0", "mac": "02:00:00:00:00:02", "sandbox": "/var/run/netns/x"},
        ],
        "ips": [
            {"address": "10.0.0.5/24", "gateway": "10.0.0.1", "interface": 1},
            {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 1},
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}, {"dst": "::/0"}],
        "dns": {"nameservers": ["10.0.0.53"], "search": ["svc"]},
    }
    if not version.at_least(v, "1.0.0"):
        doc["ips"][0]["version"] = "4"
        doc["ips"][1]["version"] = "6"
    if v == "1.1.0":
        doc["interfaces"][1]["mtu"] = 1400
        doc["routes"][0].update(mtu=1300, table=100, priority=5, scope=0, advmss=1200)
    return doc


PAIRS = list(itertools.product(version.SUPPORTED, repeat=2))


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_conversion_keeps_everything_the_target_version_can_carry(src: str, dst: str) -> None:
    out = Result.from_json(rich(src)).to_json(dst)
    assert out["cniVersion"] == dst
    assert [ip["address"] for ip in out["ips"]] == ["10.0.0.5/24", "fd00::5/64"]
    assert [ip.get("version") for ip in out["ips"]] == (
        [None, None] if version.at_least(dst, "1.0.0") else ["4", "6"]
    )
    assert out["interfaces"][1]["sandbox"] == "/var/run/netns/x"
    carries_11 = src == "1.1.0" and dst == "1.1.0"
    assert ("mtu" in out["interfaces"][1]) == carries_11
    assert ("table" in out["routes"][0]) == carries_11
    assert out["dns"] == {"nameservers": ["10.0.0.53"], "search": ["svc"]}


@pytest.mark.parametrize("v", version.SUPPORTED)
def test_a_result_round_trips_in_its_own_version(v: str) -> None:
    assert Result.from_json(rich(v)).to_json(v) == rich(v)


@pytest.mark.parametrize(
    "bad",
    [
        {"cniVersion": "9.9.9"},
        {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.5"}]},
        {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.5/24", "interface": 3}]},
        {"cniVersion": "1.0.0", "routes": [{"dst": "nope"}]},
        {"cniVersion": "1.0.0", "interfaces": [{"mac": "x"}]},
        [],
    ],
)
def test_a_malformed_result_is_a_cni_error(bad: Any) -> None:
    with pytest.raises(CniError):
        Result.from_json(bad)
