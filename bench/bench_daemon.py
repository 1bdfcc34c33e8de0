"""ADD/DEL cost with the node daemon against the Go plugins called directly (issue 6).

Workload: a pod netns with the cluster network (`bridge`, host-local) as eth0
and one `macvlan` attachment (host-local) over a veth end. Variants:
(a) the two reference plugins exec'd directly, as a runtime would without a
meta-plugin; (b) the `jaring` binary standalone (pod and NAD read from kmock,
delegates exec'd); (c) the `jaring` binary forwarding to `jaring-node`
(watch caches, native delegates in-process). Patterns: single pods, 100 back
to back, 8 at once. Also: API requests per ADD from kmock's record, and the
daemon's memory with 1,000 NADs and 200 pods on its node. Root; cleans up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kapi import ApiServer
from userinstall import UserInstall, dev_install, user_install

CNI_PATH = os.environ.get("JARING_BENCH_CNI_PATH", "/usr/lib/cni")
NODE = "bench-node"
NETWORKS = "k8s.v1.cni.cncf.io/networks"
DEFAULT_SOCKET = Path("/run/jaring/jaring.sock")  # where a node's config leaves it implicit
VARIANTS = ("direct", "standalone", "daemon")
LABELS = {
    "direct": "(a) Go plugins direct",
    "standalone": "(b) jaring standalone",
    "daemon": "(c) jaring + daemon",
}


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def exec_cni(
    binary: str, command: str, conf: dict[str, Any], *, netns: str, ifname: str, cid: str, args: str
) -> None:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": f"/var/run/netns/{netns}",
        "CNI_IFNAME": ifname,
        "CNI_PATH": CNI_PATH,
        "CNI_ARGS": args,
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    }
    proc = subprocess.run(
        [binary], input=json.dumps(conf).encode(), env=env, capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{binary} {command} failed: {proc.stdout!r} {proc.stderr!r}")


@dataclass
class Pod:
    name: str
    uid: str
    netns: str
    cid: str = ""


@dataclass
class Bench:
    tmp: Path
    api: ApiServer | None
    tag: str
    installed: UserInstall = field(default_factory=dev_install)
    cluster: dict[str, Any] = field(init=False)
    data: dict[str, Any] = field(init=False)
    pods: list[Pod] = field(default_factory=list)
    daemon: subprocess.Popen[bytes] | None = None
    http: str = ""
    events: bool = False

    def __post_init__(self) -> None:
        ipam = str(self.tmp / "ipam")
        self.bridge, self.master, self.peer = f"jdb{self.tag}", f"jdm{self.tag}", f"jdp{self.tag}"
        self.cluster = {
            "cniVersion": "1.0.0",
            "name": f"bench-cluster-{self.tag}",
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": True,
            "ipam": {"type": "host-local", "subnet": "10.233.0.0/16", "dataDir": ipam},
        }
        self.data = {
            "cniVersion": "1.0.0",
            "name": f"bench-data-{self.tag}",
            "type": "macvlan",
            "master": self.master,
            "mode": "bridge",
            "ipam": {"type": "host-local", "subnet": "10.234.0.0/16", "dataDir": ipam},
        }
        self.kubeconfig = self.tmp / "kubeconfig"
        self.socket = self.tmp / "run" / "jaring.sock"

    def meta(self, daemon: bool) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "cniVersion": "1.0.0",
            "name": "jaring",
            "type": "jaring",
            "kubeconfig": str(self.kubeconfig),
            "cniDir": str(self.tmp / "cache"),
            # kmock answers slower with every object version it stores (each
            # status PATCH and Event adds one; its request record is kept lean
            # by kapi): timed runs post no Events and each gets a fresh kmock.
            # Events are counted in their own run.
            "events": self.events,
            "delegates": [self.cluster],
        }
        if not daemon:
            conf["daemonSocket"] = ""  # (b): never forward
        elif self.socket != DEFAULT_SOCKET:
            conf["daemonSocket"] = str(self.socket)
        return conf

    # the host side
    def setup(self, pods: int) -> None:
        ip("link", "add", self.master, "type", "veth", "peer", "name", self.peer)
        ip("link", "set", self.master, "up")
        for i in range(pods):
            pod = Pod(f"p{i}", uuid.uuid4().hex, f"jd{self.tag}{i}")
            ip("netns", "add", pod.netns)
            self.pods.append(pod)

    def use(self, api: ApiServer) -> None:
        """Point at a fresh API server holding the NAD and the pods."""
        self.api = api
        api.kubeconfig(self.kubeconfig)
        api.nad("default", "data", self.data)
        for pod in self.pods:
            create_pod(api, "default", pod.name, pod.uid, {NETWORKS: "data"})

    def cleanup(self) -> None:
        self.stop_daemon()
        for pod in self.pods:
            subprocess.run(["ip", "netns", "del", pod.netns], check=False, capture_output=True)
        for link in (self.master, self.bridge):
            subprocess.run(["ip", "link", "del", link], check=False, capture_output=True)

    # one ADD or DEL of one pod, in ms
    def op(self, variant: str, command: str, pod: Pod) -> float:
        if command == "ADD":
            pod.cid = uuid.uuid4().hex
        start = time.perf_counter()
        if variant == "direct":
            steps = [("bridge", self.cluster, "eth0"), ("macvlan", self.data, "net1")]
            for plugin, conf, ifname in steps if command == "ADD" else steps[::-1]:
                exec_cni(
                    f"{CNI_PATH}/{plugin}", command, conf,
                    netns=pod.netns, ifname=ifname, cid=pod.cid, args="",
                )  # fmt: skip
        else:
            args = (
                f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod.name};"
                f"K8S_POD_UID={pod.uid};K8S_POD_INFRA_CONTAINER_ID={pod.cid}"
            )
            exec_cni(
                str(self.installed.jaring), command, self.meta(variant == "daemon"),
                netns=pod.netns, ifname="eth0", cid=pod.cid, args=args,
            )  # fmt: skip
        return (time.perf_counter() - start) * 1000

    # the daemon
    def start_daemon(self, *, log: Path) -> None:
        argv = [
            str(self.installed.bin / "jaring-node"),
            "--socket",
            str(self.socket),
            "--http",
            "127.0.0.1:0",
        ]
        argv += ["--kubeconfig", str(self.kubeconfig), "--node-name", NODE]
        with log.open("wb") as out:
            self.daemon = subprocess.Popen(argv, stderr=out, stdout=out, start_new_session=True)
        deadline = time.monotonic() + 30
        while not self.http:
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jaring-node did not start: {log.read_text()[-2000:]}")
            for line in log.read_text().splitlines():
                doc = json.loads(line) if line.startswith("{") else {}
                if doc.get("msg") == "serving":
                    self.http = doc["http"]
            time.sleep(0.05)

    def metric(self, name: str, labels: str = "") -> float:
        with urllib.request.urlopen(f"http://{self.http}/metrics", timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(name + labels + " ") or line.startswith(name + labels + "{"):
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    def wait_cached(self, pods: int, nads: int, timeout: float = 120) -> float:
        start = time.monotonic()
        while (
            self.metric("jaring_cache_objects", '{kind="pod"}') < pods
            or self.metric("jaring_cache_objects", '{kind="nad"}') < nads
        ):
            if time.monotonic() - start > timeout:
                raise RuntimeError("the daemon's caches did not fill")
            time.sleep(0.05)
        return time.monotonic() - start

    def daemon_ms(self, log: Path) -> dict[str, float]:
        """Median time the daemon itself spent per ADD and DEL (its request log)."""
        spent: dict[str, list[float]] = {"ADD": [], "DEL": []}
        for line in log.read_text().splitlines():
            doc = json.loads(line) if line.startswith("{") else {}
            if doc.get("msg") == "request" and doc.get("verb") in spent:
                spent[doc["verb"]].append(float(doc["ms"]))
        return {verb: statistics.median(ms) for verb, ms in spent.items() if ms}

    def rss_mb(self) -> float:
        assert self.daemon is not None
        return rss_kb(self.daemon.pid) / 1024

    def stop_daemon(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.daemon.pid, signal.SIGKILL)
                self.daemon.wait(5)
        self.daemon = None
        self.http = ""


def claim_default_socket() -> bool | None:
    """Whether the default socket's folder had to be made (the caller removes it),
    or None when something is at the default socket already (then the bench's own
    path is used, and the config names it). At the default, (c) runs the config a
    node has: it names no `daemonSocket`, so the binary reads no JSON to find it."""
    if DEFAULT_SOCKET.exists() or DEFAULT_SOCKET.is_symlink():
        return None
    made = not DEFAULT_SOCKET.parent.exists()
    DEFAULT_SOCKET.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return made


def release_default_socket(made_dir: bool) -> None:
    if DEFAULT_SOCKET.is_socket():
        DEFAULT_SOCKET.unlink()
    if made_dir:
        with contextlib.suppress(OSError):
            DEFAULT_SOCKET.parent.rmdir()


def create_pod(
    api: ApiServer, namespace: str, name: str, uid: str, annotations: dict[str, str]
) -> None:
    meta = {"name": name, "namespace": namespace, "uid": uid, "annotations": annotations}
    spec = {"nodeName": NODE, "containers": [{"name": "c", "image": "pause"}]}
    api.create(
        f"/api/v1/namespaces/{namespace}/pods",
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec},
    )


def rss_kb(pid: int) -> int:
    """Resident memory of a process and its children (the daemon's helpers)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


# -- the patterns -----------------------------------------------------------------------


Samples = dict[str, dict[str, dict[str, list[float]]]]  # pattern -> variant -> verb -> ms


def single(bench: Bench, variant: str, n: int, out: Samples) -> None:
    for pod in bench.pods[:n]:
        out["single"][variant]["ADD"].append(bench.op(variant, "ADD", pod))
        out["single"][variant]["DEL"].append(bench.op(variant, "DEL", pod))


def back_to_back(bench: Bench, variant: str, n: int, out: Samples) -> None:
    for pod in bench.pods[:n]:
        out["back-to-back"][variant]["ADD"].append(bench.op(variant, "ADD", pod))
    for pod in bench.pods[:n]:
        out["back-to-back"][variant]["DEL"].append(bench.op(variant, "DEL", pod))


def concurrent(bench: Bench, variant: str, rounds: int, out: Samples) -> None:
    with ThreadPoolExecutor(8) as pool:
        for r in range(rounds):
            group = bench.pods[r * 8 : r * 8 + 8]
            for verb in ("ADD", "DEL"):
                out["8-concurrent"][variant][verb] += list(
                    pool.map(lambda pod, verb=verb: bench.op(variant, verb, pod), group)
                )


def start_warm(bench: Bench, log: Path, pods: int) -> None:
    bench.start_daemon(log=log)
    bench.wait_cached(pods, 1)
    bench.op("daemon", "ADD", bench.pods[0])  # first use: delegates, API connections
    bench.op("daemon", "DEL", bench.pods[0])


def api_requests(bench: Bench, api: ApiServer, n: int = 20) -> list[str]:
    """Requests per ADD through the warm daemon, Events on, from kmock's record."""

    def settle() -> None:  # Events are posted after the answer: wait for quiet
        deadline = time.monotonic() + 10
        last = api.request_counts()
        while time.monotonic() < deadline:
            time.sleep(0.3)
            now = api.request_counts()
            if now == last:
                return
            last = now

    n = min(n, len(bench.pods))
    bench.events = True
    settle()
    before = api.request_counts()
    for pod in bench.pods[:n]:
        bench.op("daemon", "ADD", pod)
    settle()
    counts: Counter[str] = api.request_counts() - before
    for pod in bench.pods[:n]:
        bench.op("daemon", "DEL", pod)
    bench.events = False
    per = {k: v / n for k, v in counts.items()}
    return [
        "API requests per ADD with the daemon (kmock record): "
        f"reads (GET) {per.get('GET', 0):.2f}, status writes (PATCH) "
        f"{per.get('PATCH', 0):.2f}, Event posts (POST, after the answer) {per.get('POST', 0):.2f}"
    ]


def memory_at_scale(tmp: Path, installed: UserInstall, nads: int, pods: int) -> list[str]:
    """The daemon's RSS with `nads` NADs and `pods` pods of its node, on a fresh API."""
    tmp.mkdir()
    with ApiServer() as api:
        bench = Bench(tmp, api, uuid.uuid4().hex[:5], installed)
        api.kubeconfig(bench.kubeconfig)
        data = dict(bench.data)

        def nad(i: int) -> None:
            api.nad(f"ns{i % 50}", f"scale-{i}", dict(data, name=f"scale-{i}"))

        def pod(i: int) -> None:
            annotations = {NETWORKS: f"scale-{i}", "app.kubernetes.io/name": f"app{i}"}
            create_pod(api, f"ns{i % 50}", f"scale-{i}", uuid.uuid4().hex, annotations)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(nad, range(nads)))
            list(pool.map(pod, range(pods)))
        try:
            bench.start_daemon(log=tmp / "node.log")
            took = bench.wait_cached(pods, nads)
            return [
                f"daemon RSS with {nads} NADs and {pods} pods of its node cached: "
                f"{bench.rss_mb():.1f} MB (caches filled in {took:.1f} s after start)"
            ]
        finally:
            bench.stop_daemon()


