"""jaringctl apply/delete/get over a local store: validation before writing, the
canonical files of the local store contract, and one-line errors (issue 3)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jaring.cni.ids import NadName, Namespace, PodName
from jaring.metaplugin import ctl
from jaring.metaplugin.sources import LocalSource

JARINGCTL = str(Path(sys.executable).parent / "jaringctl")
QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"

NAD_YAML = """\
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: blue
  namespace: team
spec:
  config: '{"cniVersion": "1.0.0", "type": "bridge", "bridge": "br-blue"}'
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: team
  annotations:
    k8s.v1.cni.cncf.io/networks: blue@data
spec: {containers: [{name: app, image: pause}]}
"""

POD_LIST_JSON = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db", "uid": "fixed-uid"}},
    ],
}


def run(capsys: pytest.CaptureFixture[str], store: Path, *argv: str) -> tuple[int, str, str]:
    code = ctl.main(["--state-dir", str(store), *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "team.yaml").write_text(NAD_YAML)
    (folder / "db.json").write_text(json.dumps(POD_LIST_JSON))
    (folder / "README.md").write_text("not a manifest")
    return folder


def test_apply_writes_the_canonical_files_the_local_source_reads(
    tmp_path: Path, manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    code, out, err = run(capsys, store, "apply", "-f", str(manifests))
    assert (code, err) == (0, "")
    assert "networkattachmentdefinition/team/blue created" in out
    assert "pod/team/web created" in out and "pod/default/db created" in out
    nad = json.loads((store / "network-attachment-definitions/team/blue.json").read_text())
    assert nad["spec"]["config"].startswith('{"cniVersion"')
    web = json.loads((store / "pods/team/web.json").read_text())
    assert web["metadata"]["uid"]  # assigned, since the manifest had none
    db = json.loads((store / "pods/default/db.json").read_text())
    assert db["metadata"] == {"name": "db", "namespace": "default", "uid": "fixed-uid"}

    source = LocalSource(store)
    pod = source.get_pod(namespace=Namespace("team"), name=PodName("web"))
    assert pod.uid == web["metadata"]["uid"]
    assert pod.annotations["k8s.v1.cni.cncf.io/networks"] == "blue@data"
    found = source.get_nad(namespace=Namespace("team"), name=NadName("blue"))
    assert found is not None and '"bridge"' in found.config


def test_apply_again_is_unchanged_and_keeps_the_assigned_uid(
    tmp_path: Path, manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    run(capsys, store, "apply", "-f", str(manifests))
    uid = json.loads((store / "pods/team/web.json").read_text())["metadata"]["uid"]
    code, out, _ = run(capsys, store, "apply", "-f", str(manifests / "team.yaml"))
    assert code == 0
    assert "pod/team/web unchanged" in out
    assert json.loads((store / "pods/team/web.json").read_text())["metadata"]["uid"] == uid
    changed = NAD_YAML.replace("blue@data", "blue@data2")
    (manifests / "team.yaml").write_text(changed)
    code, out, _ = run(capsys, store, "apply", "-f", str(manifests / "team.yaml"))
    assert "pod/team/web configured" in out
    assert json.loads((store / "pods/team/web.json").read_text())["metadata"]["uid"] == uid


BAD = [
    ("bad.yaml", "kind: Pod\nmetadata: {name: [oops\n", "not valid YAML"),
    ("bad.json", '{"kind": "Pod",', "not valid JSON"),
    ("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "'ConfigMap'"),
    ("noname.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {generateName: x-}\n", "metadata.name"),
    (
        "api.yaml",
        "apiVersion: k8s.cni.cncf.io/v2\nkind: NetworkAttachmentDefinition\nmetadata: {name: n}\n",
        "apiVersion must be 'k8s.cni.cncf.io/v1'",
    ),
    (
        "nadname.yaml",
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n"
        "metadata: {name: Not_A_Label}\n",
        "DNS-1123 label",
    ),
    (
        "cfgjson.yaml",
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n"
        'metadata: {name: n}\nspec: {config: \'{"cniVersion": "1.0.0", "type": \'}\n',
        "spec.config is not a valid CNI config: network config is not valid JSON",
    ),
    (
        "cfgtype.yaml",
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n"
        'metadata: {name: n}\nspec: {config: \'{"cniVersion": "1.0.0"}\'}\n',
        "spec.config is not a valid CNI config",
    ),
    (
        "cfgver.yaml",
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n"
        'metadata: {name: n}\nspec: {config: \'{"cniVersion": "9.9.9", "type": "x"}\'}\n',
        "incompatible CNI versions",
    ),
    (
        "cfgobj.yaml",
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n"
        "metadata: {name: n}\nspec: {config: {type: bridge}}\n",
        "spec.config must be a string",
    ),
    (
        "ann.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
        '    k8s.v1.cni.cncf.io/networks: \'[{"interface": "x"}]\'\n',
        "annotation k8s.v1.cni.cncf.io/networks",
    ),
    (
        "ifdup.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
        "    k8s.v1.cni.cncf.io/networks: a@x, b@x\n",
        "both use interface x",
    ),
    (
        "annint.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {a: 1}\n",
        "metadata.annotations must map strings to strings",
    ),
    (
        "twice.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
        "defined twice",
    ),
    ("scalar.yaml", "just a string\n", "must be an object"),
]


@pytest.mark.parametrize(("file_name", "text", "reason"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_manifest_is_refused_with_file_object_and_reason_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file_name: str, text: str, reason: str
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good = "apiVersion: v1\nkind: Pod\nmetadata: {name: aaa-good}\n"
    (folder / "0-good.yaml").write_text(good)  # valid, but must not be written either
    (folder / file_name).write_text(text)
    store = tmp_path / "store"
    code, out, err = run(capsys, store, "apply", "-f", str(folder))
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("jaringctl: ")
    assert str(folder / file_name) in err
    assert reason in err
    assert not (store / "pods").exists()
    assert not (store / "network-attachment-definitions").exists()


def test_the_refusal_names_the_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n"
        "metadata: {name: red, namespace: ops}\nspec: {config: 'nope'}\n"
    )
    code, _, err = run(capsys, tmp_path / "s", "apply", "-f", str(path))
    assert code == 1
    assert f"{path}: NetworkAttachmentDefinition ops/red: spec.config" in err


def test_a_nad_without_config_is_stored_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "n.yaml"
    path.write_text("apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n")
    path.write_text(path.read_text() + "metadata: {name: ondisk}\n")
    code, out, _ = run(capsys, tmp_path / "s", "apply", "-f", str(path))
    assert code == 0
    assert "note:" in out and "confDir" in out


def test_get_lists_pods_and_nads_as_table_json_and_yaml(
    tmp_path: Path, manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    run(capsys, store, "apply", "-f", str(manifests))
    code, out, _ = run(capsys, store, "get", "pods")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["NAMESPACE", "NAME", "STATUS", "NETWORKS"]
    assert lines[1].split() == ["default", "db", "Down", "<cluster", "only>"]
    assert lines[2].split() == ["team", "web", "Down", "team/blue@data"]
    code, out, _ = run(capsys, store, "get", "nads", "-o", "wide")
    assert out.splitlines()[1].split()[:5] == ["team", "blue", "bridge", "blue", "1.0.0"]
    code, out, _ = run(capsys, store, "get", "pods", "-n", "team", "-o", "json")
    doc = json.loads(out)
    assert [i["metadata"]["name"] for i in doc["items"]] == ["web"]
    code, out, _ = run(capsys, store, "get", "pod", "team/web", "-o", "yaml")
    assert yaml.safe_load(out)["items"][0]["metadata"]["name"] == "web"


def test_get_shows_network_status_in_json_output(
    tmp_path: Path, manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    run(capsys, store, "apply", "-f", str(manifests))
    status = [{"name": "jaring-local", "interface": "eth0", "ips": ["10.0.0.2"], "default": True}]
    (store / ".status").mkdir()
    (store / ".status" / "team_web.json").write_text(json.dumps(status))
    _, out, _ = run(capsys, store, "get", "pods", "team/web", "-o", "json")
    annotations = json.loads(out)["items"][0]["metadata"]["annotations"]
    assert json.loads(annotations["k8s.v1.cni.cncf.io/network-status"]) == status


def test_get_of_a_missing_object_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, tmp_path / "s", "get", "pods", "ghost")
    assert code == 1
    assert err == "jaringctl: pod not found: default/ghost\n"


def test_get_skips_an_unreadable_file_with_a_warning(
    tmp_path: Path, manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    run(capsys, store, "apply", "-f", str(manifests))
    (store / "broken.json").write_text("{")
    code, out, err = run(capsys, store, "get", "nads")
    assert code == 0
    assert "skipped" in err and "broken.json" in err
    assert "blue" in out


def test_delete_removes_the_objects_and_a_second_delete_says_not_found(
    tmp_path: Path, manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    run(capsys, store, "apply", "-f", str(manifests))
    code, out, _ = run(capsys, store, "delete", "-f", str(manifests / "team.yaml"))
    assert code == 0
    assert "pod/team/web deleted" in out
    assert not (store / "pods" / "team").exists()
    assert (store / "pods/default/db.json").exists()
    code, out, _ = run(capsys, store, "delete", "-f", str(manifests / "team.yaml"))
    assert code == 0
    assert "pod/team/web not found" in out
    code, out, _ = run(capsys, store, "delete", "pod", "db")
    assert "pod/default/db deleted" in out


def test_apply_reads_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(POD_LIST_JSON)))
    code, out, _ = run(capsys, tmp_path / "s", "apply", "-f", "-")
    assert code == 0 and "pod/default/db created" in out


def test_the_quickstart_manifests_are_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, tmp_path / "s", "apply", "-f", str(QUICKSTART))
    assert (code, err) == (0, "")
    assert out.count(" created") == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bogus"], "invalid choice: 'bogus'"),
        (["apply"], "the following arguments are required: -f/--filename"),
        (["get", "widgets"], "unknown kind 'widgets'"),
        (["apply", "-f", "/nonexistent/x.yaml"], "/nonexistent/x.yaml: no such file"),
        (["get", "pods", "-o", "xml"], "invalid choice: 'xml'"),
    ],
)
def test_usage_errors_are_one_line_with_exit_status_1(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    done = subprocess.run(
        [JARINGCTL, "--state-dir", str(tmp_path), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_state_dir_may_follow_the_subcommand(
    tmp_path: Path, manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = ctl.main(["apply", "-f", str(manifests), "--state-dir", str(tmp_path / "late")])
    capsys.readouterr()
    assert code == 0
    assert (tmp_path / "late" / "pods" / "team" / "web.json").exists()
