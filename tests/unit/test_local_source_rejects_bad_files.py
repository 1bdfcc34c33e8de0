"""A bad manifest gives a clear CniError naming the file or object, never another exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import NadName, Namespace, PodName
from jaring.metaplugin.sources import LocalSource, nad_info, pod_info


def lookup_both(root: Path) -> None:
    src = LocalSource(root)
    src.get_nad(namespace=Namespace("ns1"), name=NadName("n1"))
    src.get_pod(namespace=Namespace("ns1"), name=PodName("p1"))


@pytest.mark.parametrize(
    ("file_name", "text", "code", "words"),
    [
        ("bad.json", '{"kind": "Pod", ', Code.DECODE, "not valid JSON"),
        ("bad.yaml", "kind: Pod\nmetadata: [unclosed\n", Code.DECODE, "not valid YAML"),
        ("bad.yml", "a: 1\n\tb: 2\n", Code.DECODE, "not valid YAML"),
        ("list.json", "[1, 2]", Code.INVALID_CONFIG, "not an object"),
        ("scalar.yaml", "just a string\n", Code.INVALID_CONFIG, "not an object"),
        ("items.json", '{"kind": "List", "items": [3]}', Code.INVALID_CONFIG, "not objects"),
    ],
)
def test_unreadable_manifest_names_the_file(
    tmp_path: Path, file_name: str, text: str, code: int, words: str
) -> None:
    (tmp_path / file_name).write_text(text)
    with pytest.raises(CniError) as info:
        lookup_both(tmp_path)
    assert info.value.code == code
    assert words in info.value.msg
    assert file_name in info.value.details


def test_manifest_that_is_not_utf8_is_a_decode_error(tmp_path: Path) -> None:
    (tmp_path / "bin.json").write_bytes(b'{"kind": "\xff"}')
    with pytest.raises(CniError) as info:
        lookup_both(tmp_path)
    assert info.value.code == Code.DECODE
    assert "bin.json" in info.value.details


def nad_doc(**spec: object) -> dict[str, Any]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "n1", "namespace": "ns1"},
        "spec": spec,
    }


def test_nad_spec_config_that_is_not_a_string(tmp_path: Path) -> None:
    (tmp_path / "n.json").write_text(json.dumps(nad_doc(config={"type": "macvlan"})))
    with pytest.raises(CniError) as info:
        LocalSource(tmp_path).get_nad(namespace=Namespace("ns1"), name=NadName("n1"))
    assert info.value.code == Code.INVALID_CONFIG
    assert "spec.config is not a string" in info.value.msg
    assert "ns1/n1" in info.value.msg
    assert "n.json" in info.value.msg


def test_nad_with_another_api_version(tmp_path: Path) -> None:
    doc = nad_doc(config="{}") | {"apiVersion": "k8s.cni.cncf.io/v2"}
    (tmp_path / "n.json").write_text(json.dumps(doc))
    with pytest.raises(CniError) as info:
        LocalSource(tmp_path).get_nad(namespace=Namespace("ns1"), name=NadName("n1"))
    assert info.value.code == Code.INVALID_CONFIG
    assert "k8s.cni.cncf.io/v2" in info.value.msg


def test_unquoted_yaml_annotation_value_is_named(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p1\n  namespace: ns1\n"
        "  annotations:\n    example.com/replicas: 3\n"
    )
    with pytest.raises(CniError) as info:
        LocalSource(tmp_path).get_pod(namespace=Namespace("ns1"), name=PodName("p1"))
    assert info.value.code == Code.INVALID_CONFIG
    assert "example.com/replicas" in info.value.msg


@pytest.mark.parametrize(
    ("obj", "words"),
    [
        (None, "not an object"),
        ([], "not an object"),
        ({"kind": "Pod"}, "no metadata object"),
        ({"metadata": {}}, "no metadata.name"),
        ({"metadata": {"name": 5}}, "no metadata.name"),
        ({"metadata": {"name": "p", "namespace": 1}}, "metadata.namespace"),
        ({"metadata": {"name": "p", "uid": 7}}, "metadata.uid"),
        ({"metadata": {"name": "p", "annotations": []}}, "metadata.annotations"),
        ({"metadata": {"name": "p", "annotations": {"a": None}}}, "annotation 'a'"),
        ({"metadata": {"name": "p"}, "spec": "x"}, "spec is not an object"),
        ({"metadata": {"name": "p"}, "spec": {"nodeName": 1}}, "spec.nodeName"),
    ],
)
def test_pod_of_the_wrong_shape(obj: object, words: str) -> None:
    with pytest.raises(CniError) as info:
        pod_info(obj, origin="the-origin")
    assert info.value.code == Code.INVALID_CONFIG
    assert words in info.value.msg
    assert "the-origin" in info.value.msg


@pytest.mark.parametrize(
    ("spec", "words"),
    [("x", "spec is not an object"), ({"config": 1}, "spec.config is not a string")],
)
def test_nad_of_the_wrong_shape(spec: object, words: str) -> None:
    obj = {"metadata": {"name": "n1", "namespace": "ns1"}, "spec": spec}
    with pytest.raises(CniError) as info:
        nad_info(obj, origin="the-origin")
    assert info.value.code == Code.INVALID_CONFIG
    assert words in info.value.msg


@pytest.mark.parametrize("name", ["../etc", "a/b", ".", "..", "UPPER", ""])
def test_path_unsafe_names_never_reach_the_filesystem(tmp_path: Path, name: str) -> None:
    src = LocalSource(tmp_path)
    with pytest.raises(CniError) as info:
        src.get_pod(namespace=Namespace(name), name=PodName("p1"))
    assert info.value.code == Code.INVALID_CONFIG
    with pytest.raises(CniError):
        src.write_status(namespace=Namespace("ns1"), name=PodName(name), status="[]")
    assert list(tmp_path.iterdir()) == []
