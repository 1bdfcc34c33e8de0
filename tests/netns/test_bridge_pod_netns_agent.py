"""The netns agent every link plugin uses: pod sockets and sysctls without setns in our process.

Real namespaces: the agent hands back a socket that lives in the pod, writes
per-pod sysctls, reports errors as CniError, refuses a missing netns as
CONTAINER_UNKNOWN (never creating one), and replaces itself if it dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from jaring.cni.errors import CniError, Code
from jaring.delegates import links, netns

pytestmark = pytest.mark.root


@pytest.fixture
def pod() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root and real network namespaces")
    name = f"jan{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(
        ["ip", "-n", name, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"],
        check=True,
    )
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_pod_socket_sees_the_pods_links_not_the_hosts(pod: str) -> None:
    before = os.readlink("/proc/self/ns/net")
    with netns.pod(pod) as ipr:
        assert links.get(ipr, "probe0") is not None
    with netns.host() as ipr:
        assert links.get(ipr, "probe0") is None
    assert os.readlink("/proc/self/ns/net") == before  # our process never moved


def test_sysctl_is_written_in_the_pod_only(pod: str) -> None:
    netns.pod_sysctl(pod, {"net.ipv4.conf.probe0.arp_notify": "1"})
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            os.path.basename(pod),
            "sysctl",
            "-n",
            "net.ipv4.conf.probe0.arp_notify",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1"


def test_bad_sysctl_is_a_cni_error_naming_it(pod: str) -> None:
    with pytest.raises(CniError, match="no_such_knob"):
        netns.pod_sysctl(pod, {"net.ipv4.conf.probe0.no_such_knob": "1"})


def test_missing_netns_is_container_unknown_and_not_created() -> None:
    path = f"/run/netns/jan-missing-{uuid.uuid4().hex[:6]}"
    with pytest.raises(CniError) as caught, netns.pod(path):
        pass
    assert caught.value.code == Code.CONTAINER_UNKNOWN
    assert not os.path.exists(path)


def test_agent_is_replaced_when_it_dies(pod: str) -> None:
    agent = netns.NetnsAgent()
    fd = netns.in_pod(pod, want_socket=True, agent=agent)
    assert fd is not None
    os.close(fd)
    os.kill(agent._pid, signal.SIGKILL)
    fd = netns.in_pod(pod, want_socket=True, agent=agent)
    assert fd is not None
    os.close(fd)
    agent._reap()


def test_agent_does_not_pin_a_pod_netns_after_serving_it() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root and real network namespaces")
    tag = uuid.uuid4().hex[:6]
    name, canary = f"jan{tag}", f"jac{tag}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(
        ["ip", "link", "add", canary, "type", "veth", "peer", "name", "c0", "netns", name],
        check=True,
    )
    try:
        netns.pod_sysctl(f"/run/netns/{name}", {"net.ipv4.conf.c0.arp_notify": "1"})
        subprocess.run(["ip", "netns", "del", name], check=True)
        # The canary's host end goes only when the kernel frees the pod netns.
        links.wait_for(
            lambda: (
                subprocess.run(
                    ["ip", "link", "show", canary], capture_output=True, check=False
                ).returncode
                != 0
            ),
            timeout=8,
            what="the pod netns to be freed",
        )
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", canary], capture_output=True, check=False)
