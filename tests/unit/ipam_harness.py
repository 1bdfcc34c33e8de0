"""Run one IPAM config through the reference binary and through jaring, and compare.

Three runners with one shape (`Outcome`): the reference binary from /usr/lib/cni
(exec), the `jaring-<type>` console script (exec), and the native PLUGIN
in-process through `skel.run` (the same dispatch the executable uses). Used by
the differential, mixed-store and concurrency IPAM tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaring.cni import skel
from jaring.cni.plugin import Plugin

REFERENCE_DIR = Path(os.environ.get("JARING_TEST_CNI_PATH", "/usr/lib/cni"))
VENV_BIN = Path(sys.executable).parent
# The Debian reference plugins (1.1.1) stop at spec 1.0.0; a 1.1.0 config runs
# there as 1.0.0 and its result is compared with the version string swapped.
REFERENCE_LATEST = "1.0.0"


@dataclass(frozen=True)
class Outcome:
    """What one CNI call printed: exit code and the JSON document (None if empty)."""

    code: int
    doc: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def msg(self) -> str:
        return str((self.doc or {}).get("msg", ""))


def environ(
    command: str, *, container_id: str, ifname: str, args: str = "", path: str = ""
) -> dict[str, str]:
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": "/var/run/netns/jaring-test-none",
        "CNI_IFNAME": ifname,
        "CNI_ARGS": args,
        "CNI_PATH": path or str(REFERENCE_DIR),
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    }


def _outcome(code: int, out: bytes) -> Outcome:
    text = out.strip()
    return Outcome(code, json.loads(text) if text else None)


Runner = Callable[..., Outcome]


def exec_runner(binary: Path) -> Runner:
    """A runner that execs `binary` with the CNI environment."""

    def run(
        command: str,
        conf: Mapping[str, Any],
        *,
        container_id: str,
        ifname: str = "eth0",
        args: str = "",
    ) -> Outcome:
        proc = subprocess.run(
            [str(binary)],
            input=json.dumps(conf).encode(),
            env=environ(command, container_id=container_id, ifname=ifname, args=args),
            capture_output=True,
            check=False,
            timeout=60,
        )
        return _outcome(proc.returncode, proc.stdout)

    return run


def reference_runner(plugin_type: str) -> Runner:
    """The reference binary; 1.1.0 configs are run as 1.0.0 and reported back as 1.1.0."""
    inner = exec_runner(REFERENCE_DIR / plugin_type)

    def run(command: str, conf: Mapping[str, Any], **kw: Any) -> Outcome:
        if conf.get("cniVersion") != "1.1.0":
            return inner(command, conf, **kw)
        out = inner(command, {**conf, "cniVersion": REFERENCE_LATEST}, **kw)
        if out.doc is not None and out.doc.get("cniVersion") == REFERENCE_LATEST:
            out = Outcome(out.code, {**out.doc, "cniVersion": "1.1.0"})
        return out

    return run


def native_exec_runner(plugin_type: str) -> Runner:
    return exec_runner(VENV_BIN / f"jaring-{plugin_type}")


def inprocess_runner(plugin: Plugin) -> Runner:
    """The native plugin in this process, through the executable's own dispatch."""

    def run(
        command: str,
        conf: Mapping[str, Any],
        *,
        container_id: str,
        ifname: str = "eth0",
        args: str = "",
    ) -> Outcome:
        code, out = skel.run(
            plugin,
            environ=environ(command, container_id=container_id, ifname=ifname, args=args),
            stdin=json.dumps(conf).encode(),
        )
        return _outcome(code, out)

    return run


def comparable(out: Outcome) -> tuple[bool, Any]:
    """What must match between runners: the result, or that it failed and why.

    Errors compare by message only: jaring uses the spec's codes (7 invalid
    config, 4 invalid env) where the reference says 999 for everything, and
    jaring's error carries a cniVersion.
    """
    if out.ok:
        return True, out.doc
    return False, out.msg


def snapshot(data_dir: Path) -> dict[str, dict[str, bytes]]:
    """Every network's store: file name -> content (the empty lock included)."""
    if not data_dir.exists():
        return {}
    return {
        net.name: {f.name: f.read_bytes() for f in sorted(net.iterdir()) if f.is_file()}
        for net in sorted(data_dir.iterdir())
        if net.is_dir()
    }


def reference_available(plugin_type: str) -> bool:
    return os.access(REFERENCE_DIR / plugin_type, os.X_OK)
