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

CNI_PATH = os.environ.get("JARING_BENCH_CNI_PATH", "/usr/lib/cni")
BIN = Path(sys.executable).parent
NODE = "bench-node"
NETWORKS = "k8s.v1.cni.cncf.io/networks"
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
    api: ApiServer
    tag: str
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
        self.kubeconfig = self.api.kubeconfig(self.tmp / "kubeconfig")
        self.socket = self.tmp / "run" / "jaring.sock"

    def meta(self, daemon: bool) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": "jaring",
            "type": "jaring",
            "kubeconfig": str(self.kubeconfig),
            "cniDir": str(self.tmp / "cache"),
            "daemonSocket": str(self.socket) if daemon else "",
            # kmock answers slower the more objects it holds (Events pile up
            # at two per ADD): timed runs keep its store steady. Events are
            # counted, posted, in the API-requests run below.
            "events": self.events,
            "delegates": [self.cluster],
        }

    # the host side
    def setup(self, pods: int) -> None:
        ip("link", "add", self.master, "type", "veth", "peer", "name", self.peer)
        ip("link", "set", self.master, "up")
        self.api.nad("default", "data", self.data)
        for i in range(pods):
            pod = Pod(f"p{i}", uuid.uuid4().hex, f"jd{self.tag}{i}")
            ip("netns", "add", pod.netns)
            self.pods.append(pod)
            create_pod(self.api, "default", pod.name, pod.uid, {NETWORKS: "data"})

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
                str(BIN / "jaring"), command, self.meta(variant == "daemon"),
                netns=pod.netns, ifname="eth0", cid=pod.cid, args=args,
            )  # fmt: skip
        return (time.perf_counter() - start) * 1000

    # the daemon
    def start_daemon(self, *, log: Path) -> None:
        argv = [str(BIN / "jaring-node"), "--socket", str(self.socket), "--http", "127.0.0.1:0"]
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


def api_counts(api: ApiServer, run: Callable[[], None], settle: Callable[[], None]) -> Counter[str]:
    settle()  # Events of earlier runs are still being posted
    before = api.request_counts()
    run()
    settle()
    return api.request_counts() - before


def memory_at_scale(tmp: Path, nads: int, pods: int) -> list[str]:
    """The daemon's RSS with `nads` NADs and `pods` pods of its node, on a fresh API."""
    tmp.mkdir()
    with ApiServer() as api:
        bench = Bench(tmp, api, uuid.uuid4().hex[:5])
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
    try:
        with ApiServer() as api:
            bench = Bench(tmp, api, tag)
            try:
                bench.setup(pods)
                for variant in VARIANTS:
                    if variant == "daemon":
                        bench.start_daemon(log=tmp / "node.log")
                        bench.wait_cached(pods, 1)
                        bench.op(variant, "ADD", bench.pods[0])  # first use: loads delegates
                        bench.op(variant, "DEL", bench.pods[0])
                    single(bench, variant, opts.n, samples)
                    back_to_back(bench, variant, opts.b2b, samples)
                    concurrent(bench, variant, opts.rounds, samples)
                # API requests per ADD, daemon warm: ADD only, Events drained.
                one = bench.pods[: min(20, len(bench.pods))]

                def adds() -> None:
                    for pod in one:
                        bench.op("daemon", "ADD", pod)

                def settle() -> None:
                    deadline = time.monotonic() + 10
                    last = api.request_counts()
                    while time.monotonic() < deadline:
                        time.sleep(0.3)
                        now = api.request_counts()
                        if now == last:
                            return
                        last = now

                inside = bench.daemon_ms(tmp / "node.log")
                extra.append(
                    "inside the daemon (its request log, all timed runs): "
                    + ", ".join(f"{verb} {ms:.1f} ms" for verb, ms in inside.items())
                    + "; the rest of (c) is the jaring binary's interpreter start and socket"
                )
                bench.events = True
                counts = api_counts(api, adds, settle)
                for pod in one:
                    bench.op("daemon", "DEL", pod)
                per = {k: v / len(one) for k, v in counts.items()}
                extra.append(
                    "API requests per ADD with the daemon (kmock record): "
                    f"reads (GET) {per.get('GET', 0):.2f}, status writes (PATCH) "
                    f"{per.get('PATCH', 0):.2f}, Event posts (POST, async) {per.get('POST', 0):.2f}"
                )
                extra.append(f"daemon RSS after the runs above: {bench.rss_mb():.1f} MB")
                bench.stop_daemon()
            finally:
                bench.cleanup()
        extra += memory_at_scale(tmp / "scale", opts.nads, opts.node_pods)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"bench_daemon: eth0 bridge + net1 macvlan, host-local; single n={opts.n}, "
        f"back-to-back {opts.b2b}, 8-concurrent x{opts.rounds}; medians per pod operation; "
        f"interpreter {os.path.realpath(sys.executable)}"
    )
    report(samples, extra)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
