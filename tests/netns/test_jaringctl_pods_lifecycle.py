"""jaringctl end to end in real namespaces: apply, up, exec, check, gc, down,
host parts, and failures that leave nothing behind (issue 3).

Each test has its own store, cluster bridge, subnet and link names; the
`jaring` binary runs the reference plugins from /usr/lib/cni as delegates.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not Path("/usr/lib/cni/bridge").exists(), reason="reference plugins"),
]

JARINGCTL = str(Path(sys.executable).parent / "jaringctl")


@dataclass
class Env:
    store: Path
    tag: str
    namespace: str
    bridge: str  # the cluster network's
    subnet: str
    nad_bridge: str
    master: str
    ipam_dir: Path  # host-local dataDir for the NADs

    def ctl(self, *argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [JARINGCTL, "--state-dir", str(self.store), *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert "Traceback" not in done.stderr + done.stdout, done.stderr
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def up(self, pod: str) -> subprocess.CompletedProcess[str]:
        return self.ctl(
            "up", f"{self.namespace}/{pod}", "--cluster-bridge", self.bridge,
            "--cluster-subnet", self.subnet,
        )  # fmt: skip

    def apply(self, text: str) -> None:
        path = self.store.parent / f"m-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(text)
        self.ctl("apply", "-f", str(path), check=True)

    def nad(self, name: str, config: dict[str, object]) -> str:
        return (
            "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n"
            f"metadata: {{name: {name}, namespace: {self.namespace}}}\n"
            f"spec:\n  config: '{json.dumps(config)}'\n---\n"
        )

    def pod(self, name: str, networks: str) -> str:
        return (
            f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n"
            f"  namespace: {self.namespace}\n"
            f"  annotations:\n    k8s.v1.cni.cncf.io/networks: '{networks}'\n---\n"
        )

    def record(self, pod: str) -> dict[str, object] | None:
        path = self.store / ".jaring" / "pods" / f"{self.namespace}_{pod}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def netns(self, pod: str) -> str:
        rec = self.record(pod)
        assert rec is not None
        return str(rec["netns"])

    def own_netns(self) -> list[str]:
        """This test's namespaces (other tests may make theirs meanwhile)."""
        return sorted(n for n in _netns_list() if self.tag in n)

    def leases(self) -> list[str]:
        """host-local lease files of every network of this test (cluster and NADs)."""
        found = []
        for base in (self.store / ".jaring" / "ipam", self.ipam_dir):
            for path in base.glob("*/*"):
                if path.name != "lock" and not path.name.startswith("last_reserved_ip"):
                    found.append(str(path))
        return found


def _netns_list() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    tag = uuid.uuid4().hex[:6]
    e = Env(
        store=tmp_path / "store",
        tag=tag,
        namespace=f"t{tag}",
        bridge=f"jtc{tag}",
        subnet=f"10.{random.randint(150, 250)}.{random.randint(0, 255)}.0/24",
        nad_bridge=f"jtb{tag}",
        master=f"jtm{tag}",
        ipam_dir=tmp_path / "ipam",
    )
    before = _netns_list()
    try:
        yield e
    finally:
        records = sorted((e.store / ".jaring" / "pods").glob("*.json"))
        for path in records:
            namespace, _, name = path.stem.partition("_")
            e.ctl("down", "--force", f"{namespace}/{name}")
        leaked_netns = {n for n in _netns_list() - before if tag in n}
        leaked_links = [n for n in (e.bridge, e.nad_bridge, e.master) if _link_exists(n)]
        for name in leaked_netns:
            subprocess.run(["ip", "netns", "delete", name], check=False)
        for name in leaked_links:
            subprocess.run(["ip", "link", "delete", name], check=False)
        assert not leaked_netns and not leaked_links, (leaked_netns, leaked_links)


def _two_networks(env: Env) -> str:
    """A bridge NAD and a macvlan NAD over a master that does not exist yet."""
    bridge = env.nad(
        "blue",
        {
            "cniVersion": "1.0.0",
            "type": "bridge",
            "bridge": env.nad_bridge,
            "ipam": {
                "type": "host-local",
                "subnet": "10.77.1.0/24",
                "dataDir": str(env.ipam_dir),
            },
        },
    )
    macvlan = env.nad(
        "green",
        {
            "cniVersion": "1.0.0",
            "type": "macvlan",
            "master": env.master,
            "mode": "bridge",
            "ipam": {
                "type": "host-local",
                "subnet": "10.77.2.0/24",
                "dataDir": str(env.ipam_dir),
            },
        },
    )
    return bridge + macvlan


def _status(env: Env, pod: str) -> list[dict[str, object]]:
    path = env.store / ".status" / f"{env.namespace}_{pod}.json"
    doc = json.loads(path.read_text())
    assert isinstance(doc, list)
    return doc


def _ip_of(env: Env, pod: str, ifname: str) -> str:
    for entry in _status(env, pod):
        if entry.get("interface") == ifname:
            ips = entry.get("ips")
            assert isinstance(ips, list)
            return str(ips[0]).split("/")[0]
    raise AssertionError(f"{pod} has no {ifname}")


