"""Host parts of clusterless mode are made by the first pod that needs them and
removed with the last, and jaringctl never removes what it did not make
(issue 3). `ip` is simulated over a fake /sys/class/net and /proc/sys."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from jaring.cni.errors import CniError
from jaring.metaplugin.localnet import (
    FORWARDING,
    FORWARDING_V6,
    Host,
    HostParts,
    Need,
    veth_peer_name,
)


class FakeIp:
    """Just enough of `ip` for localnet: links as directories under sys_net."""

    def __init__(self, sys_net: Path, netns_dir: Path) -> None:
        self.sys_net = sys_net
        self.netns_dir = netns_dir
        self.calls: list[list[str]] = []
        self.fail_on: str | None = None

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        args = list(argv)
        self.calls.append(args)
        if self.fail_on and self.fail_on in args:
            return subprocess.CompletedProcess(args, 2, "", "RTNETLINK answers: no\n")
        match args[1:]:
            case ["link", "add", name, "type", "veth", "peer", "name", peer]:
                for link in (name, peer):
                    (self.sys_net / link).mkdir()
                    (self.sys_net / link / "peer").write_text(peer if link == name else name)
            case ["link", "delete", name]:
                peer = (self.sys_net / name / "peer").read_text()
                for link in {name, peer}:
                    for path in sorted((self.sys_net / link).rglob("*"), reverse=True):
                        path.rmdir() if path.is_dir() else path.unlink()
                    (self.sys_net / link).rmdir()
            case ["link", "set", "dev", name, "address", mac]:
                (self.sys_net / name / "addr_assign_type").write_text("3\n")
                (self.sys_net / name / "address").write_text(mac + "\n")
            case ["netns", "add", name]:
                (self.netns_dir / name).touch()
            case ["netns", "delete", name]:
                (self.netns_dir / name).unlink()
        return subprocess.CompletedProcess(args, 0, "", "")


@pytest.fixture
def ip(tmp_path: Path) -> FakeIp:
    for folder in ("net", "netns", "sys/net/ipv4"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "sys" / FORWARDING).write_text("0\n")
    return FakeIp(tmp_path / "net", tmp_path / "netns")


@pytest.fixture
def parts(tmp_path: Path, ip: FakeIp) -> HostParts:
    host = Host(
        run=ip, netns_dir=tmp_path / "netns", sys_net=tmp_path / "net", proc_sys=tmp_path / "sys"
    )
    return HostParts(tmp_path / "store" / "hostparts.json", host)


def _bridge(ip: FakeIp, name: str, ports: Sequence[str] = ()) -> None:
    """What the bridge plugin does on first use."""
    (ip.sys_net / name / "brif").mkdir(parents=True)
    (ip.sys_net / name / "peer").write_text(name)
    (ip.sys_net / name / "addr_assign_type").write_text("1\n")
    (ip.sys_net / name / "address").write_text("aa:bb:cc:00:00:01\n")
    for port in ports:
        (ip.sys_net / name / "brif" / port).mkdir()


MASTER = Need("master", "data0", "macvlan master of NAD ns/net")
BRIDGE = Need("bridge", "br7", "bridge of NAD ns/blue")


def test_a_missing_master_is_made_once_and_removed_with_its_last_pod(
    parts: HostParts, ip: FakeIp
) -> None:
    messages = parts.acquire("ns/a", [MASTER])
    peer = veth_peer_name("data0")
    assert messages == [
        f"host: created veth pair data0/{peer} as the macvlan master of NAD ns/net "
        "(no such link here; removed when its last pod goes down)"
    ]
    assert (ip.sys_net / "data0").is_dir() and (ip.sys_net / peer).is_dir()
    assert len(peer) <= 15
    assert parts.acquire("ns/b", [MASTER]) == []
    adds = [c for c in ip.calls if c[1:3] == ["link", "add"]]
    assert len(adds) == 1
    assert parts.release("ns/a") == []
    assert (ip.sys_net / "data0").is_dir()
    assert parts.release("ns/b") == [f"host: removed veth pair data0/{peer}"]
    assert not (ip.sys_net / "data0").exists() and not (ip.sys_net / peer).exists()
    assert parts.load() == []


def test_a_link_that_existed_before_is_never_touched(parts: HostParts, ip: FakeIp) -> None:
    ip(["ip", "link", "add", "data0", "type", "veth", "peer", "name", "other"])
    _bridge(ip, "br7")
    assert parts.acquire("ns/a", [MASTER, BRIDGE]) == []
    assert parts.load() == []
    assert parts.release("ns/a") == []
    assert (ip.sys_net / "data0").is_dir() and (ip.sys_net / "br7").is_dir()


def test_a_bridge_made_for_a_pod_goes_with_its_last_pod_unless_others_use_it(
    parts: HostParts, ip: FakeIp
) -> None:
    (message,) = parts.acquire("ns/a", [BRIDGE])
    assert "bridge br7" in message and "removes it when its last pod goes down" in message
    _bridge(ip, "br7", ports=["veth-a"])
    parts.settle("ns/a")  # pins the MAC so the next port does not change it
    assert (ip.sys_net / "br7" / "addr_assign_type").read_text().strip() == "3"
    parts.acquire("ns/b", [BRIDGE])
    assert parts.release("ns/a") == []
    (message,) = parts.release("ns/b")
    assert message == (
        "host: left bridge br7 in place: it still has ports (veth-a) that jaringctl did not make"
    )
    assert (ip.sys_net / "br7").is_dir()
    assert parts.load() == []


def test_a_bridge_without_ports_is_removed(parts: HostParts, ip: FakeIp) -> None:
    parts.acquire("ns/a", [BRIDGE])
    _bridge(ip, "br7")
    assert parts.release("ns/a") == ["host: removed bridge br7"]
    assert not (ip.sys_net / "br7").exists()


def test_forwarding_turned_on_for_a_gateway_is_set_back(parts: HostParts, ip: FakeIp) -> None:
    need = Need("forwarding", FORWARDING, "the cluster network's gateway on jaring0")
    proc = ip.sys_net.parent / "sys" / FORWARDING
    (message,) = parts.acquire("ns/a", [need])
    assert "net.ipv4.ip_forward" in message
    proc.write_text("1\n")  # what the bridge plugin's isGateway does
    assert parts.release("ns/a") == ["host: set net.ipv4.ip_forward back to 0"]
    assert proc.read_text() == "0"


def test_forwarding_already_on_is_left_on(parts: HostParts, ip: FakeIp) -> None:
    proc = ip.sys_net.parent / "sys" / FORWARDING
    proc.write_text("1\n")
    need = Need("forwarding", FORWARDING, "gateway")
    assert parts.acquire("ns/a", [need]) == []
    assert parts.release("ns/a") == []
    assert proc.read_text() == "1\n"


def test_an_ipam_directory_goes_only_when_it_holds_no_lease(
    parts: HostParts, tmp_path: Path
) -> None:
    folder = tmp_path / "ipam" / "blue"
    need = Need("ipamdir", str(folder), "IPAM of NAD ns/blue")
    assert parts.acquire("ns/a", [need]) == []
    folder.mkdir(parents=True)
    (folder / "lock").touch()
    (folder / "last_reserved_ip.0").write_text("10.0.0.2")
    (folder / "10.0.0.2").write_text("id")
    parts.acquire("ns/b", [need])
    assert parts.release("ns/a") == []
    assert parts.release("ns/b") == [f"host: left {folder}: it still holds leases (10.0.0.2)"]
    assert folder.exists()
    assert parts.load() == []  # left to whoever holds the lease


def test_an_ipam_directory_with_only_bookkeeping_is_removed(
    parts: HostParts, tmp_path: Path
) -> None:
    folder = tmp_path / "ipam" / "blue"
    parts.acquire("ns/a", [Need("ipamdir", str(folder), "IPAM of NAD ns/blue")])
    folder.mkdir(parents=True)
    (folder / "lock").touch()
    (folder / "last_reserved_ip.0").write_text("10.0.0.2")
    assert parts.release("ns/a") == []
    assert not folder.exists()


def test_a_failed_acquire_undoes_what_it_made(parts: HostParts, ip: FakeIp) -> None:
    second = Need("master", "data1", "macvlan master of NAD ns/other")
    ip.fail_on = "data1"
    with pytest.raises(CniError, match="RTNETLINK answers: no"):
        parts.acquire("ns/a", [MASTER, second])
    assert not (ip.sys_net / "data0").exists()
    assert parts.load() == []


def test_parts_are_recorded_before_they_are_made(parts: HostParts, ip: FakeIp) -> None:
    """An interruption between the record and the link leaves the part removable."""
    recorded: list[int] = []
    real = ip.__call__

    def spy(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        recorded.append(len(parts.load()))
        return real(argv)

    parts.host.run = spy
    parts.acquire("ns/a", [MASTER, BRIDGE])
    assert recorded and recorded[0] == 2


def test_forwarding_of_a_family_the_kernel_lacks_is_skipped(parts: HostParts) -> None:
    need = Need("forwarding", FORWARDING_V6, "gateway")  # no ipv6 under the fake /proc/sys
    assert parts.acquire("ns/a", [need]) == []
    assert parts.load() == []
