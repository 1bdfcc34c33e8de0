"""network-status entries: sandbox interface, plain IPs, gateways, exactly one default."""

from __future__ import annotations

import json

import pytest
from jaring.cni.errors import CniError
from jaring.cni.types import DNS, Interface, IPConfig, Result
from jaring.metaplugin.status import build_status, status_annotation, status_entry

HOST = Interface(name="veth1", mac="aa:aa:aa:aa:aa:aa")
POD = Interface(name="net1", mac="02:00:00:00:00:01", sandbox="/run/netns/x", mtu=1400)


def test_v4_entry_from_sandbox_interface_with_ips_carrying_their_prefix_length() -> None:
    r = Result(interfaces=(HOST, POD), ips=(IPConfig("10.1.0.5/24", "10.1.0.1", 1),))
    assert status_entry(network="ns/a", result=r, default=False) == {
        "name": "ns/a",
        "interface": "net1",
        "ips": ["10.1.0.5/24"],
        "mac": "02:00:00:00:00:01",
        "mtu": 1400,
        "default": False,
        "gateway": ["10.1.0.1"],
    }


def test_dual_stack_and_host_side_ips_excluded() -> None:
    r = Result(
        interfaces=(HOST, POD),
        ips=(
            IPConfig("10.1.0.5/24", "", 1),
            IPConfig("fd00::5/64", "", 1),
            IPConfig("192.168.0.1/24", "", 0),
        ),
    )
    entry = status_entry(network="ns/a", result=r, default=False)
    assert entry["ips"] == ["10.1.0.5/24", "fd00::5/64"]
    assert "gateway" not in entry


def test_v6_single_interface_without_index() -> None:
    r = Result(interfaces=(POD,), ips=(IPConfig("fd00::7/64"),))
    assert status_entry(network="n", result=r, default=True)["ips"] == ["fd00::7/64"]


def test_first_sandbox_interface_wins() -> None:
    other = Interface(name="net9", sandbox="/run/netns/x")
    r = Result(interfaces=(HOST, POD, other), ips=(IPConfig("10.0.0.9/8", "", 2),))
    entry = status_entry(network="n", result=r, default=False)
    assert entry["interface"] == "net1" and "ips" not in entry


def test_dns_default_route_and_device_info() -> None:
    r = Result(interfaces=(POD,), dns=DNS(nameservers=("1.1.1.1",)))
    entry = status_entry(
        network="n",
        result=r,
        default=False,
        default_route=("10.0.0.1",),
        device_info={"type": "pci", "version": "1.1.0"},
    )
    assert entry["dns"] == {"nameservers": ["1.1.1.1"]}
    assert entry["default-route"] == ["10.0.0.1"]
    assert entry["device-info"] == {"type": "pci", "version": "1.1.0"}


@pytest.mark.parametrize("defaults", [[], [True, True]])
def test_status_needs_exactly_one_default(defaults: list[bool]) -> None:
    entries = [{"name": f"n{i}", "default": d} for i, d in enumerate(defaults)]
    with pytest.raises(CniError):
        build_status(entries)


def test_annotation_is_compact_json() -> None:
    entries = build_status([{"name": "c", "default": True}, {"name": "a", "default": False}])
    text = status_annotation(entries)
    assert " " not in text and json.loads(text) == entries
