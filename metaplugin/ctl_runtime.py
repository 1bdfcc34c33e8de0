"""The container runtime's part in clusterless mode: `jaringctl up/down/check/gc`.

Owns the pod records under `root/.jaring/pods/`, the generated local cluster
network, and running the installed `jaring` binary exactly as a runtime does
(CNI SPEC.md "Parameters": env, stdin, CNI_ARGS with the pod's identity).
Called by `ctl.py`; every `up` either ends up or leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from jaring.cni import selection
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import Namespace

from .ctl_store import NAD, NETWORKS_ANNOTATION, POD, ObjectKey, Store, nad_network, write_atomic
from .localnet import GATEWAY_SYSCTLS, Host, HostParts, Need

CNI_PATH = "/usr/lib/cni:/opt/cni/bin"
CNI_VERSION = "1.0.0"
GC_VERSION = "1.1.0"  # GC exists from CNI 1.1.0 on
CLUSTER_NAME = "jaring-local"
DEFAULT_SUBNET = "10.89.0.0/24"
DEFAULT_BRIDGE = "jaring0"
IFNAME = "eth0"
CNI_TIMEOUT = 120.0
HOST_LOCAL_DATA_DIR = "/var/lib/cni/networks"

Out = Callable[[str], None]


def say(text: str) -> None:
    """Print a progress line; a closed stdout (`| head`) must never stop a cleanup."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the rest goes nowhere, quietly
        os.close(devnull)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while cleanup runs: a half cleanup is worse than a late exit."""
    try:
        old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: nothing to shield from
        yield
        return
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class ClusterSettings:
    subnet: str
    bridge: str


@dataclass(frozen=True)
class PodRecord:
    """What `up` did for one pod, written before anything is made."""

    namespace: str
    name: str
    uid: str
    netns: str
    container_id: str
    config: Mapping[str, Any]  # the meta config ADD got: DEL and CHECK send the same
    state: str = "creating"  # then "adding" once ADD starts, "up" once it succeeded
    since: str = ""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def find_jaring_binary() -> str:
    """The installed `jaring`: next to this Python (a venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "jaring"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("jaring")
    if found:
        return found
    raise CniError(
        Code.IO,
        "cannot find the jaring CNI binary",
        f"not next to {sys.executable} nor on PATH; install jaring (make venv)",
    )


def netns_name(root: Path, *, namespace: str, name: str) -> str:
    """Unique per store and pod, readable, and short enough for any file system."""
    digest = hashlib.sha256(f"{root}\0{namespace}\0{name}".encode()).hexdigest()[:8]
    return f"jaring-{namespace}-{name}"[:60] + f"-{digest}"


def validate_subnet(text: str) -> str:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise CniError(Code.INVALID_CONFIG, f"--cluster-subnet: {exc}") from None
    if net.num_addresses < 8:
        raise CniError(Code.INVALID_CONFIG, f"--cluster-subnet {text}: too small for pods")
    return str(net)


def validate_bridge(text: str) -> str:
    if not selection.is_ifname(text):
        raise CniError(
            Code.INVALID_CONFIG, f"--cluster-bridge {text!r}: not a valid interface name"
        )
    return text


class Runtime:
    """Pods of one local store as network namespaces, wired by the `jaring` binary."""

    def __init__(
        self,
        root: Path,
        *,
        host: Host | None = None,
        binary: str | None = None,
        cni_path: str = CNI_PATH,
        out: Out = say,
        timeout: float = CNI_TIMEOUT,
    ) -> None:
        self.root = root.absolute()
        self.store = Store(self.root)
        self.private = self.root / ".jaring"
        self.host = host or Host()
        self.parts = HostParts(self.private / "hostparts.json", self.host)
        self._binary = binary
        self.cni_path = cni_path
        self.out = out
        self.timeout = timeout

    # -- files -------------------------------------------------------------

    @property
    def log_file(self) -> Path:
        return self.private / "jaring.log"

    def record_path(self, *, namespace: str, name: str) -> Path:
        return self.private / "pods" / f"{namespace}_{name}.json"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One mutating jaringctl command per store at a time."""
        self.private.mkdir(parents=True, exist_ok=True)
        with open(self.private / "lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.out(f"waiting for another jaringctl on {self.root} ...")
                fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def record(self, *, namespace: str, name: str) -> PodRecord | None:
        path = self.record_path(namespace=namespace, name=name)
        try:
            doc = json.loads(path.read_text())
            return PodRecord(**doc)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise CniError(Code.IO, f"{path}: unreadable pod record: {exc}") from None

    def records(self) -> list[PodRecord]:
        found = []
        for path in sorted((self.private / "pods").glob("*.json")):
            namespace, _, name = path.stem.partition("_")
            rec = self.record(namespace=namespace, name=name)
            if rec is not None:
                found.append(rec)
        return found

    def _save(self, rec: PodRecord) -> None:
        path = self.record_path(namespace=rec.namespace, name=rec.name)
        write_atomic(path, json.dumps(asdict(rec), indent=2) + "\n")

    def _forget(self, rec: PodRecord) -> None:
        self.record_path(namespace=rec.namespace, name=rec.name).unlink(missing_ok=True)
        self.store.status_path(namespace=rec.namespace, name=rec.name).unlink(missing_ok=True)

    def is_up(self, rec: PodRecord) -> bool:
        return rec.state == "up" and self.host.netns_exists(rec.netns)

    def state(self, *, namespace: str, name: str) -> str:
        """Up, Down, or Broken (a record without its netns, or an up that never finished)."""
        rec = self.record(namespace=namespace, name=name)
        if rec is None:
            return "Down"
        return "Up" if self.is_up(rec) else "Broken"

    # -- the cluster network -------------------------------------------------

    def cluster(self, *, subnet: str | None = None, bridge: str | None = None) -> ClusterSettings:
        """The settings in use; changing them needs every pod down first."""
        path = self.private / "cluster.json"
        current: ClusterSettings | None = None
        with contextlib.suppress(FileNotFoundError, ValueError, TypeError):
            current = ClusterSettings(**json.loads(path.read_text()))
        wanted = ClusterSettings(
            subnet=validate_subnet(subnet) if subnet else (current or _DEFAULTS).subnet,
            bridge=validate_bridge(bridge) if bridge else (current or _DEFAULTS).bridge,
        )
        if current is not None and wanted != current:
            up = [r.ref for r in self.records()]
            if up:
                raise CniError(
                    Code.INVALID_CONFIG,
                    f"the cluster network is {current.bridge} {current.subnet} while pods are up "
                    f"({', '.join(up)})",
                    "bring them down before changing --cluster-subnet/--cluster-bridge",
                )
        if wanted != current:
            write_atomic(path, json.dumps(asdict(wanted)) + "\n")
        conf = self.cluster_conf(wanted)
        conf_path = self.private / "cluster.conflist"
        text = json.dumps(conf, indent=2) + "\n"
        if not conf_path.exists() or conf_path.read_text() != text:
            write_atomic(conf_path, text)
        return wanted

    def cluster_conf(self, settings: ClusterSettings) -> dict[str, Any]:
        """A bridge with host-local IPAM: what a simple cluster network is on one node."""
        net = ipaddress.ip_network(settings.subnet)
        default = "0.0.0.0/0" if net.version == 4 else "::/0"
        return {
            "cniVersion": CNI_VERSION,
            "name": CLUSTER_NAME,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": settings.bridge,
                    "isGateway": True,
                    "ipMasq": False,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": settings.subnet}]],
                        "routes": [{"dst": default}],
                        "dataDir": str(self.private / "ipam"),
                    },
                }
            ],
        }

    def meta_config(self, *, cni_version: str = CNI_VERSION) -> dict[str, Any]:
        """The jaring meta config a runtime would read from /etc/cni/net.d."""
        return {
            "cniVersion": cni_version,
            "name": "jaring",
            "type": "jaring",
            "manifestDir": str(self.root),
            "cniDir": str(self.private / "cache"),
            "confDir": str(self.private / "net.d"),
            "clusterNetwork": str(self.private / "cluster.conflist"),
            "logFile": str(self.log_file),
            # Standalone: a node daemon on this machine serves its cluster, not this store.
            "daemonSocket": "",
        }

    # -- running the plugin ------------------------------------------------------

    @property
    def binary(self) -> str:
        if self._binary is None:
            self._binary = find_jaring_binary()
        return self._binary

    def cni(
        self, command: str, config: Mapping[str, Any], rec: PodRecord | None = None
    ) -> Mapping[str, Any] | None:
        """Exec `jaring` as a runtime does; its error JSON becomes a CniError."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
        env["CNI_COMMAND"] = command
        env["CNI_PATH"] = self.cni_path
        if rec is not None:
            env["CNI_CONTAINERID"] = rec.container_id
            env["CNI_NETNS"] = str(self.host.netns_path(rec.netns))
            env["CNI_IFNAME"] = IFNAME
            env["CNI_ARGS"] = ";".join(
                [
                    "IgnoreUnknown=1",
                    f"K8S_POD_NAMESPACE={rec.namespace}",
                    f"K8S_POD_NAME={rec.name}",
                    f"K8S_POD_INFRA_CONTAINER_ID={rec.container_id}",
                    f"K8S_POD_UID={rec.uid}",
                ]
            )
        self.private.mkdir(parents=True, exist_ok=True)
        stdin = json.dumps(config).encode()
        # Its own session: a Ctrl-C reaches jaringctl, which lets the call finish
        # and then cleans up, instead of killing the plugin half way.
        proc = subprocess.Popen(
            [self.binary],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(stdin, timeout=self.timeout)
        except KeyboardInterrupt:
            with shielded():
                proc.communicate(timeout=self.timeout)
            raise
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise CniError(
                Code.TRY_AGAIN_LATER, f"jaring {command} did not finish in {self.timeout:.0f} s"
            ) from None
        doc: object = None
        with contextlib.suppress(ValueError):
            doc = json.loads(out) if out.strip() else None
        if proc.returncode != 0:
            last = err.decode(errors="replace").strip().splitlines()
            fallback = last[-1] if last else f"exit status {proc.returncode}"
            raise CniError.from_json(doc, fallback_msg=fallback)
        return doc if isinstance(doc, dict) else None

    # -- up / down -----------------------------------------------------------------

    def pod_manifest(self, *, namespace: str, name: str) -> Mapping[str, Any]:
        stored = self.store.get(ObjectKey(POD, namespace, name))
        if stored is None:
            raise CniError(
                Code.CONTAINER_UNKNOWN,
                f"pod {namespace}/{name} not found in {self.root}",
                "apply its manifest first: jaringctl apply -f FILE",
            )
        return stored.body

    def up(
        self,
        *,
        namespace: str,
        name: str,
        subnet: str | None = None,
        bridge: str | None = None,
    ) -> PodRecord:
        """Netns + CNI ADD; on any failure (or Ctrl-C) everything made is removed again."""
        body = self.pod_manifest(namespace=namespace, name=name)
        existing = self.record(namespace=namespace, name=name)
        if existing is not None:
            if self.is_up(existing):
                self.out(f"pod {existing.ref} is already up (netns {existing.netns})")
                return existing
            self.out(f"pod {existing.ref}: cleaning up an earlier up that did not finish")
            with shielded():
                self._teardown(existing, strict=False)
        settings = self.cluster(subnet=subnet, bridge=bridge)
        needs = self.needs(body, settings)
        metadata = body.get("metadata") or {}
        rec = PodRecord(
            namespace=namespace,
            name=name,
            uid=str(metadata.get("uid") or ""),
            netns=netns_name(self.root, namespace=namespace, name=name),
            container_id=secrets.token_hex(32),
            config=self.meta_config(),
            since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        self._save(rec)  # before anything is made: a crash leaves it findable
        try:
            for message in self.parts.acquire(rec.ref, needs):
                self.out(message)
            self.host.netns_delete(rec.netns)  # a leftover of a lost record
            self.host.netns_add(rec.netns)
            rec = replace(rec, state="adding")
            self._save(rec)
            try:
                self.cni("ADD", rec.config, rec)
            except CniError as exc:
                raise CniError(
                    exc.code, f"up {rec.ref}: CNI ADD failed: {exc}", f"log: {self.log_file}"
                ) from None
            self.parts.settle(rec.ref)
            rec = replace(rec, state="up")
            self._save(rec)
        except BaseException:
            with shielded():
                for problem in self._teardown(rec, strict=False):
                    self.out(f"cleanup: {problem}")
            raise
        return rec

    def needs(self, body: Mapping[str, Any], settings: ClusterSettings) -> list[Need]:
        """Host parts the pod's networks rely on (missing NADs fail later, in ADD)."""
        needs = [
            Need("bridge", settings.bridge, f"bridge of the cluster network {CLUSTER_NAME}"),
            *(
                Need("forwarding", key, f"the cluster network's gateway on {settings.bridge}")
                for key in GATEWAY_SYSCTLS
            ),
        ]
        metadata = body.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "default")
        annotations = metadata.get("annotations") or {}
        try:
            refs = [
                a.network
                for a in selection.parse_selection(
                    annotations.get(NETWORKS_ANNOTATION, ""), pod_namespace=Namespace(namespace)
                )
            ]
            override = selection.default_network_override(
                annotations, pod_namespace=Namespace(namespace)
            )
        except CniError:
            return needs  # ADD reports the annotation error
        if override is not None:
            refs.insert(0, override)
        for ref in refs:
            stored = self.store.get(ObjectKey(NAD, ref.namespace, ref.name))
            if stored is None:
                continue
            try:
                network = nad_network(stored.body)
            except CniError:
                continue  # ADD reports the invalid config
            if network is not None:
                needs += plugin_needs(network.plugins, network=network.name, nad=str(ref))
        unique: dict[tuple[str, str], Need] = {}
        for need in needs:
            unique.setdefault((need.kind, need.name), need)
        return list(unique.values())

    def _teardown(self, rec: PodRecord, *, strict: bool) -> list[str]:
        """DEL, then netns, host parts, status and record; problems are returned.

        With `strict`, a failed DEL raises and removes nothing, so that
        `down` can be run again once the cause is fixed.
        """
        problems: list[str] = []
        try:
            # Before ADD started there is nothing to DEL, and a DEL would only
            # make host-local's directories.
            if rec.state != "creating":
                self.cni("DEL", rec.config, rec)
        except CniError as exc:
            if strict:
                raise
            problems.append(f"CNI DEL of {rec.ref}: {exc} (log: {self.log_file})")
        try:
            self.host.netns_delete(rec.netns)
        except CniError as exc:
            problems.append(str(exc))
        try:
            for message in self.parts.release(rec.ref):
                self.out(message)
        except CniError as exc:
            problems.append(str(exc))
        self._forget(rec)
        return problems

    def down(self, *, namespace: str, name: str, force: bool = False) -> bool:
        """CNI DEL and the netns removed; False when the pod was not up (still success)."""
        rec = self.record(namespace=namespace, name=name)
        if rec is None:
            return False
        with shielded():
            try:
                problems = self._teardown(rec, strict=not force)
            except CniError as exc:
                raise CniError(
                    exc.code,
                    f"down {rec.ref}: CNI DEL failed, nothing removed: {exc}",
                    f"log: {self.log_file}; fix the cause and run down again, or down --force",
                ) from None
        for problem in problems:
            self.out(f"warning: {problem}")
        return True

    def check(self, *, namespace: str, name: str) -> PodRecord:
        rec = self.record(namespace=namespace, name=name)
        if rec is None or not self.is_up(rec):
            raise CniError(
                Code.CONTAINER_UNKNOWN,
                f"check {namespace}/{name}: the pod is not up",
                "jaringctl up it first",
            )
        try:
            self.cni("CHECK", rec.config, rec)
        except CniError as exc:
            raise CniError(
                exc.code, f"check {rec.ref}: CNI CHECK failed: {exc}", f"log: {self.log_file}"
            ) from None
        return rec

    def gc(self) -> tuple[list[PodRecord], list[PodRecord]]:
        """CNI GC with the pods that are up as the valid attachments; stale records go."""
        records = self.records()
        valid = [r for r in records if self.is_up(r)]
        stale = [r for r in records if r not in valid]
        self.cluster()
        config = self.meta_config(cni_version=GC_VERSION)
        config["cni.dev/valid-attachments"] = [
            {"containerID": r.container_id, "ifname": IFNAME} for r in valid
        ]
        try:
            self.cni("GC", config)
        except CniError as exc:
            raise CniError(exc.code, f"gc: CNI GC failed: {exc}", f"log: {self.log_file}") from None
        with shielded():
            for rec in stale:
                # GC already ran DEL for its attachments; this removes the rest.
                for problem in self._teardown(rec, strict=False):
                    self.out(f"warning: {problem}")
        return valid, stale


_DEFAULTS = ClusterSettings(subnet=DEFAULT_SUBNET, bridge=DEFAULT_BRIDGE)


def plugin_needs(plugins: Sequence[Mapping[str, Any]], *, network: str, nad: str) -> list[Need]:
    """What one network's plugins expect on the host (NPWG network name for host-local)."""
    needs: list[Need] = []
    for plugin in plugins:
        kind = plugin.get("type")
        master = plugin.get("master")
        if kind in ("macvlan", "ipvlan") and isinstance(master, str) and master:
            needs.append(Need("master", master, f"{kind} master of NAD {nad}"))
        if kind == "bridge":
            name = plugin.get("bridge")
            bridge = name if isinstance(name, str) and name else "cni0"
            needs.append(Need("bridge", bridge, f"bridge of NAD {nad}"))
            if plugin.get("isGateway") is True or plugin.get("isDefaultGateway") is True:
                needs += [
                    Need("forwarding", key, f"the gateway of NAD {nad}") for key in GATEWAY_SYSCTLS
                ]
        ipam = plugin.get("ipam")
        if isinstance(ipam, dict) and ipam.get("type") == "host-local":
            data_dir = ipam.get("dataDir")
            base = data_dir if isinstance(data_dir, str) and data_dir else HOST_LOCAL_DATA_DIR
            needs.append(Need("ipamdir", str(Path(base) / network), f"IPAM of NAD {nad}"))
    return needs
