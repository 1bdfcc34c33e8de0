"""`ServerURL.parse` takes a kubeconfig's `server` apart as `urllib.parse.urlsplit`
does (the binary no longer imports it), and refuses what cannot be dialled with
a reason, which the kubeconfig loader reports as INVALID_CONFIG."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jaring.cni.errors import CniError, Code
from jaring.metaplugin.apiconn import ServerURL
from jaring.metaplugin.kubeclient import KubeConfig

GOOD = [
    "https://10.96.0.1:443",
    "https://10.96.0.1",
    "http://127.0.0.1:8080",
    "HTTPS://API.Example.COM:6443",
    "https://[fd00::1]:6443",
    "https://[FD00::1]",
    "https://user:pw@api.example.com:6443/k8s/clusters/c1/",
    "https://rancher.example.com/k8s/clusters/c-abc",
    "https://api.example.com:6443/prefix?x=1#frag",
    "https://kubernetes.default.svc.cluster.local",
]


def expected(url: str) -> ServerURL:
    parts = urlsplit(url)
    assert parts.hostname
    return ServerURL(
        scheme=parts.scheme,
        host=parts.hostname,
        port=parts.port or (443 if parts.scheme == "https" else 80),
        authority=parts.netloc.rpartition("@")[2],
        prefix=parts.path.rstrip("/"),
    )


@pytest.mark.parametrize("url", GOOD)
def test_parts_are_urlsplits(url: str) -> None:
    assert ServerURL.parse(url) == expected(url)


label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@given(
    scheme=st.sampled_from(["http", "https", "HTTPS"]),
    host=st.one_of(
        st.lists(label, min_size=1, max_size=4).map(".".join),
        st.ip_addresses(v=4).map(str),
        st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    ),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    path=st.lists(label, max_size=3).map(lambda p: "".join("/" + x for x in p)),
    slash=st.booleans(),
)
def test_generated_servers_are_read_as_urlsplit_reads_them(
    scheme: str, host: str, port: int | None, path: str, slash: bool
) -> None:
    url = f"{scheme}://{host}{'' if port is None else f':{port}'}{path}{'/' if slash else ''}"
    assert ServerURL.parse(url) == expected(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("api.example.com:6443", "not an http(s) URL"),
        ("ftp://api.example.com", "not an http(s) URL"),
        ("https://", "no host"),
        ("https://:6443", "no host"),
        ("https://api:abc", "not a number"),
        ("https://api:0", "out of range"),
        ("https://api:70000", "out of range"),
        ("https://[fd00::1:6443", "bracket"),
        ("https://[fd00::1]6443", "bracket"),
        ("https://api.example.com /x", "whitespace"),
        ("https://api.example.com\n", "whitespace"),
    ],
)
def test_what_cannot_be_dialled_is_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        ServerURL.parse(url)


def test_a_kubeconfig_with_a_bad_port_is_invalid_config_at_load(tmp_path: Path) -> None:
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:64xx"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(doc))
    with pytest.raises(CniError) as info:
        KubeConfig.load(str(path))
    assert info.value.code == Code.INVALID_CONFIG
    assert "clusters[c].cluster.server" in info.value.msg
    assert "64xx" in info.value.msg
