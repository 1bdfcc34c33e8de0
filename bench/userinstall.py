"""What a user's node runs, for the benchmarks: a plain install and its shim.

The development venv's editable finder and its un-compiled sources cost every
start milliseconds no user pays. `user_install` makes a plain (non-editable,
byte-compiled) install of this checkout in a temporary venv, used as the
runtime tree, and writes the `jaring` shim jaring-install would put in
/opt/cni/bin for that tree (`#!<tree>/bin/python3 -IS`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from jaring.operator.install import shim_script


@dataclass(frozen=True)
class UserInstall:
    tree: Path  # the venv: bin/python3, lib/pythonX.Y/site-packages/jaring
    jaring: Path  # the shim the runtime execs
    bin: Path  # the tree's console scripts (jaring-node, ...)


def user_install(tmp: Path) -> UserInstall | None:
    """None when the install cannot be made (the caller then uses the dev venv)."""
    venv = tmp / "user-venv"
    # A copy, so setuptools' in-tree build/ never lands in the checkout.
    root = tmp / "src"
    shutil.copytree(
        Path(__file__).resolve().parents[1],
        root,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".typecheck", "build", "*.egg-info", "__pycache__"
        ),
    )
    pip = str(venv / "bin" / "pip")
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [pip, "install", "-q", "setuptools>=77", "pyyaml>=6"],
        [pip, "install", "-q", "--no-deps", "--no-build-isolation", str(root)],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, check=False)
        if done.returncode != 0:
            print(f"user install failed: {done.stderr.decode()[-500:]}", file=sys.stderr)
            return None
    shim = tmp / "cni-bin" / "jaring"
    shim.parent.mkdir()
    shim.write_bytes(shim_script(venv))
    shim.chmod(0o755)
    # A node's tree was written long before its pods start. Unflushed, pip's
    # megabytes are paid for by the first fsyncs timed (jaring's cache, LESSONS #1):
    # ~8 ms per ADD for the next half minute on this machine.
    os.sync()
    return UserInstall(tree=venv, jaring=shim, bin=venv / "bin")


def dev_install() -> UserInstall:
    """The development venv's own console scripts (`--dev-venv`)."""
    bindir = Path(sys.executable).parent
    return UserInstall(tree=bindir.parent, jaring=bindir / "jaring", bin=bindir)
