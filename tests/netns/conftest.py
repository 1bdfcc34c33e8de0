"""Contract-test fixtures: the installed `jaring` binary run as a runtime runs it.

`host` owns this test's host-side names (bridge, macvlan master veth, netns,
IPAM and cache dirs) and removes them all afterwards; `runtime` execs
`.venv/bin/jaring` with CNI env + stdin; `cluster` (kmock, or the cluster of
JARING_TEST_KUBECONFIG) serves the pods and NADs. Reference plugins from
/usr/lib/cni are the delegates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..api.cluster import Cluster
from ..api.conftest import (  # noqa: F401  # the fixtures are shared with tests/api
    api_kubeconfig_fixture,
    cluster_fixture,
)

REFERENCE_PLUGINS = Path("/usr/lib/cni")
JARING = Path(sys.executable).parent / "jaring"
STATUS = "k8s.v1.cni.cncf.io/network-status"
NETWORKS = "k8s.v1.cni.cncf.io/networks"


def sh(*args: str, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Link:
    name: str
    mac: str
    addrs: tuple[str, ...]  # "ip/prefix"


@dataclass
class Host:
    """One test's share of the machine: everything here is unique and removed."""

    tmp: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    netnses: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bridge = f"jcb{self.tag}"
        self.master = f"jcm{self.tag}"
        self.peer = f"jcp{self.tag}"
        self.ipam_dir = self.tmp / "ipam"
        self.cache_dir = self.tmp / "cache"
        # Subnets from the tag: concurrent test runs on this machine rarely collide.
        octet = int(self.tag[:2], 16)
        self.cluster_subnet = f"10.{200 + octet % 50}.{int(self.tag[2:4], 16)}.0/24"
        self.data_subnet = f"10.{150 + octet % 50}.{int(self.tag[2:4], 16)}.0/24"
        self.tmp.mkdir(parents=True, exist_ok=True)
        sh("ip", "link", "add", self.master, "type", "veth", "peer", "name", self.peer)
        sh("ip", "link", "set", self.master, "up")

    def netns(self) -> str:
        name = f"jc{self.tag}{len(self.netnses)}"
        sh("ip", "netns", "add", name)
        self.netnses.append(name)
        return name

    def cleanup(self) -> None:
        for name in self.netnses:
            sh("ip", "netns", "del", name, check=False)
        for link in (self.master, self.bridge):
            sh("ip", "link", "del", link, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # what is there
    def links(self, netns: str) -> dict[str, Link]:
        found: dict[str, Link] = {}
        for item in json.loads(sh("ip", "-n", netns, "-j", "addr", "show") or "[]"):
            addrs = tuple(
                f"{a['local']}/{a['prefixlen']}"
                for a in item.get("addr_info", [])
                if a.get("family") == "inet"
            )
            found[item["ifname"]] = Link(item["ifname"], item.get("address", ""), addrs)
        return found

    def leases(self) -> list[str]:
        """IP files in the host-local stores (the reservations still held)."""
        if not self.ipam_dir.exists():
            return []
        return sorted(
            f"{p.parent.name}/{p.name}"
            for p in self.ipam_dir.rglob("*")
            if p.is_file() and p.name[:1].isdigit() and not p.name.startswith("last_reserved")
        )

    def routes(self, netns: str, *, family: str = "-4") -> list[dict[str, Any]]:
        out = sh("ip", "-n", netns, family, "-j", "route", "show")
        routes: list[dict[str, Any]] = json.loads(out or "[]")
        return routes

    def host_veths(self) -> list[str]:
        """Host ends the bridge plugin attached to our bridge."""
        out = sh("ip", "-j", "link", "show", "master", self.bridge, check=False)
        return [item["ifname"] for item in json.loads(out or "[]")]

    # network configs
    def cluster_network(self) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": f"cluster-{self.tag}",
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": True,
            "ipam": {
                "type": "host-local",
                "subnet": self.cluster_subnet,
                "dataDir": str(self.ipam_dir),
            },
        }

    def macvlan(self, name: str, **extra: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "cniVersion": "1.0.0",
            "name": name,
            "type": "macvlan",
            "master": self.master,
            "mode": "bridge",
            "ipam": {
                "type": "host-local",
                "subnet": self.data_subnet,
                "dataDir": str(self.ipam_dir),
            },
        }
        conf.update(extra)
        return conf


