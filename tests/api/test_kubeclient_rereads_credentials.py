"""Credentials come from disk on every call (LESSONS #7): a rotated token file,
a rewritten kubeconfig, rotated client certificate files are used at once."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest
from jaring.cni.errors import CniError, Code
from jaring.metaplugin.kubeclient import KubeClient, KubeConfig

from .cluster import kubeconfig_doc
from .scripted import Answer, Pki, Script, serve

PATH = "/api/v1/namespaces/ns/pods/p"
OK = Answer.json(200, {"kind": "Pod"})


def write_kubeconfig(path: Path, url: str, **user: str) -> None:
    doc = kubeconfig_doc(url)
    doc["users"][0]["user"] = user
    path.write_text(json.dumps(doc))
    st = path.stat()  # a distinct mtime even on a coarse clock
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_token_file_is_read_on_every_call(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    script = Script(default=OK)
    with serve(script) as url:
        kc = tmp_path / "kc"
        write_kubeconfig(kc, url, tokenFile="token")  # relative to the kubeconfig
        with KubeClient(KubeConfig.load(str(kc))) as client:
            client.get(PATH)
            token.write_text("second")
            client.get(PATH)
    assert [s.headers["Authorization"] for s in script.seen] == ["Bearer first", "Bearer second"]


def test_missing_token_file_names_it(tmp_path: Path) -> None:
    script = Script(default=OK)
    with serve(script) as url:
        kc = tmp_path / "kc"
        write_kubeconfig(kc, url, tokenFile=str(tmp_path / "absent"))
        with KubeClient(KubeConfig.load(str(kc))) as client, pytest.raises(CniError) as info:
            client.get(PATH)
    assert info.value.code == Code.IO
    assert "tokenFile" in info.value.msg
    assert str(tmp_path / "absent") in info.value.msg
    assert script.seen == []


def test_rewritten_kubeconfig_is_reloaded(tmp_path: Path) -> None:
    script = Script(default=OK)
    with serve(script) as url:
        kc = tmp_path / "kc"
        write_kubeconfig(kc, url, token="old")
        with KubeClient(KubeConfig.load(str(kc))) as client:
            client.get(PATH)
            write_kubeconfig(kc, url, token="renewed")
            client.get(PATH)
            kc.write_text('{"clusters": [')  # caught mid-rewrite: keep the last good one
            client.get(PATH)
            kc.unlink()  # gone for a moment (being replaced): the same
            client.get(PATH)
            write_kubeconfig(kc, url, token="third")
            client.get(PATH)
    assert [s.headers["Authorization"] for s in script.seen] == [
        "Bearer old",
        "Bearer renewed",
        "Bearer renewed",
        "Bearer renewed",
        "Bearer third",
    ]


def test_rotated_client_certificate_is_used_at_once(tmp_path: Path, pki: Pki) -> None:
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    pki.issue("node-old", cert=cert, key=key)
    script = Script(default=OK)
    with serve(script, tls=pki.server_context(client_certs=True)) as url:
        kc = tmp_path / "kc"
        doc = kubeconfig_doc(url, **{"certificate-authority": str(pki.ca)})
        doc["users"][0]["user"] = {"client-certificate": "client.crt", "client-key": "client.key"}
        kc.write_text(json.dumps(doc))
        with KubeClient(KubeConfig.load(str(kc))) as client:
            client.get(PATH)
            client.get(PATH)
            new_cert, new_key = tmp_path / "new.crt", tmp_path / "new.key"
            pki.issue("node-new", cert=new_cert, key=new_key)
            shutil.move(new_cert, cert)
            shutil.move(new_key, key)
            client.get(PATH)
    assert [s.peer_cn for s in script.seen] == ["node-old", "node-old", "node-new"]


def test_client_certificate_data_in_the_kubeconfig(tmp_path: Path, pki: Pki) -> None:
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    pki.issue("node-data", cert=cert, key=key)
    script = Script(default=OK)
    with serve(script, tls=pki.server_context(client_certs=True)) as url:
        kc = tmp_path / "kc"
        doc = kubeconfig_doc(url, **{"certificate-authority": str(pki.ca)})
        doc["users"][0]["user"] = {
            "client-certificate-data": base64.b64encode(cert.read_bytes()).decode(),
            "client-key-data": base64.b64encode(key.read_bytes()).decode(),
        }
        kc.write_text(json.dumps(doc))
        with KubeClient(KubeConfig.load(str(kc))) as client:
            client.get(PATH)
    assert [s.peer_cn for s in script.seen] == ["node-data"]
    assert "Authorization" not in script.seen[0].headers
