"""host-device: jaring moves a host link in and out exactly as the reference does.

The device is a veth end (this kernel has no dummy); found by name or MAC,
with and without IPAM, at every CNI version. DEL is idempotent here, unlike
the reference, which fails a second DEL with "Link not found" (LESSONS #15).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .harness import VERSIONS, Case, Runner, Side, compare, sh

pytestmark = pytest.mark.root

DUAL = {
    "type": "host-local",
    "dataDir": "@DATADIR@",
    "ranges": [[{"subnet": "10.81.0.0/24"}], [{"subnet": "fd81::/64"}]],
    "routes": [{"dst": "10.82.0.0/16"}],
}

CONFIGS: dict[str, dict[str, Any]] = {
    "device-l2": {"type": "host-device", "device": "@DEVICE@"},
    "device-dual-stack": {"type": "host-device", "device": "@DEVICE@", "ipam": DUAL},
    "device-static": {
        "type": "host-device",
        "device": "@DEVICE@",
        "ipam": {"type": "static", "addresses": [{"address": "10.83.0.4/24"}]},
        "dns": {"nameservers": ["10.83.0.53"]},
    },
    "nothing-named-is-refused": {"type": "host-device"},
    "missing-device-fails": {"type": "host-device", "device": "jdnosuch1"},
    "relative-kernelpath-is-refused": {"type": "host-device", "kernelpath": "net/eth0"},
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_hostdevice_in_process_matches_reference(
    name: str, version: str, sides: tuple[Side, Side]
) -> None:
    compare(Case("host-device", CONFIGS[name], version, "inproc", ifname="net1"), *sides)


@pytest.mark.parametrize("version", ["0.3.1", "1.1.0"])
def test_hostdevice_executable_matches_reference(version: str, sides: tuple[Side, Side]) -> None:
    compare(
        Case("host-device", CONFIGS["device-dual-stack"], version, "bin", ifname="net1"), *sides
    )


@pytest.mark.parametrize("version", ["0.4.0", "1.0.0"])
def test_hostdevice_found_by_hwaddr_matches_reference(
    version: str, sides: tuple[Side, Side]
) -> None:
    ref, ours = sides
    for side in sides:
        mac = "0e:00:00:81:00:" + ("01" if side is ref else "02")
        sh("ip", "link", "set", side.device, "address", mac)
    template = {"type": "host-device", "hwaddr": "0e:00:00:81:00:0X", "ipam": DUAL}
    ref_conf = {**template, "hwaddr": "0e:00:00:81:00:01"}
    our_conf = {**template, "hwaddr": "0e:00:00:81:00:02"}
    # Each side has its own MAC; the harness masks MACs, so the states compare equal.
    ref_case = Case("host-device", ref_conf, version, "inproc", ifname="net1")
    our_case = Case("host-device", our_conf, version, "inproc", ifname="net1")
    ref_out = Runner("ref", "host-device")(
        "ADD", ref, ref.render(ref_case.template, version), ifname="net1"
    )
    our_out = Runner("inproc", "host-device")(
        "ADD", ours, ours.render(our_case.template, version), ifname="net1"
    )
    assert ref_out.code == 0 and our_out.code == 0, (ref_out, our_out)
    assert json.dumps(ref.substitute(json.dumps(ref_out.doc))) == json.dumps(
        ours.substitute(json.dumps(our_out.doc))
    )
    for side, conf in ((ref, ref_conf), (ours, our_conf)):
        Runner("ref" if side is ref else "inproc", "host-device")(
            "DEL", side, side.render(conf, version), ifname="net1"
        )


def test_hostdevice_second_del_succeeds_unlike_reference(sides: tuple[Side, Side]) -> None:
    ref, ours = sides
    conf = CONFIGS["device-l2"]
    for side, how in ((ref, "ref"), (ours, "inproc")):
        run = Runner(how, "host-device")
        assert run("ADD", side, side.render(conf, "1.0.0"), ifname="net1").code == 0
        assert run("DEL", side, side.render(conf, "1.0.0"), ifname="net1").code == 0
    again_ref = Runner("ref", "host-device")("DEL", ref, ref.render(conf, "1.0.0"), ifname="net1")
    again_ours = Runner("inproc", "host-device")(
        "DEL", ours, ours.render(conf, "1.0.0"), ifname="net1"
    )
    assert again_ref.code != 0  # the reference: "failed to find \"net1\": Link not found"
    assert again_ours.code == 0, again_ours


def test_hostdevice_del_after_netns_gone_succeeds_unlike_reference(
    sides: tuple[Side, Side],
) -> None:
    ref, ours = sides
    conf = CONFIGS["device-dual-stack"]
    for side, how in ((ref, "ref"), (ours, "inproc")):
        assert (
            Runner(how, "host-device")("ADD", side, side.render(conf, "1.0.0"), ifname="net1").code
            == 0
        )
        sh("ip", "netns", "del", side.netns)
    gone_ref = Runner("ref", "host-device")("DEL", ref, ref.render(conf, "1.0.0"), ifname="net1")
    gone_ours = Runner("inproc", "host-device")(
        "DEL", ours, ours.render(conf, "1.0.0"), ifname="net1"
    )
    assert gone_ref.code != 0  # the reference cannot open the netns and leaks the leases
    assert gone_ours.code == 0, gone_ours
    assert not [n for n in (ours.data_dir / ours.network).iterdir() if n.name[0].isdigit()]
