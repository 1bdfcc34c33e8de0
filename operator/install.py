"""Node installer run by the jaring-node DaemonSet's init container (`python -m
jaring.operator.install`): puts the jaring runtime tree and the `jaring` shim on the host,
then writes `00-jaring.conf` generated from the host's first CNI config, as Multus's auto
mode does. Every write is atomic (temp + fsync + rename) and nothing is ever removed on
restart (LESSONS #3, #4). Standard library only: it runs before anything else is there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONF_NAME = "00-jaring.conf"
CREDENTIALS_DIR = "jaring.d"  # inside the CNI config dir, as Multus's multus.d
KUBECONFIG_NAME = "jaring.kubeconfig"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
NETWORK_NAME = "jaring-cni-network"
CONFIG_SUFFIXES = (".conf", ".conflist", ".json")
COMPLETE_MARKER = ".complete"
# Types that are meta-plugins themselves: never a cluster network to delegate to.
META_TYPES = frozenset({"jaring", "multus", "multus-shim"})


class InstallError(Exception):
    """The host is not in a state to install into; the message says what to fix."""


@dataclass(frozen=True, kw_only=True)
class Paths:
    """Host directories as mounted into the installer container."""

    cni_bin_dir: Path
    cni_conf_dir: Path
    runtime_dir: Path  # where versioned runtime trees live, e.g. /opt/jaring

    def tree(self, version: str) -> Path:
        return self.runtime_dir / version


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Readers see the old file or the new one, never a partial one (rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def install_tree(source: Path, paths: Paths, version: str) -> Path:
    """Copy the runtime tree to `<runtime_dir>/<version>` once; a complete copy is kept.

    The copy goes to a temporary sibling and is renamed into place, so a crash leaves
    either no tree or a complete one (the marker is written last, inside the temp dir).
    """
    target = paths.tree(version)
    if (target / COMPLETE_MARKER).exists():
        return target
    if not source.is_dir():
        raise InstallError(f"runtime tree {source} does not exist in the image")
    paths.runtime_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=paths.runtime_dir))
    try:
        shutil.copytree(source, staging, symlinks=True, dirs_exist_ok=True)
        (staging / COMPLETE_MARKER).write_text(version + "\n")
        if target.exists():  # an incomplete earlier attempt: never used by any shim
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


SHEBANG_MAX = 255  # the kernel reads the first 256 bytes of a script (BINPRM_BUF_SIZE)


def shim_script(tree: Path, *, module: str = "jaring.metaplugin.main") -> bytes:
    """The `jaring` the runtime execs: the versioned tree's Python running `module.main()`.

    `-IS` (one shebang argument): no PYTHON* variables, no user site, no
    site-packages scan; the tree's own site-packages is added explicitly. The
    interpreter then starts in a third of the time, which is most of what a
    call forwarded to the node daemon costs.
    """
    python = tree / "bin" / "python3"
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = tree / "lib" / version / "site-packages"
    shebang = f"#!{python} -IS"
    if any(c.isspace() for c in str(python)) or len(shebang) > SHEBANG_MAX:
        raise InstallError(f"{python}: a script's interpreter path cannot hold spaces or be long")
    return (
        f"{shebang}\n"
        "# jaring's CNI binary, written by jaring-install: the runtime tree's Python,\n"
        "# started without the site scan (the tree's packages are named here).\n"
        "import sys\n"
        f"sys.path.append({str(site)!r})\n"
        f"from {module} import main\n"
        "main()\n"
    ).encode()


def install_shim(tree: Path, paths: Paths) -> Path:
    shim = paths.cni_bin_dir / "jaring"
    write_atomic(shim, shim_script(tree), mode=0o755)
    return shim


def _load(path: Path) -> Mapping[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # half-written or foreign file: not a usable cluster network
    return doc if isinstance(doc, dict) else None


def _types(doc: Mapping[str, Any]) -> set[str]:
    plugins = doc.get("plugins")
    if isinstance(plugins, list):
        return {
            p["type"] for p in plugins if isinstance(p, dict) and isinstance(p.get("type"), str)
        }
    return {doc["type"]} if isinstance(doc.get("type"), str) else set()


def first_cni_config(conf_dir: Path) -> tuple[Path, Mapping[str, Any]] | None:
    """The config the runtime would pick: the first by file name (libcni ConfFiles order),
    skipping our own and other meta-plugins' files and unreadable ones."""
    if not conf_dir.is_dir():
        return None
    for path in sorted(conf_dir.iterdir()):
        if path.name == CONF_NAME or path.suffix not in CONFIG_SUFFIXES or not path.is_file():
            continue
        doc = _load(path)
        if doc is None or not doc.get("cniVersion") or _types(doc) & META_TYPES:
            continue
        if not _types(doc):
            continue
        return path, doc
    return None


