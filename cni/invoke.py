"""Running a network's plugin chain: ADD, DEL, CHECK, STATUS, GC (libcni's job).

The meta-plugin calls `add_network` and friends with a `NetworkConfig`; an
`Executor` runs one plugin: `BinaryExecutor` execs the binary found on
CNI_PATH (SPEC.md "Section 3: Execution"), `NativeExecutor` runs a Python
plugin in-process through `registry`. Chaining follows SPEC.md "Section 4":
prevResult on ADD, reverse order on DEL, CHECK in order with the result.
"""

from __future__ import annotations

import os

from . import jsoncodec, registry, spawn
from . import version as versions
from .errors import CniError, Code
from .netconf import NetworkConfig, check_type
from .plugin import Plugin, Request, decode_config
from .records import record, replace
from .types import Result

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, Protocol
else:
    Protocol = object  # the classes below are only ever checked statically

DEFAULT_TIMEOUT = 60.0


@record(frozen=True)
class Runtime:
    """The per-attachment CNI parameters (everything but the config)."""

    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: tuple[tuple[str, str], ...] = ()
    path: tuple[str, ...] = ()


class Executor(Protocol):
    """Runs one plugin: returns its parsed stdout (ADD/VERSION), None otherwise."""

    def __call__(
        self, command: str, plugin_type: str, stdin: bytes, runtime: Runtime
    ) -> dict[str, Any] | None: ...


class PluginNotFoundError(CniError):
    """No executable for a type on CNI_PATH (nothing of it can have run)."""


def find_plugin(plugin_type: str, path: Sequence[str]) -> str:
    """The executable for a type on CNI_PATH; CniError if there is none."""
    check_type(plugin_type, "plugin")
    for directory in path:
        if not directory:
            continue
        candidate = os.path.join(directory, plugin_type)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise PluginNotFoundError(
        Code.INVALID_CONFIG,
        f"failed to find plugin {plugin_type!r} in path",
        ":".join(path) or "(CNI_PATH is empty)",
    )


def _env(command: str, runtime: Runtime) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env.update(
        CNI_COMMAND=command,
        CNI_CONTAINERID=runtime.container_id,
        CNI_NETNS=runtime.netns,
        CNI_IFNAME=runtime.ifname,
        CNI_ARGS=";".join(f"{k}={v}" for k, v in runtime.args),
        CNI_PATH=":".join(runtime.path),
    )
    return env


