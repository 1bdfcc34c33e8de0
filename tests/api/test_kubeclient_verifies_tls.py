"""KubeClient speaks TLS as the kubeconfig says: its CA (file or data), an
optional server name, or no verification when insecure-skip-tls-verify."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.errors import CniError, Code
from jaring.metaplugin.kubeclient import KubeClient, KubeConfig

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
