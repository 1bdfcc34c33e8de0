"""Native delegates vs the reference plugins: ADD and DEL, same config, same run.

For bridge and macvlan (host-local IPAM): the reference binary exec'd from
/usr/lib/cni, jaring's `PLUGIN` called in-process (what the meta-plugin and
node daemon do), and the standalone `jaring-<type>` executable. Each
iteration gets a fresh netns (not timed); runners are interleaved so drift
hits all alike. Prints medians and the ratio to the reference; the target
is in-process <= 0.5 x reference. DEL is dominated by the kernel's link
unregister (~25 ms here, RCU grace periods), the same for every runner, so
ADD is reported on its own too. Root only. Not a test.

    .venv/bin/python bench/bench_delegates.py [--iterations 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jaring.cni.plugin import Request
from jaring.cni.registry import load

REFERENCE = Path("/usr/lib/cni")
VENV_BIN = Path(sys.executable).parent
TARGET = 0.5


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def config(plugin_type: str, *, tag: str, data_dir: Path, master: str) -> dict[str, Any]:
    ipam = {
        "type": "host-local",
        "dataDir": str(data_dir),
        "ranges": [[{"subnet": "10.123.0.0/16"}]],
    }
    conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": f"bench{tag}", "type": plugin_type}
    if plugin_type == "bridge":
        conf.update(bridge=f"jbb{tag}", isGateway=True, ipam=ipam)
    else:
        conf.update(master=master, ipam=ipam)
    return conf


Call = Callable[[str, bytes, str, str], None]


def exec_call(binary: Path) -> Call:
    def call(command: str, stdin: bytes, netns: str, container_id: str) -> None:
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": netns,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(REFERENCE),
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        done = subprocess.run([str(binary)], input=stdin, env=env, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{binary.name} {command}: {done.stdout!r} {done.stderr!r}")

    return call


def inproc_call(plugin_type: str) -> Call:
    plugin = load(plugin_type)

    def call(command: str, stdin: bytes, netns: str, container_id: str) -> None:
        req = Request.build(
            command,
            stdin,
            container_id=container_id,
            netns=netns,
            ifname="eth0",
            path=(str(REFERENCE),),
        )
        if command == "ADD":
            plugin.add(req)
        else:
            plugin.delete(req)

    return call


def measure(
    plugin_type: str, iterations: int, warmup: int, tmp: Path
) -> dict[str, dict[str, list[float]]]:
    tag = uuid.uuid4().hex[:6]
    master = f"jbm{tag}"
    sh("ip", "link", "add", master, "type", "veth", "peer", "name", f"{master}p")
    sh("ip", "link", "set", master, "up")
    sh("ip", "link", "set", f"{master}p", "up")
    runners: dict[str, Call] = {
        "reference": exec_call(REFERENCE / plugin_type),
        "in-process": inproc_call(plugin_type),
        f"jaring-{plugin_type}": exec_call(VENV_BIN / f"jaring-{plugin_type}"),
    }
    times: dict[str, dict[str, list[float]]] = {
        name: {"ADD": [], "DEL": [], "ADD+DEL": []} for name in runners
    }
    try:
        for n in range(warmup + iterations):
            for name, call in runners.items():
                # Each runner its own store and bridge, so none sees another's state.
                conf = config(
                    plugin_type, tag=f"{tag}{name[:2]}", data_dir=tmp / name, master=master
                )
                stdin = json.dumps(conf).encode()
                netns = f"jbn{tag}{n}{name[:2]}"
                sh("ip", "netns", "add", netns)
                try:
                    path = f"/run/netns/{netns}"
                    t0 = time.perf_counter()
                    call("ADD", stdin, path, f"c{n}")
                    t1 = time.perf_counter()
                    call("DEL", stdin, path, f"c{n}")
                    t2 = time.perf_counter()
                finally:
                    subprocess.run(["ip", "netns", "del", netns], check=False)
                if n >= warmup:
                    times[name]["ADD"].append(t1 - t0)
                    times[name]["DEL"].append(t2 - t1)
                    times[name]["ADD+DEL"].append(t2 - t0)
    finally:
        subprocess.run(["ip", "link", "del", master], check=False)
        if plugin_type == "bridge":
            for name in runners:
                subprocess.run(["ip", "link", "del", f"jbb{tag}{name[:2]}"], check=False)
    return times


def report(plugin_type: str, times: dict[str, dict[str, list[float]]]) -> bool:
    base = statistics.median(times["reference"]["ADD+DEL"])
    base_add = statistics.median(times["reference"]["ADD"])
    print(f"\n{plugin_type}: median ms (n={len(times['reference']['ADD'])})")
    print(f"  {'runner':<18}{'ADD':>9}{'DEL':>9}{'ADD+DEL':>10}{'vs ref':>9}{'ADD vs ref':>12}")
    for name, series in times.items():
        add, dele, both = (statistics.median(series[k]) * 1000 for k in ("ADD", "DEL", "ADD+DEL"))
        print(
            f"  {name:<18}{add:>9.1f}{dele:>9.1f}{both:>10.1f}"
            f"{both / base / 1000:>9.2f}{add / base_add / 1000:>12.2f}"
        )
    ratio = statistics.median(times["in-process"]["ADD+DEL"]) / base
    add_ratio = statistics.median(times["in-process"]["ADD"]) / base_add
    for what, value in (("ADD+DEL", ratio), ("ADD", add_ratio)):
        verdict = "meets" if value <= TARGET else "MISSES"
        print(f"  in-process / reference, {what}: {value:.2f} ({verdict} the <= {TARGET} target)")
    return ratio <= TARGET


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--types", default="bridge,macvlan")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_delegates needs root (real namespaces)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="jaring-bench-"))
    ok = True
    try:
        for plugin_type in args.types.split(","):
            times = measure(plugin_type, args.iterations, args.warmup, tmp)
            ok = report(plugin_type, times) and ok
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