class BinaryExecutor:
    """Exec a plugin binary from CNI_PATH with the CNI environment."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout

    def __call__(
        self, command: str, plugin_type: str, stdin: bytes, runtime: Runtime
    ) -> dict[str, Any] | None:
        binary = find_plugin(plugin_type, runtime.path)
        try:
            proc = spawn.run(binary, stdin=stdin, env=_env(command, runtime), timeout=self.timeout)
        except spawn.TimedOutError:
            raise CniError(
                Code.TRY_AGAIN_LATER,
                f"plugin {plugin_type!r} timed out",
                f"{command} took more than {self.timeout:.0f} s",
            ) from None
        except OSError as exc:
            raise CniError(Code.IO, f"cannot execute plugin {plugin_type!r}", str(exc)) from None
        out = proc.stdout.strip()
        if proc.returncode != 0:
            try:
                doc = jsoncodec.loads(out) if out else None
            except ValueError:
                doc = None
            stderr = proc.stderr.decode(errors="replace").strip()[-500:]
            fallback = f"plugin {plugin_type!r} failed (exit {proc.returncode})"
            if doc is None:
                raise CniError(Code.OTHER, fallback, stderr or out.decode(errors="replace")[:500])
            raise CniError.from_json(doc, fallback_msg=fallback)
        if not out:
            return None
        try:
            doc = jsoncodec.loads(out)
        except ValueError:
            raise CniError(
                Code.DECODE,
                f"plugin {plugin_type!r} printed something that is not JSON",
                out.decode(errors="replace")[:500],
            ) from None
        if not isinstance(doc, dict):
            raise CniError(
                Code.DECODE, f"plugin {plugin_type!r} printed a non-object", repr(doc)[:200]
            )
        return doc


class NativeExecutor:
    """Run a native plugin in-process; types without one go to `fallback`."""

    def __init__(
        self,
        *,
        fallback: Executor | None = None,
        exec_types: frozenset[str] = frozenset(),
        loader: Callable[[str], Plugin] = registry.load,
    ) -> None:
        self.fallback = fallback or BinaryExecutor()
        self.exec_types = exec_types
        self.loader = loader

    def __call__(
        self, command: str, plugin_type: str, stdin: bytes, runtime: Runtime
    ) -> dict[str, Any] | None:
        if plugin_type in self.exec_types or not registry.has_native(plugin_type):
            return self.fallback(command, plugin_type, stdin, runtime)
        plugin = self.loader(plugin_type)
        req = Request(
            command=command,
            stdin=stdin,
            container_id=runtime.container_id,
            netns=runtime.netns,
            ifname=runtime.ifname,
            args=runtime.args,
            path=runtime.path,
            config=decode_config(stdin),
        )
        if command == "VERSION":
            return {
                "cniVersion": versions.LATEST,
                "supportedVersions": list(plugin.supported_versions),
            }
        try:
            if command == "ADD":
                return plugin.add(req).to_json(req.cni_version or None)
            if command == "DEL":
                plugin.delete(req)
            elif command == "CHECK":
                plugin.check(req)
            elif command == "STATUS":
                plugin.status(req)
            elif command == "GC":
                plugin.gc(req)
            else:
                raise CniError(Code.INVALID_ENV, "unknown CNI command", command)
        except CniError:
            raise
        except Exception as exc:  # a plugin bug must not escape as a traceback
            raise CniError(
                Code.OTHER, f"plugin {plugin_type!r} failed", f"{type(exc).__name__}: {exc}"
            ) from exc
        return None


def _stdin(conf: Mapping[str, Any]) -> bytes:
    return jsoncodec.dumps(conf, separators=(",", ":")).encode()


def add_network(
    net: NetworkConfig,
    runtime: Runtime,
    executor: Executor,
    *,
    runtime_config: Mapping[str, Any] | None = None,
) -> Result:
    """ADD every plugin of the chain in order, each getting the previous result."""
    prev: dict[str, Any] | None = None
    for index, plugin in enumerate(net.plugins):
        conf = net.plugin_config(index, runtime_config=runtime_config, prev_result=prev)
        out = executor("ADD", str(plugin["type"]), _stdin(conf), runtime)
        if out is None:
            raise CniError(
                Code.DECODE, f"plugin {plugin['type']!r} returned no result for ADD", net.name
            )
        result = Result.from_json(out)
        prev = result.to_json(net.cni_version)
    assert prev is not None  # a network has at least one plugin
    return Result.from_json(prev)


def del_network(
    net: NetworkConfig,
    runtime: Runtime,
    executor: Executor,
    *,
    runtime_config: Mapping[str, Any] | None = None,
    prev_result: Result | None = None,
) -> None:
    """DEL every plugin in reverse; all are tried, the first error is raised at the end."""
    prev = _prev(net, prev_result) if versions.at_least(net.cni_version, "0.4.0") else None
    errors: list[CniError] = []
    for index in reversed(range(len(net.plugins))):
        conf = net.plugin_config(index, runtime_config=runtime_config, prev_result=prev)
        try:
            executor("DEL", str(net.plugins[index]["type"]), _stdin(conf), runtime)
        except CniError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]  # as it is, so callers can tell PluginNotFoundError apart
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)"
        if all(isinstance(e, PluginNotFoundError) for e in errors):
            raise PluginNotFoundError(first.code, first.msg + more, first.details)
        raise CniError(first.code, first.msg + more, first.details)


def check_network(
    net: NetworkConfig,
    runtime: Runtime,
    executor: Executor,
    *,
    runtime_config: Mapping[str, Any] | None = None,
    prev_result: Result | None = None,
) -> None:
    """CHECK every plugin in order with the cached result (0.4.0 and later)."""
    if not versions.at_least(net.cni_version, "0.4.0"):
        raise CniError(
            Code.INCOMPATIBLE_VERSION,
            "CHECK is not supported before CNI 0.4.0",
            f"network {net.name!r} is {net.cni_version}",
        )
    if net.disable_check:
        return
    if prev_result is None:
        raise CniError(Code.OTHER, "CHECK needs the cached result", net.name)
    prev = _prev(net, prev_result)
    for index, plugin in enumerate(net.plugins):
        conf = net.plugin_config(index, runtime_config=runtime_config, prev_result=prev)
        executor("CHECK", str(plugin["type"]), _stdin(conf), runtime)


def speaks(executor: Executor, plugin_type: str, cni_version: str, runtime: Runtime) -> bool:
    """Does the plugin support `cni_version`? (its VERSION answer, SPEC.md "VERSION")."""
    stdin = _stdin({"cniVersion": cni_version})
    try:
        out = executor("VERSION", plugin_type, stdin, runtime)
    except CniError:
        return False
    supported = out.get("supportedVersions") if out else None
    return isinstance(supported, list) and cni_version in supported


def status_network(net: NetworkConfig, executor: Executor, *, path: Sequence[str]) -> None:
    """STATUS every plugin (1.1.0 and later); older networks have no STATUS.

    A plugin that does not speak 1.1.0 (e.g. reference plugins before 1.5)
    has no STATUS either: it is asked its VERSION first and skipped.
    """
    if not versions.at_least(net.cni_version, "1.1.0"):
        return
    runtime = Runtime(path=tuple(path))
    for index, plugin in enumerate(net.plugins):
        plugin_type = str(plugin["type"])
        if not speaks(executor, plugin_type, net.cni_version, runtime):
            continue
        executor("STATUS", plugin_type, _stdin(net.plugin_config(index)), runtime)


def gc_network(
    net: NetworkConfig,
    executor: Executor,
    *,
    path: Sequence[str],
    valid_attachments: Sequence[Mapping[str, str]],
) -> None:
    """GC every plugin (1.1.0 and later) with the attachments still valid."""
    if not versions.at_least(net.cni_version, "1.1.0") or net.disable_gc:
        return
    runtime = Runtime(path=tuple(path))
    errors: list[CniError] = []
    for index, plugin in enumerate(net.plugins):
        plugin_type = str(plugin["type"])
        if not speaks(executor, plugin_type, net.cni_version, runtime):
            continue  # no GC before 1.1.0, as in status_network
        conf = net.plugin_config(index)
        conf["cni.dev/valid-attachments"] = [dict(a) for a in valid_attachments]
        try:
            executor("GC", plugin_type, _stdin(conf), runtime)
        except CniError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def _prev(net: NetworkConfig, result: Result | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return replace(result, cni_version=net.cni_version).to_json(net.cni_version)
