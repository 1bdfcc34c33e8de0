"""KubeClient speaks TLS as the kubeconfig says: its CA (file or data), an
optional server name, or no verification when insecure-skip-tls-verify; the
node daemon's watch streams connect through it and verify the same way."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.errors import CniError, Code
from jaring.metaplugin.kubeclient import KubeClient, KubeConfig
from jaring.metaplugin.nodecache import NADS_PATH, Reflector, Resource, Store, nad_entry
from jaring.metaplugin.sources import NadInfo

from .cluster import kubeconfig_doc
from .scripted import Answer, Pki, Script, serve

PATH = "/api/v1/namespaces/ns/pods/p"
POD = {"kind": "Pod", "metadata": {"name": "p"}}


def client_for(tmp_path: Path, url: str, **cluster: Any) -> KubeClient:
    path = tmp_path / "kc"
    path.write_text(json.dumps(kubeconfig_doc(url, token="t", **cluster)))
    return KubeClient(KubeConfig.load(str(path)), retries=0)


def test_ca_file(tmp_path: Path, pki: Pki) -> None:
    with (
        serve(Script(default=Answer.json(200, POD)), tls=pki.server_context()) as url,
        client_for(tmp_path, url, **{"certificate-authority": str(pki.ca)}) as client,
    ):
        assert client.get(PATH) == POD


def test_ca_data(tmp_path: Path, pki: Pki) -> None:
    data = base64.b64encode(pki.ca.read_bytes()).decode()
    with (
        serve(Script(default=Answer.json(200, POD)), tls=pki.server_context()) as url,
        client_for(tmp_path, url, **{"certificate-authority-data": data}) as client,
    ):
        assert client.get(PATH) == POD


def test_tls_server_name_is_the_name_verified(tmp_path: Path, pki: Pki) -> None:
    # The certificate is for 127.0.0.1 and localhost; dial by IP, verify "localhost".
    cluster = {"certificate-authority": str(pki.ca), "tls-server-name": "localhost"}
    with serve(Script(default=Answer.json(200, POD)), tls=pki.server_context()) as url:
        with client_for(tmp_path, url, **cluster) as client:
            assert client.get(PATH) == POD
        cluster["tls-server-name"] = "kubernetes.default.svc"
        with client_for(tmp_path, url, **cluster) as client, pytest.raises(CniError) as info:
            client.get(PATH)
    assert info.value.code == Code.IO
    assert "TLS" in info.value.msg


def nad_doc(name: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": version},
        "spec": {"config": '{"cniVersion":"1.0.0","type":"bridge"}'},
    }


def test_watch_verifies_the_tls_server_name_as_calls_do(tmp_path: Path, pki: Pki) -> None:
    # The certificate names only kubernetes.default.svc; the kubeconfig dials
    # 127.0.0.1 and says tls-server-name: the list and the watch both succeed.
    listed = {"items": [nad_doc("a", "5")], "metadata": {"resourceVersion": "5"}}
    added = json.dumps({"type": "ADDED", "object": nad_doc("b", "6")}).encode() + b"\n"
    script = Script().then(Answer.json(200, listed), Answer(200, added, framing="close"))
    script.default = Answer(200, b"", framing="close")  # later watches: nothing new
    cluster = {
        "certificate-authority": str(pki.ca),
        "tls-server-name": "kubernetes.default.svc",
    }
    store: Store[NadInfo] = Store()
    with serve(script, tls=pki.server_context(name="kubernetes.default.svc")) as url:
        reflector = Reflector(
            client_for(tmp_path, url, **cluster),
            Resource("NetworkAttachmentDefinition", NADS_PATH, "", nad_entry),
            store,
        )
        reflector.start()
        try:
            deadline = time.monotonic() + 10
            while store.get(("ns", "b")) is None:
                assert time.monotonic() < deadline, f"watch never delivered: {script.seen}"
                time.sleep(0.02)
        finally:
            reflector.stop()
            reflector.join(5)
            reflector.client.close()
    assert store.get(("ns", "a")) is not None
    watch = script.seen[1]
    assert "watch=true" in watch.path and "resourceVersion=5" in watch.path
    assert watch.headers["Authorization"] == "Bearer t"


def test_unknown_ca_is_refused_without_retrying(tmp_path: Path, pki: Pki) -> None:
    script = Script(default=Answer.json(200, POD))
    (tmp_path / "other").mkdir()
    other = Pki.make(tmp_path / "other")
    with (
        serve(script, tls=pki.server_context()) as url,
        client_for(tmp_path, url, **{"certificate-authority": str(other.ca)}) as client,
        pytest.raises(CniError) as info,
    ):
        client.get(PATH)
    assert info.value.code == Code.IO
    assert "certificate verify failed" in info.value.details
    assert script.seen == []


def test_insecure_skip_tls_verify(tmp_path: Path, pki: Pki) -> None:
    with (
        serve(Script(default=Answer.json(200, POD)), tls=pki.server_context()) as url,
        client_for(tmp_path, url, **{"insecure-skip-tls-verify": True}) as client,
    ):
        assert client.get(PATH) == POD


def test_garbage_ca_is_invalid_config(tmp_path: Path) -> None:
    bad = tmp_path / "ca.crt"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with (
        client_for(tmp_path, "https://127.0.0.1:1", **{"certificate-authority": str(bad)}) as c,
        pytest.raises(CniError) as info,
    ):
        c.get(PATH)
    assert info.value.code == Code.INVALID_CONFIG
    assert "TLS material" in info.value.msg
