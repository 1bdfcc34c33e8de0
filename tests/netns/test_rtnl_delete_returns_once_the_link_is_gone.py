"""A link deletion through the lean rtnetlink client returns once the kernel has
unregistered the link (its RTM_DELLINK notification), not after the RCU
barrier the kernel's ACK waits for; the socket stays exact for the requests
after it (the late ACKs and queued notifications are skipped), and errors
are still the request's own. Real namespaces; how much sooner is bench/'s."""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from jaring.delegates import links, netns, rtnl

pytestmark = pytest.mark.root
PAIRS = 6


@pytest.fixture
def pod() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root and real network namespaces")
    name = f"jrd{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for i in range(PAIRS):
            subprocess.run(
                ["ip", "-n", name, "link", "add", f"a{i}", "type", "veth", "peer", "name", f"b{i}"],
                check=True,
            )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def names(pod: str) -> set[str]:
    out = subprocess.run(
        ["ip", "-n", pod, "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_deleted_links_are_gone_on_return_and_later_requests_stay_exact(pod: str) -> None:
    with netns.pod(f"/run/netns/{pod}") as ipr:
        for i in range(PAIRS):
            assert links.delete(ipr, f"a{i}") is True
            gone = {f"a{i}", f"b{i}"}  # a veth takes its peer along
            assert not gone & names(pod)
            # the next requests on this socket read their own answers
            left = [f"a{j}" for j in range(i + 1, PAIRS)]
            for name in left[:2]:
                link = links.get(ipr, name)
                assert link is not None and link.name == name
            dumped = {m.get_attr("IFLA_IFNAME") for m in ipr.link("dump")}
            assert dumped == names(pod)
        assert links.delete(ipr, "a0") is False  # already gone: ENODEV, promptly
        assert names(pod) == {"lo"}


def test_deletion_by_index_and_a_refused_deletion(pod: str) -> None:
    with netns.pod(f"/run/netns/{pod}") as ipr:
        link = links.get(ipr, "b3")
        assert link is not None
        ipr.link("del", index=link.index)
        assert not {"a3", "b3"} & names(pod)
        with pytest.raises(OSError) as info:  # loopback cannot be deleted
            ipr.link("del", ifname="lo")
        assert links.netlink_errno(info.value) == errno.EOPNOTSUPP
        assert links.get(ipr, "a4") is not None  # the socket still answers in order


def test_the_socket_leaves_the_link_group_after_a_deletion(pod: str) -> None:
    """A host socket must not go on collecting every link change of the host."""
    host = f"jrh{uuid.uuid4().hex[:6]}"

    def pair(command: str) -> None:
        args = ["type", "veth", "peer", "name", f"{host}p"] if command == "add" else []
        subprocess.run(["ip", "link", command, host, *args], check=False, capture_output=True)

    pair("add")
    try:
        with rtnl.Rtnl() as ipr:
            assert links.delete(ipr, host) is True
            ipr.sock.settimeout(5)
            while True:  # drain up to the late ACK (and notifications of this deletion)
                data = ipr.sock.recv(1 << 20)
                if any(kind == rtnl.NLMSG_ERROR for kind, _, _ in rtnl._messages(data)):
                    break
            pair("add")
            pair("del")
            ipr.sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                ipr.sock.recv(1 << 20)
    finally:
        pair("del")
