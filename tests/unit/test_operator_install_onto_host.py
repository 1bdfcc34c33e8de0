"""The node installer, on a fake host in a temporary directory: runtime tree and shim put
in place atomically, `00-jaring.conf` generated from the first CNI config (Multus auto
mode), left alone when unchanged, never removed, and a wait for a missing cluster network."""

from __future__ import annotations

import json
import os
import stat
import sys
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
    lines = shim.read_text().splitlines()
    assert lines[0] == "#!/opt/jaring/1.2.3/bin/python3 -IS"  # one argument: the kernel's rule
    site = f"/opt/jaring/1.2.3/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
    assert f"sys.path.append({site!r})" in lines
    assert lines[-2:] == ["from jaring.metaplugin.main import main", "main()"]


def test_a_tree_path_a_shebang_cannot_hold_is_refused(host: install.Paths) -> None:
    with pytest.raises(install.InstallError, match="spaces"):
        install.install_shim(Path("/opt/my jaring/1.0"), host)
    with pytest.raises(install.InstallError, match="long"):
        install.install_shim(Path("/opt/" + "j" * 300), host)
    assert not (host.cni_bin_dir / "jaring").exists()


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


ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


@pytest.fixture
def service_account(tmp_path: Path) -> Path:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "ca.crt").write_text("CA\n")
    (sa / "token").write_text("token-1")
    return sa


def main_args(host: install.Paths, source: Path, sa: Path, *extra: str) -> list[str]:
    return [
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
        "--service-account",
        str(sa),
        "--wait",
        "0",
        *extra,
    ]


def test_main_installs_everything_and_reports_errors(
    host: install.Paths,
    source: Path,
    service_account: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = main_args(host, source, service_account)
    assert install.main(args, environ=ENV) == 1
    assert "no cluster network config" in capsys.readouterr().err
    write(host.cni_conf_dir / "10-calico.conflist", CALICO)
    assert install.main(args, environ=ENV) == 0
    assert (host.cni_bin_dir / "jaring").exists()
    assert (host.tree("9.9.9") / "bin/python3").exists()
    conf = json.loads((host.cni_conf_dir / "00-jaring.conf").read_text())
    assert conf["type"] == "jaring"
    assert conf["kubeconfig"] == "/etc/cni/net.d/jaring.d/jaring.kubeconfig"
    assert install.main(args, environ={}) == 1
    assert "KUBERNETES_SERVICE_HOST is not set" in capsys.readouterr().err


def test_host_kubeconfig_points_at_files_the_plugin_rereads(
    host: install.Paths, service_account: Path
) -> None:
    target = host.cni_conf_dir / "jaring.d"
    assert install.sync_credentials(
        service_account=service_account, target=target, server="https://10.96.0.1:443"
    )
    doc = json.loads((target / "jaring.kubeconfig").read_text())
    assert doc["clusters"][0]["cluster"] == {
        "server": "https://10.96.0.1:443",
        "certificate-authority": "ca.crt",
    }
    assert doc["users"][0]["user"] == {"tokenFile": "token"}
    assert (target / "token").read_text() == "token-1"
    assert stat.S_IMODE((target / "token").stat().st_mode) == 0o600
    assert stat.S_IMODE((target / "jaring.kubeconfig").stat().st_mode) == 0o600
    assert not install.sync_credentials(
        service_account=service_account, target=target, server="https://10.96.0.1:443"
    )
    (service_account / "token").write_text("token-2")  # kubelet rotated it
    assert install.sync_credentials(
        service_account=service_account, target=target, server="https://10.96.0.1:443"
    )
    assert (target / "token").read_text() == "token-2"


def test_missing_service_account_files_are_a_clear_error(
    host: install.Paths, tmp_path: Path
) -> None:
    with pytest.raises(install.InstallError, match=r"service account file .*ca\.crt is missing"):
        install.sync_credentials(
            service_account=tmp_path / "none", target=tmp_path / "t", server="https://x"
        )


def test_api_server_address_forms() -> None:
    assert install.api_server(ENV) == "https://10.96.0.1:443"
    assert install.api_server({"KUBERNETES_SERVICE_HOST": "fd00::1"}) == "https://[fd00::1]:443"


def test_refresh_follows_token_rotation_and_keeps_files_when_the_network_goes(
    host: install.Paths,
    source: Path,
    service_account: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write(host.cni_conf_dir / "10-calico.conflist", CALICO)
    conf = host.cni_conf_dir / "00-jaring.conf"
    events: list[str] = []

    def sleep(_: float) -> None:
        # Between rounds: the token rotates, then the cluster network's file disappears.
        if not events:
            (service_account / "token").write_text("token-2")
            events.append("rotated")
        else:
            (host.cni_conf_dir / "10-calico.conflist").unlink()
            events.append("network gone")

    args = main_args(host, source, service_account, "--sync-only", "--refresh", "30")
    assert install.main(args, environ=ENV, sleep=sleep, rounds=2) == 0
    assert events == ["rotated", "network gone"]
    assert (host.cni_conf_dir / "jaring.d/token").read_text() == "token-2"
    assert "refresh failed, keeping the installed files" in capsys.readouterr().err
    assert json.loads(conf.read_text())["delegates"] == [CALICO]  # never removed
    assert not (host.cni_bin_dir / "jaring").exists()  # --sync-only: the init container's job


def test_write_atomic_sets_the_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "deep/dir/file"
    install.write_atomic(target, b"one", mode=0o600)
    install.write_atomic(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["file"]