# -- the report -------------------------------------------------------------------------


def report(samples: Samples, extra: list[str]) -> None:
    print(f"{'pattern':13} {'verb':4} " + " ".join(f"{LABELS[v]:>22}" for v in VARIANTS))
    for pattern, variants in samples.items():
        for verb in ("ADD", "DEL"):
            base = statistics.median(variants["direct"][verb])
            cells = []
            for variant in VARIANTS:
                med = statistics.median(variants[variant][verb])
                ratio = "" if variant == "direct" else f" x{med / base:.2f}"
                cells.append(f"{f'{med:.1f} ms{ratio}':>22}")
            print(f"{pattern:13} {verb:4} " + " ".join(cells))
    for line in extra:
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20, help="single-pod iterations")
    parser.add_argument("--b2b", type=int, default=100, help="pods back to back")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 8 concurrent pods")
    parser.add_argument("--nads", type=int, default=1000, help="NADs for the memory check")
    parser.add_argument("--node-pods", type=int, default=200, help="pods for the memory check")
    parser.add_argument(
        "--dev-venv", action="store_true", help="measure the venv's scripts, not a plain install"
    )
    opts = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_daemon: needs root (network namespaces)", file=sys.stderr)
        return 1
    tag = uuid.uuid4().hex[:5]
    tmp = Path(tempfile.mkdtemp(prefix="jaring-bench-daemon-"))
    pods = max(opts.n, opts.b2b, opts.rounds * 8)
    samples: Samples = {
        p: {v: {"ADD": [], "DEL": []} for v in VARIANTS}
        for p in ("single", "back-to-back", "8-concurrent")
    }
    extra: list[str] = []
    patterns: dict[str, Callable[[Bench, str], None]] = {
        "single": lambda b, v: single(b, v, opts.n, samples),
        "back-to-back": lambda b, v: back_to_back(b, v, opts.b2b, samples),
        "8-concurrent": lambda b, v: concurrent(b, v, opts.rounds, samples),
    }
    try:
        installed = None if opts.dev_venv else user_install(tmp)
        bench = Bench(tmp, None, tag, installed or dev_install())
        inside: dict[str, list[float]] = {"ADD": [], "DEL": []}
        claimed = claim_default_socket()
        if claimed is not None:
            bench.socket = DEFAULT_SOCKET
        try:
            bench.setup(pods)
            for variant in VARIANTS:
                for name, pattern in patterns.items():
                    with ApiServer() as api:
                        bench.use(api)
                        if variant == "daemon":
                            log = tmp / f"node-{name}.log"
                            start_warm(bench, log, pods)
                        pattern(bench, variant)
                        if variant == "daemon":
                            bench.stop_daemon()
                            for verb, ms in bench.daemon_ms(log).items():
                                inside[verb].append(ms)
            extra.append(
                "inside the daemon (median of its request log per pattern): "
                + ", ".join(f"{verb} {statistics.median(ms):.1f} ms" for verb, ms in inside.items())
                + "; the rest of (c) is the jaring binary's interpreter start and the socket"
            )
            with ApiServer() as api:
                bench.use(api)
                start_warm(bench, tmp / "node-api.log", pods)
                extra += api_requests(bench, api)
                extra.append(f"daemon RSS after 20 ADD/DEL: {bench.rss_mb():.1f} MB")
                bench.stop_daemon()
        finally:
            bench.cleanup()
            if claimed is not None:
                release_default_socket(claimed)
        extra.append(f"daemon socket: {bench.socket}")
        extra += memory_at_scale(tmp / "scale", bench.installed, opts.nads, opts.node_pods)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"bench_daemon: eth0 bridge + net1 macvlan, host-local; single n={opts.n}, "
        f"back-to-back {opts.b2b}, 8-concurrent x{opts.rounds}; medians per pod operation; "
        f"interpreter {os.path.realpath(sys.executable)}"
    )
    print(f"jaring binary: {bench.installed.jaring}")
    report(samples, extra)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