@dataclass(frozen=True)
class Call:
    code: int
    doc: Any
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass
class Runtime:
    """Calls `jaring` exactly like a container runtime: env, stdin, one JSON out."""

    host: Host
    conf: dict[str, Any]
    cni_path: str = str(REFERENCE_PLUGINS)

    def call(
        self,
        command: str,
        *,
        netns: str,
        cid: str,
        namespace: str,
        pod: str,
        uid: str = "",
        ifname: str = "eth0",
        conf: Mapping[str, Any] | None = None,
    ) -> Call:
        args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={pod}"
        args += f";K8S_POD_INFRA_CONTAINER_ID={cid}"
        if uid:
            args += f";K8S_POD_UID={uid}"
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": cid,
            "CNI_NETNS": f"/var/run/netns/{netns}" if netns else "",
            "CNI_IFNAME": ifname,
            "CNI_PATH": self.cni_path,
            "CNI_ARGS": args,
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        return self._exec(env, conf or self.conf)

    def call_plugin_wide(self, command: str, *, conf: Mapping[str, Any] | None = None) -> Call:
        """STATUS and GC: no container, only the config (CNI 1.1)."""
        env = {
            "CNI_COMMAND": command,
            "CNI_PATH": self.cni_path,
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        return self._exec(env, conf or self.conf)

    def _exec(self, env: Mapping[str, str], conf: Mapping[str, Any]) -> Call:
        done = subprocess.run(
            [str(JARING)],
            input=json.dumps(conf).encode(),
            env=dict(env),
            capture_output=True,
            check=False,
            timeout=60,
        )
        out = done.stdout.decode()
        doc = json.loads(out) if out.strip() else None
        return Call(done.returncode, doc, done.stderr.decode())


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    if os.geteuid() != 0:
        pytest.skip("needs root: real network namespaces")
    if not (REFERENCE_PLUGINS / "bridge").exists():
        pytest.skip("reference CNI plugins missing (apt install containernetworking-plugins)")
    if not JARING.exists():
        pytest.skip(f"{JARING} is not installed (make venv)")
    made = Host(tmp=tmp_path / "host")
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def runtime(host: Host, cluster: Cluster) -> Runtime:
    conf = {
        "cniVersion": "1.0.0",
        "name": f"jaring-{host.tag}",
        "type": "jaring",
        "kubeconfig": str(cluster.kubeconfig),
        "cniDir": str(host.cache_dir),
        "confDir": str(host.tmp / "net.d"),
        "daemonSocket": "",  # standalone: the binary alone, as a runtime sees it
        "logFile": str(host.tmp / "jaring.log"),
        "logLevel": "debug",
        "delegates": [host.cluster_network()],
    }
    return Runtime(host=host, conf=conf)


@dataclass(frozen=True)
class Sandbox:
    """One pod sandbox: its netns, container ID and pod identity."""

    netns: str
    cid: str
    namespace: str
    pod: str
    uid: str


def sandbox(
    host: Host, cluster: Cluster, pod: str, *, networks: str = "", namespace: str = ""
) -> Sandbox:
    """Create the pod in the API (with its selection annotation) and a netns for it."""
    ns = namespace or cluster.namespace
    uid = cluster.pod(pod, annotations={NETWORKS: networks} if networks else None, namespace=ns)
    return Sandbox(host.netns(), uuid.uuid4().hex, ns, pod, uid)


def call(runtime: Runtime, command: str, box: Sandbox, **kw: Any) -> Call:
    return runtime.call(
        command,
        netns=box.netns,
        cid=box.cid,
        namespace=box.namespace,
        pod=box.pod,
        uid=box.uid,
        **kw,
    )
