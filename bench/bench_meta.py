"""ADD/DEL cost of the `jaring` binary over calling its delegates directly.

Workload (issue 2): a pod netns with the cluster network (reference `bridge`,
host-local IPAM) as eth0 and one `macvlan` attachment (host-local) over a
veth end. (a) execs the two reference plugins directly, as a runtime would
with no meta-plugin; (b) execs the installed `jaring` standalone (the shim jaring-install writes,
over a plain install of this checkout), which reads
the pod and NAD from kmock and delegates to the same binaries. Prints medians,
the ratio and jaring's overhead per ADD/DEL. (b) runs twice: against kmock's
plain HTTP port, and over HTTPS with the kubeconfig's CA as a node's jaring
talks to a real API server (TLS in front of kmock, in this process).
Root; cleans up after itself.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kapi import ApiServer, Pki
from userinstall import dev_install, user_install

CNI_PATH = os.environ.get("JARING_BENCH_CNI_PATH", "/usr/lib/cni")
JARING = Path(os.environ.get("JARING_BENCH_BINARY") or Path(sys.executable).parent / "jaring")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def cni(
    plugin: str,
    command: str,
    conf: dict[str, Any],
    *,
    netns: str,
    ifname: str,
    cid: str,
    args: str = "",
    binary: Path = JARING,
) -> bytes:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": f"/var/run/netns/{netns}",
        "CNI_IFNAME": ifname,
        "CNI_PATH": CNI_PATH,
        "CNI_ARGS": args,
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    }
    exe = str(binary) if plugin == "jaring" else f"{CNI_PATH}/{plugin}"
    proc = subprocess.run(
        [exe], input=json.dumps(conf).encode(), env=env, capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{plugin} {command} failed: {proc.stdout!r} {proc.stderr!r}")
    return proc.stdout


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sequence(
    command: str,
    steps: list[tuple[str, dict[str, Any], str, str]],
    netns: str,
    cid: str,
    binary: Path,
) -> tuple[float, float]:
    """Run each (plugin, config, ifname, CNI_ARGS) step: (wall ms, CPU ms).

    CPU time (user + system of the processes run and waited for) is far less
    sensitive than wall time to whatever else the machine is doing.
    """
    start, cpu = time.perf_counter(), _children_cpu()
    for plugin, conf, ifname, args in steps:
        cni(plugin, command, conf, netns=netns, ifname=ifname, cid=cid, args=args, binary=binary)
    return (time.perf_counter() - start) * 1000, (_children_cpu() - cpu) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=30, help="iterations per variant")
    parser.add_argument(
        "--dev-venv", action="store_true", help="measure the venv's jaring, not a plain install"
    )
    opts = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_meta: needs root (network namespaces)", file=sys.stderr)
        return 1
    tag = uuid.uuid4().hex[:6]
    bridge, master, peer = f"jbb{tag}", f"jbm{tag}", f"jbp{tag}"
    tmp = Path(tempfile.mkdtemp(prefix="jaring-bench-"))
    jaring_binary = JARING
    if not opts.dev_venv and "JARING_BENCH_BINARY" not in os.environ:
        jaring_binary = (user_install(tmp) or dev_install()).jaring
    cluster: dict[str, Any] = {
        "cniVersion": "1.0.0",
        "name": f"bench-cluster-{tag}",
        "type": "bridge",
        "bridge": bridge,
        "isGateway": True,
        "ipam": {"type": "host-local", "subnet": "10.231.0.0/16", "dataDir": str(tmp / "ipam")},
    }
    data: dict[str, Any] = {
        "cniVersion": "1.0.0",
        "name": f"bench-data-{tag}",
        "type": "macvlan",
        "master": master,
        "mode": "bridge",
        "ipam": {"type": "host-local", "subnet": "10.232.0.0/16", "dataDir": str(tmp / "ipam")},
    }
    ip("link", "add", master, "type", "veth", "peer", "name", peer)
    ip("link", "set", master, "up")
    variants = ("direct", "jaring", "https")
    results: dict[str, dict[str, list[tuple[float, float]]]] = {
        v: {"ADD": [], "DEL": []} for v in variants
    }
    (tmp / "pki").mkdir()
    api = ApiServer(tls=Pki.make(tmp / "pki"))
    try:
        with api:
            api.nad("default", "data", data)
            kubeconfig = api.kubeconfig(tmp / "kubeconfig")
            meta = {
                "cniVersion": "1.0.0",
                "name": "jaring",
                "type": "jaring",
                "kubeconfig": str(kubeconfig),
                "cniDir": str(tmp / "cache"),
                "daemonSocket": "",
                "delegates": [cluster],
            }
            over_tls = {**meta, "kubeconfig": str(api.kubeconfig(tmp / "tls", tls=True))}
            for i in range(opts.n):
                for variant in variants:
                    netns, cid = f"jb{tag}{variant[0]}{i}", uuid.uuid4().hex
                    ip("netns", "add", netns)
                    try:
                        steps: list[tuple[str, dict[str, Any], str, str]]
                        if variant == "direct":
                            steps = [("bridge", cluster, "eth0", ""), ("macvlan", data, "net1", "")]
                        else:
                            pod, uid = f"p{variant[0]}{i}", uuid.uuid4().hex
                            api.pod("default", pod, uid, {"k8s.v1.cni.cncf.io/networks": "data"})
                            args = (
                                f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};"
                                f"K8S_POD_UID={uid};K8S_POD_INFRA_CONTAINER_ID={cid}"
                            )
                            conf = over_tls if variant == "https" else meta
                            steps = [("jaring", conf, "eth0", args)]
                        results[variant]["ADD"].append(
                            sequence("ADD", steps, netns, cid, jaring_binary)
                        )
                        steps.reverse()
                        results[variant]["DEL"].append(
                            sequence("DEL", steps, netns, cid, jaring_binary)
                        )
                    finally:
                        subprocess.run(
                            ["ip", "netns", "del", netns], check=False, capture_output=True
                        )
            requests = api.request_counts()
            # kmock is an emulator in this process: its own latency per request
            # is part of (b) and would be ~1 ms against a real API server.
            probe = []
            for _ in range(30):
                start = time.perf_counter()
                api.get(
                    "/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/data"
                )
                probe.append((time.perf_counter() - start) * 1000)
            kmock_ms = statistics.median(probe)
    finally:
        subprocess.run(["ip", "link", "del", master], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"bench_meta: eth0 bridge + net1 macvlan, host-local, n={opts.n}, "
        f"interpreter {os.path.realpath(sys.executable)}"
    )
    print(f"jaring binary: {jaring_binary}")
    print(
        f"{'':9} {'direct ms':>10} {'jaring ms':>10} {'ratio':>6} {'overhead ms':>12}"
        f" {'https ms':>9} {'ratio':>6} {'overhead ms':>12}"
    )
    for verb in ("ADD", "DEL"):
        for column, label in ((0, "wall"), (1, "cpu")):
            a = statistics.median(r[column] for r in results["direct"][verb])
            b = statistics.median(r[column] for r in results["jaring"][verb])
            c = statistics.median(r[column] for r in results["https"][verb])
            print(
                f"{verb:4} {label:4} {a:10.1f} {b:10.1f} {b / a:6.2f} {b - a:12.1f}"
                f" {c:9.1f} {c / a:6.2f} {c - a:12.1f}"
            )
    pods = 2 * opts.n  # jaring's runs: plain HTTP and HTTPS
    requests["POST"] -= pods + 1  # the bench's own seeding of pods and the NAD
    print(
        "jaring's API requests per pod (ADD+DEL, kmock record):",
        ", ".join(f"{k} {v / pods:.2f}" for k, v in sorted(requests.items()) if v),
    )
    print(f"kmock's own latency per GET (median, from this process): {kmock_ms:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