def test_up_exec_check_down_and_nothing_is_left(env: Env) -> None:
    env.apply(_two_networks(env) + env.pod("a", "blue, green") + env.pod("b", "blue, green"))
    done = env.up("a")
    assert done.returncode == 0, done.stderr
    assert f"created veth pair {env.master}/" in done.stdout
    assert env.up("b").returncode == 0
    netns = env.netns("a")
    assert Path("/var/run/netns", netns).exists()
    assert _link_exists(env.bridge) and _link_exists(env.nad_bridge) and _link_exists(env.master)

    rec = env.record("a")
    assert rec is not None and rec["state"] == "up" and len(str(rec["container_id"])) == 64

    shown = env.ctl("exec", f"{env.namespace}/a", "--", "ip", "-o", "link", check=True).stdout
    assert " eth0@" in shown and " net1@" in shown and " net2@" in shown

    wide = env.ctl("get", "pods", "-n", env.namespace, "-o", "wide", check=True).stdout
    row = next(line for line in wide.splitlines() if line.split()[1:2] == ["a"])
    assert " Up " in row and netns in row
    assert "eth0=" in row and "net1=10.77.1." in row and "net2=10.77.2." in row

    for ifname in ("eth0", "net1", "net2"):
        target = _ip_of(env, "b", ifname)
        ping = env.ctl(
            "exec", f"{env.namespace}/a", "--", "ping", "-c", "1", "-W", "2", "-I", ifname, target
        )
        assert ping.returncode == 0, (ifname, ping.stdout, ping.stderr)

    assert env.ctl("check", f"{env.namespace}/a").returncode == 0
    assert env.ctl("check", f"{env.namespace}/b").returncode == 0

    done = env.ctl("down", f"{env.namespace}/a", check=True)
    assert done.stdout.strip().endswith("down")
    assert _link_exists(env.master), "b still uses the master"
    assert not Path("/var/run/netns", netns).exists()
    done = env.ctl("down", f"{env.namespace}/b", check=True)
    assert f"removed veth pair {env.master}" in done.stdout
    assert f"removed bridge {env.nad_bridge}" in done.stdout
    assert not _link_exists(env.master) and not _link_exists(env.nad_bridge)
    assert not _link_exists(env.bridge)
    assert env.leases() == []
    assert list((env.store / ".jaring" / "cache").iterdir()) == []
    assert not (env.store / ".status" / f"{env.namespace}_a.json").exists()


def test_down_twice_succeeds(env: Env) -> None:
    env.apply(env.pod("a", ""))
    assert env.up("a").returncode == 0
    assert env.ctl("down", f"{env.namespace}/a").returncode == 0
    again = env.ctl("down", f"{env.namespace}/a")
    assert again.returncode == 0
    assert "is not up" in again.stdout


def test_up_twice_keeps_the_same_pod(env: Env) -> None:
    env.apply(env.pod("a", ""))
    assert env.up("a").returncode == 0
    first = env.record("a")
    again = env.up("a")
    assert again.returncode == 0 and "already up" in again.stdout
    assert env.record("a") == first


def test_up_of_an_unknown_pod_is_one_line_and_makes_nothing(env: Env) -> None:
    done = env.up("ghost")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert f"pod {env.namespace}/ghost not found" in done.stderr
    assert env.own_netns() == []
    assert env.record("ghost") is None


def test_a_failing_attachment_leaves_nothing_behind(env: Env) -> None:
    # A third network whose IPAM fails after the bridge plugin made its bridge and veth.
    broken_bridge = f"jtx{env.tag}"
    broken = env.nad(
        "broken",
        {
            "cniVersion": "1.0.0",
            "type": "bridge",
            "bridge": broken_bridge,
            "ipam": {"type": "static"},
        },
    )
    env.apply(_two_networks(env) + broken + env.pod("a", "blue, green, broken"))
    done = env.up("a")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"up {env.namespace}/a: CNI ADD failed" in done.stderr
    assert "broken" in done.stderr
    assert env.own_netns() == []
    assert env.record("a") is None
    assert env.leases() == []
    assert not _link_exists(env.master) and not _link_exists(env.nad_bridge)
    assert not _link_exists(env.bridge) and not _link_exists(broken_bridge)
    assert list((env.store / ".jaring" / "cache").iterdir()) == []
    assert not (env.ipam_dir / "blue").exists(), "an IPAM dir jaringctl made is removed"


def test_a_missing_network_fails_up_cleanly(env: Env) -> None:
    env.apply(env.pod("a", "nowhere"))
    done = env.up("a")
    assert done.returncode == 1
    assert "nowhere" in done.stderr and "not found" in done.stderr
    assert env.own_netns() == []
    assert env.leases() == []


def test_check_fails_when_an_interface_went_missing(env: Env) -> None:
    env.apply(_two_networks(env) + env.pod("a", "blue"))
    assert env.up("a").returncode == 0
    subprocess.run(["ip", "-n", env.netns("a"), "link", "delete", "net1"], check=True)
    done = env.ctl("check", f"{env.namespace}/a")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "CNI CHECK failed" in done.stderr and "net1" in done.stderr


