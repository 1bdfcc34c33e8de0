"""LocalSource finds Pods and NADs in the local store's manifests (JSON, YAML, Lists)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import NadName, Namespace, PodName
from jaring.metaplugin.sources import LocalSource, NadInfo, PodInfo

NETWORKS = "k8s.v1.cni.cncf.io/networks"
MACVLAN = json.dumps({"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0"})


def pod(name: str, namespace: str | None = "ns1", **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "annotations": annotations}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"nodeName": "n1"}}


def nad(name: str, namespace: str | None = "ns1", config: object = MACVLAN) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": meta,
        "spec": {"config": config},
    }


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def get_pod(src: LocalSource, namespace: str, name: str) -> PodInfo:
    return src.get_pod(namespace=Namespace(namespace), name=PodName(name))


def get_nad(src: LocalSource, namespace: str, name: str) -> NadInfo | None:
    return src.get_nad(namespace=Namespace(namespace), name=NadName(name))


def test_pod_from_a_json_file_anywhere_under_the_root(tmp_path: Path) -> None:
    write(tmp_path / "some" / "dir" / "p.json", json.dumps(pod("p1", **{NETWORKS: "a,b"})))
    got = get_pod(LocalSource(tmp_path), "ns1", "p1")
    assert got == PodInfo(
        namespace=Namespace("ns1"),
        name=PodName("p1"),
        uid=got.uid,
        annotations={NETWORKS: "a,b"},
        node_name="n1",
    )
    assert got.uid == "uid-p1"


def test_yaml_multi_document_file_holds_pods_and_nads(tmp_path: Path) -> None:
    write(
        tmp_path / "all.yaml",
        textwrap.dedent(
            """\
            apiVersion: k8s.cni.cncf.io/v1
            kind: NetworkAttachmentDefinition
            metadata:
              name: mv
            spec:
              config: '{"cniVersion": "1.0.0", "type": "macvlan"}'
            ---
            ---
            apiVersion: v1
            kind: Pod
            metadata:
              name: web
              namespace: ns1
              annotations:
                k8s.v1.cni.cncf.io/networks: default/mv@data0
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: ignored}
            """
        ),
    )
    src = LocalSource(tmp_path)
    web = get_pod(src, "ns1", "web")
    assert web.annotations == {NETWORKS: "default/mv@data0"}
    assert web.uid == ""  # no metadata.uid: the meta-plugin then skips the UID check
    found = get_nad(src, "default", "mv")  # no namespace in the manifest: "default"
    assert found is not None
    assert json.loads(found.config) == {"cniVersion": "1.0.0", "type": "macvlan"}


def test_json_list_kind_expands_to_its_items(tmp_path: Path) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [pod("a"), nad("n1"), pod("b")]}
    write(tmp_path / "list.json", json.dumps(doc))
    src = LocalSource(tmp_path)
    assert get_pod(src, "ns1", "a").name == "a"
    assert get_pod(src, "ns1", "b").name == "b"
    assert get_nad(src, "ns1", "n1") is not None


def test_canonical_jaringctl_file_is_read_without_scanning_others(tmp_path: Path) -> None:
    # A broken manifest elsewhere does not matter when the canonical file exists.
    write(tmp_path / "pods" / "ns1" / "p1.json", json.dumps(pod("p1")))
    write(tmp_path / "network-attachment-definitions" / "ns1" / "n1.json", json.dumps(nad("n1")))
    write(tmp_path / "broken.yaml", "{{{{ not yaml")
    src = LocalSource(tmp_path)
    assert get_pod(src, "ns1", "p1").uid == "uid-p1"
    found = get_nad(src, "ns1", "n1")
    assert found is not None
    assert found.config == MACVLAN


def test_missing_pod_is_container_unknown(tmp_path: Path) -> None:
    write(tmp_path / "p.json", json.dumps(pod("p1")))
    with pytest.raises(CniError) as info:
        get_pod(LocalSource(tmp_path), "ns1", "other")
    assert info.value.code == Code.CONTAINER_UNKNOWN
    assert "ns1/other" in info.value.details


def test_missing_nad_is_none_and_namespaces_do_not_mix(tmp_path: Path) -> None:
    write(tmp_path / "n.json", json.dumps(nad("n1", namespace="ns1")))
    src = LocalSource(tmp_path)
    assert get_nad(src, "ns2", "n1") is None
    assert get_nad(src, "ns1", "n2") is None
    assert get_nad(src, "ns1", "n1") is not None


def test_missing_root_means_nothing_is_there(tmp_path: Path) -> None:
    src = LocalSource(tmp_path / "absent")
    assert get_nad(src, "ns1", "n1") is None
    with pytest.raises(CniError) as info:
        get_pod(src, "ns1", "p1")
    assert info.value.code == Code.CONTAINER_UNKNOWN


def test_private_dirs_are_not_manifests(tmp_path: Path) -> None:
    write(tmp_path / ".status" / "ns1_p1.json", json.dumps(pod("p1")))
    write(tmp_path / ".jaring" / "x.json", json.dumps(nad("n1")))
    src = LocalSource(tmp_path)
    assert get_nad(src, "ns1", "n1") is None
    with pytest.raises(CniError):
        get_pod(src, "ns1", "p1")


def test_nad_without_spec_config_has_empty_config(tmp_path: Path) -> None:
    doc = nad("n1")
    del doc["spec"]
    write(tmp_path / "n.json", json.dumps(doc))
    found = get_nad(LocalSource(tmp_path), "ns1", "n1")
    assert found is not None
    assert found.config == ""


def test_an_object_defined_twice_is_an_error_naming_both_files(tmp_path: Path) -> None:
    write(tmp_path / "a.json", json.dumps(nad("n1")))
    write(tmp_path / "b" / "c.yml", json.dumps(nad("n1")))
    with pytest.raises(CniError) as info:
        get_nad(LocalSource(tmp_path), "ns1", "n1")
    assert info.value.code == Code.INVALID_CONFIG
    assert "a.json" in info.value.details
    assert "c.yml" in info.value.details


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    write(path, json.dumps(pod("p1", **{NETWORKS: "a"})))
    src = LocalSource(tmp_path)
    assert get_pod(src, "ns1", "p1").annotations == {NETWORKS: "a"}
    write(path, json.dumps(pod("p1", **{NETWORKS: "a,b,c"})))
    os.utime(path, ns=(1, 1))  # a different mtime even on a coarse clock
    assert get_pod(src, "ns1", "p1").annotations == {NETWORKS: "a,b,c"}


def test_json_only_store_never_imports_yaml(tmp_path: Path) -> None:
    write(tmp_path / "pods" / "ns1" / "p1.json", json.dumps(pod("p1")))
    write(tmp_path / "other.yaml", json.dumps(nad("n1")))  # JSON text in a .yaml file
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from jaring.metaplugin.sources import LocalSource
        src = LocalSource(Path({str(tmp_path)!r}))
        assert src.get_pod(namespace="ns1", name="p1").uid == "uid-p1"
        assert src.get_nad(namespace="ns1", name="n1") is not None
        assert "yaml" not in sys.modules, "yaml was imported"
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
