"""`jaringctl demo DIR` (`make demo`): the quick start, start to finish.

Applies the manifests in DIR, brings every pod up through the `jaring`
binary, shows each pod's interfaces and network-status, pings from pod to
pod across every network, then tears everything down, also on Ctrl-C.
Called by `ctl.py`; uses the same `Runtime` as `jaringctl up/down`.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaring.cni import selection
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import Namespace

from .ctl_runtime import Runtime, say, shielded
from .ctl_store import NETWORKS_ANNOTATION, POD, Manifest, ObjectKey, load_manifests

DEMO_STATE_DIR = "/var/lib/jaring/demo"
# Apart from the default store's cluster network, so both can be up at once.
DEMO_SUBNET = "10.89.100.0/24"
DEMO_BRIDGE = "jrdemo0"
DEMO_LOCK = Path("/run/lock/jaring-demo.lock")

Run = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)


@dataclass(frozen=True)
class Ping:
    source: str
    source_ifname: str
    target: str
    target_ifname: str
    address: str
    network: str
    ok: bool
    detail: str


class Demo:
    """One run of the quick start against one store."""

    def __init__(
        self,
        runtime: Runtime,
        directory: Path,
        *,
        out: Callable[[str], None] | None = None,
        run: Run = _run,
        lock_path: Path = DEMO_LOCK,
    ) -> None:
        self.lock_path = lock_path
        self.runtime = runtime
        self.directory = directory
        self.out = out or say
        self.run_cmd = run
        self.step_no = 0

    # -- the flow ------------------------------------------------------------

    def run(self) -> int:
        """The whole demo, one at a time per machine: its link names and MAC are fixed."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.out("waiting for another jaringctl demo on this machine to finish ...")
                fcntl.flock(handle, fcntl.LOCK_EX)
            return self._run()

    def _run(self) -> int:
        for tool in ("ip", "ping"):
            if shutil.which(tool) is None:
                raise CniError(
                    Code.IO, f"the demo needs {tool}", "apt-get install iproute2 iputils-ping"
                )
        manifests = load_manifests([str(self.directory)])
        pods = [m for m in manifests if m.key.kind == POD]
        if len(pods) < 2:
            raise CniError(Code.INVALID_CONFIG, f"{self.directory}: the demo needs two pods")
        self._leftovers(manifests)
        failures: list[str] = []
        try:
            self._apply(manifests)
            self._up(pods)
            self._show(pods)
            self._check(pods)
            failures = self._pings(pods)
            self._macs(pods, failures)
            self.step("every pod, as jaringctl sees it", f"jaringctl get pods -o wide{self._sd}")
            self._table(pods)
        finally:
            with shielded():
                made = self._made()
                self._teardown(manifests)
                left = self._left(made)
        if left:
            failures.append("left behind: " + ", ".join(left))
        if failures:
            raise CniError(Code.OTHER, "demo failed: " + "; ".join(failures))
        self.out("")
        self.out("demo passed: every network carried pings between the pods, and nothing is left.")
        guide = self.directory / "README.md"
        if guide.exists():
            self.out(f"What each step did: {guide}")
        return 0

    @property
    def _sd(self) -> str:
        return f" --state-dir {self.runtime.root}"

    def step(self, title: str, command: str = "", *, numbered: bool = True) -> None:
        self.step_no += numbered
        self.out("")
        self.out(f"==> {self.step_no if numbered else 0}. {title}")
        if command:
            self.out(f"    $ {command}")

    def _leftovers(self, manifests: Sequence[Manifest]) -> None:
        """An earlier run that was killed outright: bring its pods down first."""
        runtime = self.runtime
        records = [
            r for r in runtime.records() if ObjectKey(POD, r.namespace, r.name) in _keys(manifests)
        ]
        if not records:
            return
        self.step("clean up what an earlier, interrupted run left", numbered=False)
        with shielded():
            for rec in records:
                runtime.down(namespace=rec.namespace, name=rec.name, force=True)
                self.out(f"    pod {rec.ref} down")

    def _apply(self, manifests: Sequence[Manifest]) -> None:
        self.step(
            f"store the manifests of {self.directory} (validated first)",
            f"jaringctl apply -f {self.directory}{self._sd}",
        )
        with self.runtime.lock():
            for manifest in manifests:
                outcome = self.runtime.store.write(manifest)
                self.out(f"    {manifest.key} {outcome}")

    def _up(self, pods: Sequence[Manifest]) -> None:
        for pod in pods:
            key = pod.key
            self.step(
                f"pod {key.namespace}/{key.name}: netns + CNI ADD through the jaring binary",
                f"jaringctl up {key.namespace}/{key.name} --cluster-subnet {DEMO_SUBNET} "
                f"--cluster-bridge {DEMO_BRIDGE}{self._sd}",
            )
            with self.runtime.lock():
                rec = self.runtime.up(
                    namespace=key.namespace, name=key.name, subnet=DEMO_SUBNET, bridge=DEMO_BRIDGE
                )
            self.out(f"    up: netns {rec.netns}, container id {rec.container_id[:12]}")

    def _show(self, pods: Sequence[Manifest]) -> None:
        for pod in pods:
            key = pod.key
            rec = self.runtime.record(namespace=key.namespace, name=key.name)
            assert rec is not None
            self.step(
                f"pod {key.namespace}/{key.name}: its interfaces and network-status",
                f"jaringctl exec {key.namespace}/{key.name}{self._sd} -- ip -br addr",
            )
            done = self.run_cmd(["ip", "-n", rec.netns, "-br", "addr"])
            for line in done.stdout.splitlines():
                self.out(f"    {line.rstrip()}")
            status = self.runtime.store.network_status(namespace=key.namespace, name=key.name)
            self.out("    k8s.v1.cni.cncf.io/network-status:")
            for line in json.dumps(status, indent=2).splitlines():
                self.out(f"      {line}")

    def _check(self, pods: Sequence[Manifest]) -> None:
        self.step("CNI CHECK: every attachment is still as ADD made it", "jaringctl check POD")
        for pod in pods:
            with self.runtime.lock():
                rec = self.runtime.check(namespace=pod.key.namespace, name=pod.key.name)
            self.out(f"    pod {rec.ref}: passed")

    def _pings(self, pods: Sequence[Manifest]) -> list[str]:
        self.step(
            "ping from pod to pod across every network",
            f"jaringctl exec SOURCE{self._sd} -- ping -c 3 -I IFNAME ADDRESS",
        )
        failures = []
        for source in pods:
            for target in pods:
                if source is target:
                    continue
                for ping in self._ping_all(source.key, target.key):
                    mark = "ok  " if ping.ok else "FAIL"
                    self.out(
                        f"    {mark} {ping.source} {ping.source_ifname} -> {ping.target} "
                        f"{ping.target_ifname} {ping.address} over {ping.network}: {ping.detail}"
                    )
                    if not ping.ok:
                        failures.append(
                            f"{ping.source} -> {ping.target} {ping.address} ({ping.network}): "
                            f"{ping.detail}"
                        )
        return failures

    def _ping_all(self, source: ObjectKey, target: ObjectKey) -> list[Ping]:
        runtime = self.runtime
        rec = runtime.record(namespace=source.namespace, name=source.name)
        assert rec is not None
        src_name = f"{source.namespace}/{source.name}"
        dst_name = f"{target.namespace}/{target.name}"
        addresses = self._addresses(rec.netns)
        status = runtime.store.network_status(namespace=target.namespace, name=target.name) or []
        found = []
        for entry in status:
            for raw in entry.get("ips") or []:
                address = str(raw).split("/", 1)[0]
                ifname = next(
                    (
                        name
                        for name, itf in addresses
                        if ipaddress.ip_address(address) in itf.network
                    ),
                    None,
                )
                common = {
                    "source": src_name,
                    "target": dst_name,
                    "target_ifname": str(entry.get("interface", "?")),
                    "address": address,
                    "network": str(entry.get("name")),
                }
                if ifname is None:
                    found.append(
                        Ping(**common, source_ifname="-", ok=False, detail="no interface there")
                    )
                    continue
                done = self.run_cmd(
                    [
                        *("ip", "netns", "exec", rec.netns),
                        *("ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", ifname, address),
                    ]
                )
                summary = next(
                    (ln for ln in done.stdout.splitlines() if "packets transmitted" in ln),
                    (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"],
                )
                detail = summary if isinstance(summary, str) else summary[0]
                found.append(
                    Ping(**common, source_ifname=ifname, ok=done.returncode == 0, detail=detail)
                )
        return found

    def _addresses(
        self, netns: str
    ) -> list[tuple[str, ipaddress.IPv4Interface | ipaddress.IPv6Interface]]:
        done = self.run_cmd(["ip", "-n", netns, "-j", "addr", "show"])
        try:
            links = json.loads(done.stdout or "[]")
        except ValueError:
            return []
        found = []
        for link in links:
            name = link.get("ifname")
            if name == "lo":
                continue
            for info in link.get("addr_info") or []:
                if info.get("scope") == "link":
                    continue
                found.append(
                    (str(name), ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}"))
                )
        return found

    def _macs(self, pods: Sequence[Manifest], failures: list[str]) -> None:
        """Attachments that asked for a MAC (JSON form) got it."""
        lines = []
        for pod in pods:
            key = pod.key
            annotations: Mapping[str, Any] = pod.body.get("metadata", {}).get("annotations") or {}
            chosen = selection.parse_selection(
                annotations.get(NETWORKS_ANNOTATION, ""), pod_namespace=Namespace(key.namespace)
            )
            status = self.runtime.store.network_status(namespace=key.namespace, name=key.name)
            by_network = {str(e.get("name")): e for e in status or []}
            for attachment in chosen:
                if not attachment.mac:
                    continue
                entry = by_network.get(str(attachment.network), {})
                got = str(entry.get("mac", "")).lower()
                ok = got == attachment.mac.lower()
                lines.append(
                    f"    {'ok  ' if ok else 'FAIL'} {key.namespace}/{key.name} "
                    f"{entry.get('interface', '?')} asked for {attachment.mac}, has {got or '-'}"
                    f" (ips {', '.join(attachment.ips) or '-'} -> "
                    f"{', '.join(map(str, entry.get('ips') or [])) or '-'})"
                )
                if not ok:
                    failures.append(f"{key.name}: MAC {got or '-'} instead of {attachment.mac}")
        if lines:
            self.step("the JSON-form attachment got the address and MAC it asked for")
            for line in lines:
                self.out(line)

    def _table(self, pods: Sequence[Manifest]) -> None:
        for pod in pods:
            key = pod.key
            rec = self.runtime.record(namespace=key.namespace, name=key.name)
            status = self.runtime.store.network_status(namespace=key.namespace, name=key.name)
            interfaces = " ".join(
                f"{e.get('interface')}={'/'.join(map(str, e.get('ips') or []))}"
                for e in status or []
            )
            state = self.runtime.state(namespace=key.namespace, name=key.name)
            netns = rec.netns if rec else "-"
            self.out(f"    {key.namespace}/{key.name}  {state}  {netns}  {interfaces}")

    def _made(self) -> tuple[list[str], list[str]]:
        """The netns and host links this run made, to prove they are gone afterwards."""
        netns = [r.netns for r in self.runtime.records()]
        links = [p.name for p in self.runtime.parts.load() if p.kind in ("master", "bridge")]
        links += [p.peer for p in self.runtime.parts.load() if p.peer]
        return netns, links

    def _left(self, made: tuple[list[str], list[str]]) -> list[str]:
        netns, links = made
        host = self.runtime.host
        left = [f"netns {n}" for n in netns if host.netns_exists(n)]
        left += [f"link {n}" for n in links if host.link_exists(n)]
        return left

    def _teardown(self, manifests: Sequence[Manifest]) -> None:
        """Down every pod (CNI DEL), delete the objects, remove the store if the demo made it."""
        runtime = self.runtime
        self.step("tear everything down", f"jaringctl delete -f {self.directory}{self._sd}")
        problems: list[str] = []
        with runtime.lock():
            for manifest in reversed(manifests):
                key = manifest.key
                if key.kind == POD and runtime.record(namespace=key.namespace, name=key.name):
                    try:
                        runtime.down(namespace=key.namespace, name=key.name, force=True)
                        self.out(
                            f"    pod {key.namespace}/{key.name} down (CNI DEL, netns removed)"
                        )
                    except CniError as exc:
                        problems.append(str(exc))
            for manifest in manifests:
                if runtime.store.remove(manifest.key):
                    self.out(f"    {manifest.key} deleted")
            left = runtime.records()
            if not left and not runtime.parts.load():
                shutil.rmtree(runtime.private, ignore_errors=True)
                shutil.rmtree(runtime.root / ".status", ignore_errors=True)
        _remove_empty_dirs(runtime.root)
        if str(runtime.root) == DEMO_STATE_DIR:
            with contextlib.suppress(OSError):
                runtime.root.parent.rmdir()  # /var/lib/jaring, when the demo was all of it
        for problem in problems:
            self.out(f"    warning: {problem}")


def _remove_empty_dirs(root: Path) -> None:
    """Remove `root` and the directories under it that hold no file, bottom up."""
    if not root.is_dir():
        return
    for dirpath, _dirnames, _filenames in os.walk(root, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)  # fails, as it should, when anything is left in it


def _keys(manifests: Sequence[Manifest]) -> set[ObjectKey]:
    return {m.key for m in manifests}
