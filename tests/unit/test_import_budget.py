"""The `jaring` binary's import budget (STYLE.md rule 9, issue 2).

Runs the installed console script in a subprocess under `-X importtime` for
a full ADD and DEL (pod and NAD from a manifest directory, delegates that are
tiny shell plugins on CNI_PATH) and proves that only the standard library and
`jaring` were imported: no kopf, kubernetes, aiohttp, pyroute2, yaml.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

FORBIDDEN = ("kopf", "kubernetes", "aiohttp", "pyroute2", "yaml", "jsonschema")
# Standard modules the binary's path does without because they cost every call
# milliseconds: `dataclasses` compiles each class's methods and loads `inspect`
# (~20 ms for the classes on the path; `jaring.cni.records` replaces it there);
# `subprocess` loads signal, threading, selectors and locale (~5 ms; `jaring.cni.spawn`);
# `typing` is ~4 ms the type checker alone needs (TYPE_CHECKING blocks).
COSTLY = ("dataclasses", "inspect", "subprocess", "typing")
# The API path (a node's) also does without `json`, which compiles regular
# expressions at import and so loads `re` and `enum` (~6 ms; `jaring.cni.jsoncodec`
# drives `_json`, names are checked with character sets, error codes are plain
# ints). A manifest directory needs pathlib, which loads `re` through fnmatch.
# tests/api/test_binary_over_the_api_* runs a whole ADD and DEL that way.
API_COSTLY = (*COSTLY, "json", "re", "enum")
# -X importtime also lists imports that were only attempted: site.py probes for
# these hooks and copy.py for Jython's `org.python.core`; none of them loads here.
PROBES = ("sitecustomize", "usercustomize", "org")

FAKE_PLUGIN = """#!/bin/sh
# A delegate that answers like a real plugin without touching the host.
cat >/dev/null
case "$CNI_COMMAND" in
ADD) printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","mac":"02:00:00:00:00:0%s",\
"sandbox":"%s"}],"ips":[{"address":"%s","interface":0}]}' \
"$CNI_IFNAME" "$FAKE_N" "$CNI_NETNS" "$FAKE_IP" ;;
VERSION) printf '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}' ;;
esac
"""


def _binary() -> Path:
    path = Path(sys.executable).parent / "jaring"
    if not path.exists():
        pytest.skip("the jaring console script is not installed next to this interpreter")
    return path


def _plugin(bindir: Path, name: str, ip: str, n: int) -> None:
    script = FAKE_PLUGIN.replace("$FAKE_IP", ip).replace("$FAKE_N", str(n))
    path = bindir / name
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _loaded_modules(stderr: str) -> set[str]:
    names = set()
    for line in stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(fields) != 3:
            continue
        if not fields[1].strip().isdigit():  # the header line
            continue
        name = fields[2].strip()
        if name.split(".")[0] not in PROBES:
            names.add(name)
    return names


def _run(binary: Path, command: str, env: dict[str, str], stdin: bytes) -> tuple[int, str, str]:
    full = {**{"PATH": os.environ.get("PATH", "")}, **env, "CNI_COMMAND": command}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(binary)],
        input=stdin,
        env=full,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def fake_pod(tmp_path: Path, networks: str = "data") -> tuple[dict[str, Any], dict[str, str]]:
    """A pod `default/web` selecting `networks`, a NAD `data` and fake delegates:
    (the jaring config, the CNI env without CNI_COMMAND). Shared by the binary tests."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _plugin(bindir, "fakecluster", "10.1.0.5/24", 1)
    _plugin(bindir, "fakedata", "10.2.0.5/24", 2)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    nad_config = {"cniVersion": "1.0.0", "type": "fakedata"}
    (manifests / "nad.json").write_text(
        json.dumps(
            {
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": "data", "namespace": "default"},
                "spec": {"config": json.dumps(nad_config)},
            }
        )
    )
    (manifests / "pod.json").write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "web",
                    "namespace": "default",
                    "uid": "uid-web",
                    "annotations": {"k8s.v1.cni.cncf.io/networks": networks},
                },
            }
        )
    )
    config = {
        "cniVersion": "1.0.0",
        "name": "jaring",
        "type": "jaring",
        "manifestDir": str(manifests),
        "cniDir": str(tmp_path / "cache"),
        "daemonSocket": "",
        "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "fakecluster"}],
    }
    env = {
        "CNI_CONTAINERID": "c0ffee",
        "CNI_NETNS": str(tmp_path / "netns"),
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(bindir),
        "CNI_ARGS": "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID=uid-web",
    }
    return config, env


def test_add_and_del_import_only_the_standard_library_and_jaring(tmp_path: Path) -> None:
    binary = _binary()
    config, env = fake_pod(tmp_path)
    stdin = json.dumps(config).encode()

    code, out, err = _run(binary, "ADD", env, stdin)
    assert code == 0, out + err
    assert json.loads(out)["ips"][0]["address"] == "10.1.0.5/24"
    add_modules = _loaded_modules(err)
    code, out, err = _run(binary, "DEL", env, stdin)
    assert code == 0, out + err
    del_modules = _loaded_modules(err)

    # Sanity: the parser saw the run, so an empty set cannot pass by accident.
    assert "jaring.metaplugin.meta" in add_modules
    for modules in (add_modules, del_modules):
        tops = {name.split(".")[0] for name in modules}
        assert not tops & set(FORBIDDEN), sorted(tops & set(FORBIDDEN))
        assert not tops & set(COSTLY), sorted(tops & set(COSTLY))
        outside = {t for t in tops if t not in sys.stdlib_module_names and t != "jaring"}
        # Leading-underscore C accelerators and encodings are part of the runtime.
        assert not {t for t in outside if not t.startswith("_")}, sorted(outside)


def plain_layout(root: Path, *subpackages: str) -> Path:
    """`jaring.<sub>` as a plain install lays them out under `root` (the dev
    venv's editable finder loads pathlib and re itself); `root` is for sys.path."""
    import importlib

    tree = root / "jaring"
    tree.mkdir(parents=True)
    for sub in subpackages:
        package = importlib.import_module(f"jaring.{sub}")
        (tree / sub).symlink_to(Path(str(package.__file__)).parent)
    return root


def test_the_api_path_loads_no_pathlib_in_the_layout_a_node_runs(tmp_path: Path) -> None:
    """The modules of a standalone ADD against the API, imported as a plain
    install lays them out (the dev venv's editable finder loads pathlib itself):
    pathlib (~3 ms) is for manifest directories only, and none of API_COSTLY loads."""
    site = plain_layout(tmp_path, "cni", "metaplugin")
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r})\n"
        "import jaring.metaplugin.main, jaring.metaplugin.meta, jaring.metaplugin.sources\n"
        "import jaring.metaplugin.kubeclient, jaring.cni.skel\n"
        "assert jaring.metaplugin.meta.__file__.startswith(sys.path[0])\n"
        "print(sorted(m for m in ('pathlib', *sys.argv[1:]) if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, *API_COSTLY],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
