"""jaringctl is in the metaplugin package: it never loads the native delegates
(layering) or pyroute2, and YAML only when a file is YAML (issue 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_jaringctl_never_imports_delegates_or_pyroute2(tmp_path: Path) -> None:
    manifest = tmp_path / "pod.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}))
    code = (
        "from jaring.metaplugin import ctl\n"
        f"ctl.main(['--state-dir', {str(tmp_path / 's')!r}, 'apply', '-f', {str(manifest)!r}])\n"
        f"ctl.main(['--state-dir', {str(tmp_path / 's')!r}, 'get', 'pods', '-o', 'wide'])"
    )
    loaded = _loaded_after(code)
    assert not {m for m in loaded if m.startswith(("jaring.delegates", "pyroute2"))}
    assert "yaml" not in loaded  # JSON in, table out: no YAML parser


def test_yaml_is_loaded_for_a_yaml_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
    code = (
        "from jaring.metaplugin import ctl\n"
        f"ctl.main(['--state-dir', {str(tmp_path / 's')!r}, 'apply', '-f', {str(manifest)!r}])"
    )
    assert "yaml" in _loaded_after(code)
