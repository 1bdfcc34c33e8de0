"""A standalone ADD and DEL against the API over HTTPS, as a node runs them
(`-I -S`, the package laid out as a plain install), load none of the modules
that cost every call milliseconds: not `ssl.py`, `socket.py`, `selectors`,
`urllib.parse` or the IDNA codec (`apiconn` talks to `_socket` and `_ssl`);
not `json`, `re` or `enum` (`jsoncodec` drives `_json`); not `importlib`
(the registry loads it for native delegates only); not `ipaddress` (`inet`
checks addresses), `contextlib`, `collections`, `functools` or `operator`;
not `pathlib`, `typing`, `dataclasses`, `inspect` or `subprocess`
(tests/unit/test_import_budget.py says why). The calls themselves must still
do their work: the result, the network-status PATCH, the token."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import jaring.cni
import jaring.metaplugin

from .cluster import kubeconfig_doc
from .scripted import Answer, Pki, Script, serve

UNWANTED = (
    "ssl", "socket", "selectors", "urllib", "encodings.idna", "base64",
    "json", "re", "enum", "pathlib", "typing", "dataclasses", "inspect", "subprocess",
    "importlib", "warnings", "ipaddress", "contextlib", "collections", "functools", "operator",
)  # fmt: skip
POD_PATH = "/api/v1/namespaces/ns/pods/web"
NAD_PATH = "/apis/k8s.cni.cncf.io/v1/namespaces/ns/network-attachment-definitions/data"
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web",
        "namespace": "ns",
        "uid": "uid-web",
        "annotations": {"k8s.v1.cni.cncf.io/networks": "data"},
    },
}
NAD = {
    "apiVersion": "k8s.cni.cncf.io/v1",
    "kind": "NetworkAttachmentDefinition",
    "metadata": {"name": "data", "namespace": "ns"},
    "spec": {"config": json.dumps({"cniVersion": "1.0.0", "type": "fakedata"})},
}
PLUGIN = """#!/bin/sh
cat >/dev/null
[ "$CNI_COMMAND" = ADD ] && printf '{"cniVersion":"1.0.0","ips":[{"address":"%s"}]}' "{ip}"
exit 0
"""
PROGRAM = (
    "import sys; sys.path.insert(0, sys.argv[1]); from jaring.metaplugin.main import main; main()"
)


def plain_layout(root: Path) -> Path:
    """jaring.cni and jaring.metaplugin as a plain install has them (no editable finder)."""
    tree = root / "jaring"
    tree.mkdir(parents=True)
    for package in (jaring.cni, jaring.metaplugin):
        (tree / package.__name__.split(".")[-1]).symlink_to(Path(package.__file__).parent)
    return root


def loaded(stderr: str) -> set[str]:
    """The modules -X importtime says were imported."""
    names = set()
    for line in stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if line.startswith("import time:") and len(fields) == 3 and fields[1].strip().isdigit():
            names.add(fields[2].strip())
    return names


def test_standalone_add_and_del_over_https_load_only_what_they_need(
    tmp_path: Path, pki: Pki
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, ip in (("fakecluster", "10.1.0.5/24"), ("fakedata", "10.2.0.5/24")):
        (bindir / name).write_text(PLUGIN.replace("{ip}", ip))
        (bindir / name).chmod(stat.S_IRWXU)
    script = Script(default=Answer.json(200, POD))
    script.route("GET", NAD_PATH, Answer.json(200, NAD))
    site = plain_layout(tmp_path / "site")
    with serve(script, tls=pki.server_context()) as url:
        kubeconfig = tmp_path / "kubeconfig"
        doc = kubeconfig_doc(url, token="t", **{"certificate-authority": str(pki.ca)})
        kubeconfig.write_text(json.dumps(doc))
        config = {
            "cniVersion": "1.0.0",
            "name": "jaring",
            "type": "jaring",
            "kubeconfig": str(kubeconfig),
            "cniDir": str(tmp_path / "cache"),
            "daemonSocket": "",
            "events": False,
            "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "fakecluster"}],
        }
        runs = {}
        for command in ("ADD", "DEL"):
            env = {
                "PATH": os.environ.get("PATH", ""),
                "CNI_COMMAND": command,
                "CNI_CONTAINERID": "c0ffee",
                "CNI_NETNS": str(tmp_path / "netns"),
                "CNI_IFNAME": "eth0",
                "CNI_PATH": str(bindir),
                "CNI_ARGS": "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web;K8S_POD_UID=uid-web",
            }
            runs[command] = subprocess.run(
                [sys.executable, "-X", "importtime", "-I", "-S", "-c", PROGRAM, str(site)],
                input=json.dumps(config).encode(),
                env=env,
                capture_output=True,
                check=False,
                timeout=60,
            )
    for command, done in runs.items():
        assert done.returncode == 0, (command, done.stdout, done.stderr[-2000:])
        modules = loaded(done.stderr.decode())
        assert "jaring.metaplugin.meta" in modules  # the parse saw the run
        assert sorted(m for m in modules if m.split(".")[0] in UNWANTED or m in UNWANTED) == []
    assert json.loads(runs["ADD"].stdout)["ips"] == [{"address": "10.1.0.5/24"}]
    assert [(seen.method, seen.path) for seen in script.seen] == [
        ("GET", POD_PATH),
        ("GET", NAD_PATH),
        ("PATCH", POD_PATH),
    ]
    patch = json.loads(script.seen[-1].body)
    status = json.loads(patch["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"])
    assert [entry["ips"] for entry in status] == [["10.1.0.5/24"], ["10.2.0.5/24"]]
    assert all(seen.headers["Authorization"] == "Bearer t" for seen in script.seen)
