"""KubeConfig.load reads the current context's cluster and user, as kubectl does."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.errors import CniError, Code
from jaring.metaplugin.kubeclient import KubeConfig


def kubeconfig(
    cluster: dict[str, Any],
    user: dict[str, Any] | None = None,
    *,
    current: object = "ctx1",
    **extra: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "other", "cluster": {"server": "https://other:6443"}},
            {"name": "c1", "cluster": cluster},
        ],
        "users": [{"name": "u1", "user": user or {}}, {"name": "nobody", "user": {}}],
        "contexts": [
            {"name": "ctx-other", "context": {"cluster": "other", "user": "nobody"}},
            {"name": "ctx1", "context": {"cluster": "c1", "user": "u1"}},
        ],
        "current-context": current,
    }
    doc.update(extra)
    return doc


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_json_kubeconfig_with_embedded_data(tmp_path: Path) -> None:
    path = tmp_path / "kc.json"
    path.write_text(
        json.dumps(
            kubeconfig(
                {
                    "server": "https://10.0.0.1:6443/",
                    "certificate-authority-data": b64(b"CA PEM"),
                    "tls-server-name": "kubernetes",
                },
                {
                    "token": "t0k3n",
                    "client-certificate-data": b64(b"CERT"),
                    "client-key-data": b64(b"KEY"),
                },
            )
        )
    )
    cfg = KubeConfig.load(str(path))
    assert cfg == KubeConfig(
        server="https://10.0.0.1:6443",
        path=str(path),
        ca_data=b"CA PEM",
        tls_server_name="kubernetes",
        token="t0k3n",
        cert_data=b"CERT",
        key_data=b"KEY",
    )


def test_yaml_kubeconfig_with_files_relative_to_its_directory(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "jaring.kubeconfig"
    path.write_text(
        textwrap.dedent(
            """\
            apiVersion: v1
            kind: Config
            clusters:
            - name: c1
              cluster:
                server: https://api.example:6443
                certificate-authority: pki/ca.crt
            users:
            - name: sa
              user:
                tokenFile: /var/run/secrets/token
                client-certificate: pki/client.crt
                client-key: pki/client.key
            contexts:
            - name: only
              context: {cluster: c1, user: sa}
            current-context: only
            """
        )
    )
    cfg = KubeConfig.load(str(path))
    assert cfg.server == "https://api.example:6443"
    assert cfg.ca_file == str(tmp_path / "etc" / "pki" / "ca.crt")
    assert cfg.token_file == "/var/run/secrets/token"
    assert cfg.cert_file == str(tmp_path / "etc" / "pki" / "client.crt")
    assert cfg.key_file == str(tmp_path / "etc" / "pki" / "client.key")
    assert not cfg.insecure


def test_single_context_is_used_without_current_context(tmp_path: Path) -> None:
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:8080"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c"}}],
    }
    path = tmp_path / "kc"
    path.write_text(json.dumps(doc))
    cfg = KubeConfig.load(str(path))
    assert cfg.server == "http://127.0.0.1:8080"
    assert cfg.token == ""


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    path.write_text(
        json.dumps(kubeconfig({"server": "https://h:1", "insecure-skip-tls-verify": True}))
    )
    assert KubeConfig.load(str(path)).insecure


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        (kubeconfig({"server": "https://h:1"}, current="nope"), "current-context"),
        (kubeconfig({"server": "https://h:1"}, current=""), "current-context"),
        (kubeconfig({"server": "https://h:1"}, current=3), "current-context"),
        (kubeconfig({}), "clusters[c1].cluster.server"),
        (kubeconfig({"server": "ftp://h"}), "clusters[c1].cluster.server"),
        (kubeconfig({"server": "https://h:1", "certificate-authority-data": "!!"}), "-data"),
        (
            kubeconfig({"server": "https://h:1", "certificate-authority-data": "Zm9v\u00e9"}),
            "-data",
        ),
        (kubeconfig({"server": "https://h:1", "insecure-skip-tls-verify": "yes"}), "insecure"),
        (kubeconfig({"server": "https://h:1"}, {"token": 5}), "users[u1].user.token"),
        (kubeconfig({"server": "https://h:1"}, {"client-certificate": "c"}), "users[u1].user"),
        (kubeconfig({"server": "https://h:1"}, {"exec": {"command": "aws"}}), "exec"),
        (kubeconfig({"server": "https://h:1"}, clusters={}), "clusters"),
        (kubeconfig({"server": "https://h:1"}, clusters=[{"cluster": {}}]), "clusters[0]"),
        (kubeconfig({"server": "https://h:1"}, users=[]), "context.user"),
        (
            kubeconfig({"server": "https://h:1"}, contexts=[{"name": "ctx1", "context": {}}]),
            "contexts[ctx1].context.cluster",
        ),
    ],
)
def test_bad_kubeconfig_names_the_file_and_key(
    tmp_path: Path, doc: dict[str, Any], key: str
) -> None:
    path = tmp_path / "bad.kubeconfig"
    path.write_text(json.dumps(doc))
    with pytest.raises(CniError) as info:
        KubeConfig.load(str(path))
    assert info.value.code == Code.INVALID_CONFIG
    assert str(path) in info.value.msg
    assert key in info.value.msg
