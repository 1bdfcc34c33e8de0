"""The node installer, on a fake host in a temporary directory: runtime tree and shim put
in place atomically, `00-jaring.conf` generated from the first CNI config (Multus auto
mode), left alone when unchanged, never removed, and a wait for a missing cluster network."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from jaring.operator import install

CALICO = {
    "cniVersion": "0.3.1",
    "name": "k8s-pod-network",
    "plugins": [
        {"type": "calico", "ipam": {"type": "calico-ipam"}},
        {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        {"type": "bandwidth", "capabilities": {"bandwidth": True, "other": False}},
    ],
}


@pytest.fixture
def host(tmp_path: Path) -> install.Paths:
    paths = install.Paths(
        cni_bin_dir=tmp_path / "opt/cni/bin",
        cni_conf_dir=tmp_path / "etc/cni/net.d",
        runtime_dir=tmp_path / "opt/jaring",
    )
    paths.cni_conf_dir.mkdir(parents=True)
    return paths


@pytest.fixture
def source(tmp_path: Path) -> Path:
    tree = tmp_path / "image/opt/jaring"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin/python3").write_text("#!/bin/sh\n")
    (tree / "lib").mkdir()
    (tree / "lib/jaring.py").write_text("# runtime\n")
    return tree


def write(path: Path, doc: object) -> None:
    path.write_text(json.dumps(doc))


def test_config_is_generated_from_the_first_config_by_file_name(host: install.Paths) -> None:
    write(host.cni_conf_dir / "10-calico.conflist", CALICO)
    write(host.cni_conf_dir / "20-other.conf", {"cniVersion": "1.0.0", "name": "o", "type": "x"})
    target = install.install_config(
        host, host_conf_dir=Path("/etc/cni/net.d"), kubeconfig="/etc/cni/net.d/j.kubeconfig"
    )
    assert target == host.cni_conf_dir / "00-jaring.conf"
    conf = json.loads(target.read_text())
    assert conf == {
        "cniVersion": "0.3.1",
        "name": "jaring-cni-network",
        "type": "jaring",
        "kubeconfig": "/etc/cni/net.d/j.kubeconfig",
        "readinessindicatorfile": "/etc/cni/net.d/10-calico.conflist",
        "delegates": [CALICO],
        "capabilities": {"bandwidth": True, "portMappings": True},
    }


def test_own_meta_plugin_broken_and_foreign_files_are_skipped(host: install.Paths) -> None:
    d = host.cni_conf_dir
    write(d / "00-multus.conf", {"cniVersion": "0.3.1", "name": "m", "type": "multus"})
    (d / "01-half-written.conf").write_text('{"cniVersion": "1.0')
    (d / "02-readme.txt").write_text("not a config")
    write(d / "03-no-version.conf", {"name": "n", "type": "bridge"})
    write(
        d / "05-flannel.conflist",
        {"cniVersion": "1.0.0", "name": "cbr0", "plugins": [{"type": "flannel"}]},
    )
    install.install_config(host, host_conf_dir=Path("/etc/cni/net.d"), kubeconfig="k")
    conf = json.loads((d / "00-jaring.conf").read_text())
    assert conf["delegates"][0]["name"] == "cbr0"
    assert "capabilities" not in conf
    # Re-running picks the same network: our own 00-jaring.conf is never its own delegate.
    install.install_config(host, host_conf_dir=Path("/etc/cni/net.d"), kubeconfig="k")
    assert json.loads((d / "00-jaring.conf").read_text()) == conf


def test_unchanged_config_is_not_rewritten_and_a_changed_one_is(host: install.Paths) -> None:
    write(host.cni_conf_dir / "10-calico.conflist", CALICO)
    target = install.install_config(host, host_conf_dir=Path("/etc/cni/net.d"), kubeconfig="k")
    inode = target.stat().st_ino
    install.install_config(host, host_conf_dir=Path("/etc/cni/net.d"), kubeconfig="k")
    assert target.stat().st_ino == inode
    install.install_config(host, host_conf_dir=Path("/etc/cni/net.d"), kubeconfig="k2")
    assert target.stat().st_ino != inode  # replaced by rename, not edited in place
    assert json.loads(target.read_text())["kubeconfig"] == "k2"
    assert [p.name for p in host.cni_conf_dir.iterdir() if p.name.startswith(".")] == []


def test_missing_cluster_network_waits_then_fails_clearly(host: install.Paths) -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    with pytest.raises(install.InstallError, match="no cluster network config"):
        install.install_config(
            host,
            host_conf_dir=Path("/x"),
            kubeconfig="k",
            wait=3.0,
            clock=lambda: now[0],
            sleep=sleep,
        )
    assert sleeps == [1.0, 1.0, 1.0]
    assert not (host.cni_conf_dir / "00-jaring.conf").exists()


def test_waiting_ends_when_the_cluster_network_appears(host: install.Paths) -> None:
    def sleep(_: float) -> None:
        write(host.cni_conf_dir / "10-calico.conflist", CALICO)

    target = install.install_config(
        host, host_conf_dir=Path("/x"), kubeconfig="k", wait=60.0, sleep=sleep
    )
    assert json.loads(target.read_text())["delegates"] == [CALICO]


def test_tree_and_shim_are_installed_once_and_kept(host: install.Paths, source: Path) -> None:
    tree = install.install_tree(source, host, "1.2.3")
    assert (tree / "lib/jaring.py").read_text() == "# runtime\n"
    assert (tree / install.COMPLETE_MARKER).exists()
    (source / "lib/jaring.py").write_text("# changed image\n")
    assert install.install_tree(source, host, "1.2.3") == tree
    assert (tree / "lib/jaring.py").read_text() == "# runtime\n"  # complete trees are kept
    shim = install.install_shim(Path("/opt/jaring/1.2.3"), host)
    assert shim == host.cni_bin_dir / "jaring"
    assert stat.S_IMODE(shim.stat().st_mode) == 0o755
    assert shim.read_text() == (
        '#!/bin/sh\nexec "/opt/jaring/1.2.3/bin/python3" -m jaring.metaplugin.main "$@"\n'
    )


def test_an_incomplete_tree_from_a_crash_is_replaced(host: install.Paths, source: Path) -> None:
    broken = host.tree("2.0.0")
    broken.mkdir(parents=True)
    (broken / "partial").write_text("")
    tree = install.install_tree(source, host, "2.0.0")
    assert not (tree / "partial").exists()
    assert (tree / "bin/python3").exists()
    assert [p.name for p in host.runtime_dir.iterdir()] == ["2.0.0"]


def test_a_failed_copy_leaves_no_staging_directory(host: install.Paths, tmp_path: Path) -> None:
    with pytest.raises(install.InstallError, match="does not exist"):
        install.install_tree(tmp_path / "missing", host, "3.0.0")
    assert not host.runtime_dir.exists() or list(host.runtime_dir.iterdir()) == []


def test_main_installs_everything_and_reports_errors(
    host: install.Paths, source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--source",
        str(source),
        "--version",
        "9.9.9",
        "--cni-bin-dir",
        str(host.cni_bin_dir),
        "--cni-conf-dir",
        str(host.cni_conf_dir),
        "--runtime-dir",
        str(host.runtime_dir),
        "--wait",
        "0",
    ]
    assert install.main(args) == 1
    assert "no cluster network config" in capsys.readouterr().err
    write(host.cni_conf_dir / "10-calico.conflist", CALICO)
    assert install.main(args) == 0
    assert (host.cni_bin_dir / "jaring").exists()
    assert (host.tree("9.9.9") / "bin/python3").exists()
    assert json.loads((host.cni_conf_dir / "00-jaring.conf").read_text())["type"] == "jaring"


def test_write_atomic_sets_the_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "deep/dir/file"
    install.write_atomic(target, b"one", mode=0o600)
    install.write_atomic(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["file"]
