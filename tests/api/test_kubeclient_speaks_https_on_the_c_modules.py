"""The binary's API calls over HTTPS load neither `ssl.py`, `socket.py`,
`selectors`, `urllib.parse` nor the IDNA codec (~6 ms of imports per CNI call
on the test machine): `apiconn` talks to `_socket` and `_ssl`. Checked in a
fresh interpreter with the package laid out as a plain install (`-I -S`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jaring.cni
import jaring.metaplugin

from .cluster import kubeconfig_doc
from .scripted import Answer, Pki, Script, serve

POD = {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}}
PATH = "/api/v1/namespaces/ns/pods/p"
UNWANTED = ("ssl", "socket", "selectors", "urllib.parse", "encodings.idna", "base64")

PROGRAM = """
import json, sys
sys.path.insert(0, sys.argv[1])
from jaring.metaplugin.kubeclient import KubeClient, KubeConfig

with KubeClient(KubeConfig.load(sys.argv[2]), retries=0) as client:
    pod = client.get("{path}")
    client.patch("{path}", {{"metadata": {{"annotations": {{"k": "v"}}}}}})
print(json.dumps({{"pod": pod, "loaded": [m for m in sys.argv[3:] if m in sys.modules]}}))
"""


def plain_layout(root: Path) -> Path:
    """jaring.cni and jaring.metaplugin as a plain install has them (no editable finder)."""
    tree = root / "jaring"
    tree.mkdir(parents=True)
    for package in (jaring.cni, jaring.metaplugin):
        (tree / package.__name__.split(".")[-1]).symlink_to(Path(package.__file__).parent)
    return root


def test_get_and_patch_over_https_load_no_python_level_socket_or_ssl(
    tmp_path: Path, pki: Pki
) -> None:
    script = Script(default=Answer.json(200, POD))
    with serve(script, tls=pki.server_context()) as url:
        kubeconfig = tmp_path / "kubeconfig"
        doc = kubeconfig_doc(url, token="t", **{"certificate-authority": str(pki.ca)})
        kubeconfig.write_text(json.dumps(doc))
        done = subprocess.run(
            [
                sys.executable, "-I", "-S", "-c", PROGRAM.format(path=PATH),
                str(plain_layout(tmp_path / "site")), str(kubeconfig), *UNWANTED,
            ],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["pod"] == POD
    assert answer["loaded"] == []
    assert [seen.method for seen in script.seen] == ["GET", "PATCH"]
    assert all(seen.headers["Authorization"] == "Bearer t" for seen in script.seen)
