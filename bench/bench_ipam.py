"""host-local IPAM ADD and DEL: native in-process against the reference binary.

Same config for every variant, each on its own fresh dataDir: (a) exec of
/usr/lib/cni/host-local, the baseline; (b) jaring's host-local PLUGIN called
in-process (what the link plugins and the node daemon do); (c) the
`jaring-host-local` executable. Prints medians of wall and CPU time per verb and
the ratio to the reference measured in the same run. Needs no root.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

CNI_PATH = os.environ.get("JARING_BENCH_CNI_PATH", "/usr/lib/cni")
NATIVE_BINARY = Path(sys.executable).parent / "jaring-host-local"

Call = Callable[[str, str], None]  # (command, container ID)


def conf(data_dir: Path, dual: bool) -> dict[str, Any]:
    ipam: dict[str, Any] = {"type": "host-local", "dataDir": str(data_dir)}
    if dual:
        ipam["ranges"] = [[{"subnet": "10.233.0.0/16"}], [{"subnet": "fd00:233::/64"}]]
    else:
        ipam["subnet"] = "10.233.0.0/16"
    ipam["routes"] = [{"dst": "0.0.0.0/0"}]
    return {"cniVersion": "1.0.0", "name": "bench-ipam", "type": "bridge", "ipam": ipam}


def exec_call(binary: str, config: dict[str, Any]) -> Call:
    stdin = json.dumps(config).encode()

    def call(command: str, container_id: str) -> None:
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": "/var/run/netns/bench-none",
            "CNI_IFNAME": "eth0",
            "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench",
            "CNI_PATH": CNI_PATH,
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        proc = subprocess.run([binary], input=stdin, env=env, capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{binary} {command} failed: {proc.stdout!r} {proc.stderr!r}")

    return call


def inprocess_call(config: dict[str, Any]) -> Call:
    from jaring.cni.plugin import Request, parse_cni_args
    from jaring.delegates.hostlocal import PLUGIN

    stdin = json.dumps(config).encode()
    args = parse_cni_args("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench")

    def call(command: str, container_id: str) -> None:
        req = Request.build(
            command,
            stdin,
            container_id=container_id,
            netns="/var/run/netns/bench-none",
            ifname="eth0",
            args=args,
            path=(CNI_PATH,),
        )
        if command == "ADD":
            PLUGIN.add(req)
        else:
            PLUGIN.delete(req)

    return call


def cpu_seconds() -> float:
    """This process's CPU plus that of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(call: Call, command: str, container_id: str) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    call(command, container_id)
    return (time.perf_counter() - wall) * 1000, (cpu_seconds() - cpu) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=100, help="ADD+DEL pairs per variant")
    parser.add_argument("--dual", action="store_true", help="dual-stack (two range sets)")
    parser.add_argument(
        "--held", type=int, default=50, help="addresses held by other containers during the run"
    )
    opts = parser.parse_args()
    reference = os.path.join(CNI_PATH, "host-local")
    if not os.access(reference, os.X_OK):
        print(f"bench_ipam: no reference plugin at {reference}", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="jaring-bench-ipam-"))
    variants: dict[str, Call] = {}
    try:
        variants["reference exec"] = exec_call(reference, conf(tmp / "ref", opts.dual))
        variants["native in-process"] = inprocess_call(conf(tmp / "inproc", opts.dual))
        if NATIVE_BINARY.exists():
            variants["jaring-host-local"] = exec_call(
                str(NATIVE_BINARY), conf(tmp / "exec", opts.dual)
            )
        results: dict[str, dict[str, list[tuple[float, float]]]] = {
            name: {"ADD": [], "DEL": []} for name in variants
        }
        for call in variants.values():
            # A store as a node has it: other pods' addresses are read on every call.
            for k in range(opts.held):
                call("ADD", f"held-{k}")
            call("ADD", "warm-up")
            call("DEL", "warm-up")
        for i in range(opts.n):
            for name, call in variants.items():  # interleaved: drift hits all alike
                cid = f"bench-{i}"
                results[name]["ADD"].append(measure(call, "ADD", cid))
                results[name]["DEL"].append(measure(call, "DEL", cid))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"bench_ipam: host-local {'dual-stack' if opts.dual else 'IPv4'}, n={opts.n}, "
        f"{opts.held} addresses held, interpreter {os.path.realpath(sys.executable)}"
    )
    base = results["reference exec"]
    print(f"{'variant':20} {'verb':4} {'wall ms':>8} {'ratio':>6} {'cpu ms':>8} {'ratio':>6}")
    for name, per_verb in results.items():
        for verb in ("ADD", "DEL", "both"):
            rows = (
                [(a[0] + d[0], a[1] + d[1]) for a, d in zip(*per_verb.values(), strict=True)]
                if verb == "both"
                else per_verb[verb]
            )
            ref_rows = (
                [(a[0] + d[0], a[1] + d[1]) for a, d in zip(*base.values(), strict=True)]
                if verb == "both"
                else base[verb]
            )
            wall = statistics.median(r[0] for r in rows)
            cpu = statistics.median(r[1] for r in rows)
            ref_wall = statistics.median(r[0] for r in ref_rows)
            ref_cpu = statistics.median(r[1] for r in ref_rows)
            print(
                f"{name:20} {verb:4} {wall:8.2f} {wall / ref_wall:6.2f} "
                f"{cpu:8.2f} {cpu / ref_cpu:6.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
