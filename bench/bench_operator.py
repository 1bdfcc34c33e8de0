"""jaring-operator under a burst: N NADs created at once, time until every one has its
Ready condition, and the operator's peak memory (issue 5, "Measure").

The operator runs as its own process (the installed `jaring-operator`, webhooks on)
against a kmock API server in this process; 10% of the NADs are invalid so both paths
run. Baseline in the same run: a burst of 10 NADs (per-NAD latency) and the idle
operator's RSS. Prints the time to all conditions, NADs/s, peak RSS (VmHWM) and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import aiohttp
import kmock

# One kmock-for-Kopf for tests and bench: tests/operator/emulator.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.operator.emulator import Emulator  # after the path above

NADS = "k8s.cni.cncf.io/v1/network-attachment-definitions"
GOOD = {
    "cniVersion": "1.0.0",
    "type": "macvlan",
    "master": "eth0",
    "mode": "bridge",
    "ipam": {"type": "host-local", "subnet": "10.1.0.0/16"},
}
BAD = {"cniVersion": "1.0.0", "type": "macvlan", "mode": "sideways"}


class Cluster:
    """kmock on its own thread and loop, so the bench's own waiting never slows it."""

    def __init__(self) -> None:
        self.url = ""
        self.emulator: Emulator | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Cluster:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("kmock did not start")
        return self

    def __exit__(self, *_: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        info = kmock.ResourceInfo
        async with Emulator() as emulator, kmock.Server(emulator) as server:
            emulator.resources[NADS] = info(
                kind="NetworkAttachmentDefinition",
                namespaced=True,
                subresources={"status"},
                verbs={"list", "watch", "get", "patch", "create"},
            )
            emulator.resources["v1/pods"] = info(
                kind="Pod", namespaced=True, verbs={"list", "watch"}
            )
            emulator.resources["v1/namespaces"] = info(
                kind="Namespace", namespaced=False, verbs={"list", "watch"}
            )
            emulator.resources["v1/events"] = info(kind="Event", namespaced=True, verbs={"create"})
            self.emulator = emulator
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def ready_count(self, namespace: str) -> tuple[int, int]:
        """(NADs with a Ready condition, of which False) in `namespace`: read in place."""
        assert self.emulator is not None
        done = bad = 0
        for (res, ns, _), obj in list(self.emulator.objects.items()):
            if res.plural != "network-attachment-definitions" or ns != namespace or obj.deleted:
                continue
            for cond in (obj.get("status") or {}).get("conditions") or []:
                if cond.get("type") == "Ready":
                    done += 1
                    bad += cond.get("status") == "False"
        return done, bad


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak RSS) in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


async def create_all(url: str, namespace: str, count: int, concurrency: int) -> float:
    """POST `count` NADs with `concurrency` requests in flight; returns the seconds taken."""
    path = f"{url}/apis/k8s.cni.cncf.io/v1/namespaces/{namespace}/network-attachment-definitions"
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            config = BAD if i % 10 == 9 else GOOD
            body = {
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": f"net-{i:05d}", "namespace": namespace},
                "spec": {"config": json.dumps({**config, "name": f"net-{i:05d}"})},
            }
            async with gate, session.post(path, json=body) as resp:
                resp.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(count)))
    return time.monotonic() - started


def burst(
    cluster: Cluster, pid: int, namespace: str, *, count: int, concurrency: int, timeout: float
) -> dict[str, float]:
    started = time.monotonic()
    created = asyncio.run(create_all(cluster.url, namespace, count, concurrency))
    peak_rss = 0
    while True:
        done, bad = cluster.ready_count(namespace)
        peak_rss = max(peak_rss, proc_status(pid)["VmRSS"])
        if done >= count:
            break
        if time.monotonic() - started > timeout:
            raise SystemExit(f"only {done}/{count} NADs got a condition in {timeout:.0f} s")
        time.sleep(0.25)
    elapsed = time.monotonic() - started
    expected_bad = sum(1 for i in range(count) if i % 10 == 9)
    if bad != expected_bad:
        raise SystemExit(f"{bad} NADs Ready=False, expected {expected_bad}")
    return {"elapsed": elapsed, "created": created, "rss_kib": peak_rss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nads", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100, help="POSTs in flight")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    operator = Path(sys.executable).parent / "jaring-operator"
    with Cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp, "kubeconfig")
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "k", "cluster": {"server": cluster.url}}],
                    "users": [{"name": "u", "user": {"token": "bench"}}],
                    "contexts": [{"name": "k", "context": {"cluster": "k", "user": "u"}}],
                    "current-context": "k",
                }
            )
        )
        health = f"http://127.0.0.1:{free_port()}/healthz"
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "JARING_CERT_DIR": f"{tmp}/certs",
            "JARING_WEBHOOK_PORT": str(free_port()),
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        log = open(Path(tmp, "operator.log"), "wb")  # noqa: SIM115  # closed in finally
        proc = subprocess.Popen(
            [str(operator), "--liveness", health], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(health, timeout=1) as resp:
                        resp.read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("jaring-operator did not start") from None
                    time.sleep(0.1)
            idle = proc_status(proc.pid)["VmRSS"]
            small = burst(
                cluster,
                proc.pid,
                "warmup",
                count=10,
                concurrency=args.concurrency,
                timeout=args.timeout,
            )
            big = burst(
                cluster,
                proc.pid,
                "burst",
                count=args.nads,
                concurrency=args.concurrency,
                timeout=args.timeout,
            )
            peak = proc_status(proc.pid)["VmHWM"]
            operator_cpu = cpu_seconds(proc.pid)
            own_cpu = time.process_time()
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()
    per_small = small["elapsed"] / 10 * 1000
    per_big = big["elapsed"] / args.nads * 1000
    print(f"operator idle RSS                    {idle / 1024:8.1f} MiB")
    print(
        f"baseline: 10 NADs at once            {small['elapsed']:8.2f} s ({per_small:.1f} ms/NAD)"
    )
    print(
        f"{args.nads} NADs at once: created in      {big['created']:8.2f} s "
        f"({args.concurrency} POSTs in flight)"
    )
    print(
        f"{args.nads} NADs at once: all have Ready  {big['elapsed']:8.2f} s "
        f"({args.nads / big['elapsed']:.0f} NADs/s, {per_big:.1f} ms/NAD, "
        f"{per_big / per_small:.2f}x the baseline's per-NAD time)"
    )
    print(
        f"  of which after the last POST       {big['elapsed'] - big['created']:8.2f} s "
        "(the rest is kmock storing the burst)"
    )
    print(f"operator peak RSS (VmHWM)            {peak / 1024:8.1f} MiB ({peak / idle:.2f}x idle)")
    print(f"CPU: operator {operator_cpu:.1f} s, kmock + bench {own_cpu:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