def _capabilities(doc: Mapping[str, Any]) -> dict[str, bool]:
    listed = doc.get("plugins")
    plugins = listed if isinstance(listed, list) else [doc]
    found: dict[str, bool] = {}
    for plugin in plugins:
        caps = plugin.get("capabilities") if isinstance(plugin, dict) else None
        if isinstance(caps, dict):
            found.update({k: True for k, v in caps.items() if v is True})
    return dict(sorted(found.items()))


def generate_config(
    cluster: Mapping[str, Any],
    *,
    cluster_path: Path,
    host_conf_dir: Path,
    kubeconfig: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`00-jaring.conf` for the cluster network `cluster` (Multus auto mode's shape).

    The meta-plugin inherits the cluster network's cniVersion and capabilities (so the
    runtime passes portMappings/bandwidth through) and waits on its config file as the
    readiness indicator. `cluster_path` is as the installer sees it; `host_conf_dir` is
    the same directory as the host (and so the meta-plugin) sees it.
    """
    conf: dict[str, Any] = {
        "cniVersion": cluster["cniVersion"],
        "name": NETWORK_NAME,
        "type": "jaring",
        "kubeconfig": kubeconfig,
        "readinessindicatorfile": str(host_conf_dir / cluster_path.name),
        "delegates": [dict(cluster)],
    }
    caps = _capabilities(cluster)
    if caps:
        conf["capabilities"] = caps
    conf.update(extra or {})
    return conf


def render(conf: Mapping[str, Any]) -> bytes:
    return (json.dumps(conf, indent=2, sort_keys=False) + "\n").encode()


def install_config(
    paths: Paths,
    *,
    host_conf_dir: Path,
    kubeconfig: str,
    extra: Mapping[str, Any] | None = None,
    wait: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """Write `00-jaring.conf`, waiting up to `wait` s for a cluster network to appear
    (NPWG: do not install before the default network is ready). Unchanged content is
    not rewritten; the file is never deleted."""
    deadline = clock() + wait
    while True:
        found = first_cni_config(paths.cni_conf_dir)
        if found is not None:
            break
        if clock() >= deadline:
            raise InstallError(
                f"no cluster network config in {paths.cni_conf_dir} "
                "(install the default CNI plugin first)"
            )
        sleep(1.0)
    cluster_path, cluster = found
    conf = generate_config(
        cluster,
        cluster_path=cluster_path,
        host_conf_dir=host_conf_dir,
        kubeconfig=kubeconfig,
        extra=extra,
    )
    target = paths.cni_conf_dir / CONF_NAME
    data = render(conf)
    try:
        if target.read_bytes() == data:
            return target
    except FileNotFoundError:
        pass
    write_atomic(target, data)
    return target


def api_server(environ: Mapping[str, str]) -> str:
    """The API server as pods reach it (the Service IP works from the host as well)."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise InstallError("KUBERNETES_SERVICE_HOST is not set: not running in a pod?")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def kubeconfig_doc(server: str) -> dict[str, Any]:
    """A kubeconfig whose CA and token are files next to it: the meta-plugin re-reads them
    on every call, so a rotated token never needs a new kubeconfig (LESSONS #7)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": "ca.crt"}}
        ],
        "users": [{"name": "jaring", "user": {"tokenFile": "token"}}],
        "contexts": [{"name": "jaring", "context": {"cluster": "local", "user": "jaring"}}],
        "current-context": "jaring",
    }


def _replace_if_changed(path: Path, data: bytes, *, mode: int) -> bool:
    try:
        if path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data, mode=mode)
    return True


def sync_credentials(*, service_account: Path, target: Path, server: str) -> bool:
    """Copy the pod's CA and (rotating) token next to the host kubeconfig; True if any
    file changed. The token and kubeconfig are readable by root only."""
    changed = False
    for name, mode in (("ca.crt", 0o644), ("token", 0o600)):
        try:
            data = (service_account / name).read_bytes()
        except FileNotFoundError:
            raise InstallError(
                f"service account file {service_account / name} is missing"
            ) from None
        changed |= _replace_if_changed(target / name, data, mode=mode)
    doc = render(kubeconfig_doc(server))
    changed |= _replace_if_changed(target / KUBECONFIG_NAME, doc, mode=0o600)
    return changed


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jaring-install", description=__doc__)
    parser.add_argument("--source", type=Path, default=Path("/opt/jaring"))
    parser.add_argument("--version", required=True, help="the image's version (tree name)")
    parser.add_argument("--cni-bin-dir", type=Path, default=Path("/host/opt/cni/bin"))
    parser.add_argument("--cni-conf-dir", type=Path, default=Path("/host/etc/cni/net.d"))
    parser.add_argument("--runtime-dir", type=Path, default=Path("/host/opt/jaring"))
    parser.add_argument(
        "--host-runtime-dir",
        type=Path,
        default=Path("/opt/jaring"),
        help="the runtime dir as the host sees it (the shim runs on the host)",
    )
    parser.add_argument(
        "--host-conf-dir",
        type=Path,
        default=Path("/etc/cni/net.d"),
        help="the CNI config dir as the host sees it",
    )
    parser.add_argument("--service-account", type=Path, default=SERVICE_ACCOUNT)
    parser.add_argument(
        "--wait", type=float, default=600.0, help="seconds to wait for a CNI config"
    )
    parser.add_argument(
        "--sync-only",
        action="store_true",
        help="only credentials and 00-jaring.conf (the sidecar; the init container did the rest)",
    )
    parser.add_argument(
        "--refresh",
        type=float,
        default=0.0,
        help="keep credentials and the config in sync every N seconds (0: once)",
    )
    return parser.parse_args(argv)


def _sync(args: argparse.Namespace, paths: Paths, environ: Mapping[str, str], wait: float) -> Path:
    sync_credentials(
        service_account=args.service_account,
        target=paths.cni_conf_dir / CREDENTIALS_DIR,
        server=api_server(environ),
    )
    kubeconfig = args.host_conf_dir / CREDENTIALS_DIR / KUBECONFIG_NAME
    return install_config(
        paths, host_conf_dir=args.host_conf_dir, kubeconfig=str(kubeconfig), wait=wait
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rounds: int | None = None,
) -> int:
    """Install once (exit code 0/1), or with --refresh keep syncing (`rounds` bounds it
    for tests). A failed refresh keeps what is installed: nothing is ever removed."""
    args = parse_args(argv)
    env = os.environ if environ is None else environ
    paths = Paths(
        cni_bin_dir=args.cni_bin_dir, cni_conf_dir=args.cni_conf_dir, runtime_dir=args.runtime_dir
    )
    try:
        if not args.sync_only:
            install_tree(args.source, paths, args.version)
            install_shim(args.host_runtime_dir / args.version, paths)
        conf = _sync(args, paths, env, args.wait)
    except (InstallError, OSError) as exc:
        print(f"jaring-install: {exc}", file=sys.stderr)
        return 1
    print(f"jaring-install: {args.version} installed, {conf} written", flush=True)
    done = 0
    while args.refresh > 0 and (rounds is None or done < rounds):
        sleep(args.refresh)
        done += 1
        try:
            _sync(args, paths, env, 0.0)
        except (InstallError, OSError) as exc:
            print(
                f"jaring-install: refresh failed, keeping the installed files: {exc}",
                file=sys.stderr,
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