def test_check_of_a_pod_that_is_not_up(env: Env) -> None:
    env.apply(env.pod("a", ""))
    done = env.ctl("check", f"{env.namespace}/a")
    assert done.returncode == 1
    assert "not up" in done.stderr


def test_gc_releases_pods_whose_netns_vanished_and_keeps_the_rest(env: Env) -> None:
    env.apply(_two_networks(env) + env.pod("a", "blue") + env.pod("b", "blue"))
    assert env.up("a").returncode == 0
    assert env.up("b").returncode == 0
    leases_before = env.leases()
    assert len(leases_before) == 4  # two pods on the cluster network and on blue
    subprocess.run(["ip", "netns", "delete", env.netns("b")], check=True)
    listed = env.ctl("get", "pods", "-n", env.namespace, check=True).stdout
    assert any(line.split()[1:3] == ["b", "Broken"] for line in listed.splitlines())

    done = env.ctl("gc", check=True)
    assert f"released {env.namespace}/b" in done.stdout
    assert f"kept the pods that are up ({env.namespace}/a)" in done.stdout
    assert env.record("b") is None
    assert len(env.leases()) == 2
    assert env.ctl("check", f"{env.namespace}/a").returncode == 0
    shown = env.ctl("exec", f"{env.namespace}/a", "--", "ip", "-o", "addr", check=True).stdout
    assert _ip_of(env, "a", "net1") in shown


def test_gc_with_nothing_up_succeeds(env: Env) -> None:
    done = env.ctl("gc")
    assert done.returncode == 0, done.stderr
    assert "kept the pods that are up (none)" in done.stdout


def test_an_existing_master_is_used_and_left_alone(env: Env) -> None:
    peer = f"jtp{env.tag}"
    subprocess.run(
        ["ip", "link", "add", env.master, "type", "veth", "peer", "name", peer], check=True
    )
    try:
        for name in (env.master, peer):
            subprocess.run(["ip", "link", "set", name, "up"], check=True)
        env.apply(_two_networks(env) + env.pod("a", "green"))
        done = env.up("a")
        assert done.returncode == 0, done.stderr
        assert "veth pair" not in done.stdout
        assert env.ctl("down", f"{env.namespace}/a").returncode == 0
        assert _link_exists(env.master)
    finally:
        subprocess.run(["ip", "link", "delete", env.master], check=False)


def test_changing_the_cluster_subnet_while_pods_are_up_is_refused(env: Env) -> None:
    env.apply(env.pod("a", "") + env.pod("b", ""))
    assert env.up("a").returncode == 0
    done = env.ctl("up", f"{env.namespace}/b", "--cluster-subnet", "10.66.0.0/24")
    assert done.returncode == 1
    assert "while pods are up" in done.stderr
    assert env.record("b") is None


def test_delete_of_a_pod_that_is_up_brings_it_down(env: Env) -> None:
    env.apply(env.pod("a", ""))
    assert env.up("a").returncode == 0
    netns = env.netns("a")
    done = env.ctl("delete", "pod", f"{env.namespace}/a", check=True)
    assert "down" in done.stdout and "deleted" in done.stdout
    assert not Path("/var/run/netns", netns).exists()


def test_exec_runs_in_the_pod_and_passes_the_exit_status(env: Env) -> None:
    env.apply(env.pod("a", ""))
    assert env.up("a").returncode == 0
    done = env.ctl("exec", f"{env.namespace}/a", "--", "sh", "-c", "ip -o addr show eth0; exit 7")
    assert done.returncode == 7
    assert env.subnet.rsplit(".", 1)[0] in done.stdout
    down = env.ctl("exec", f"{env.namespace}/nobody", "--", "true")
    assert down.returncode == 1 and "not up" in down.stderr


def test_a_failing_del_keeps_the_pod_until_down_force(env: Env) -> None:
    env.apply(_two_networks(env) + env.pod("a", "blue"))
    assert env.up("a").returncode == 0
    netns = env.netns("a")
    # Break DEL: the cached delegate config of net1 now names a plugin that does not exist.
    (cache_file,) = (env.store / ".jaring" / "cache").glob("*.json")
    entry = json.loads(cache_file.read_text())
    entry["attachments"][1]["config"]["type"] = f"jaring-no-such-{env.tag}"
    cache_file.write_text(json.dumps(entry))

    done = env.ctl("down", f"{env.namespace}/a")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "CNI DEL failed, nothing removed" in done.stderr and "down --force" in done.stderr
    assert Path("/var/run/netns", netns).exists()
    assert env.record("a") is not None

    done = env.ctl("down", "--force", f"{env.namespace}/a")
    assert done.returncode == 0, done.stderr
    assert "warning: CNI DEL" in done.stdout
    assert not Path("/var/run/netns", netns).exists()
    assert env.record("a") is None
    assert not _link_exists(env.bridge) and not _link_exists(env.nad_bridge)
