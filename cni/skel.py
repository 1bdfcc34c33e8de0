"""The one entry point of every jaring CNI executable (libcni's `skel`).

Reads the environment and stdin once, checks each command's required
variables from one table, gates CHECK/STATUS/GC by the config's version,
dispatches to a `Plugin`, and prints exactly one JSON document: the result
in the config's cniVersion, or the spec's error (SPEC.md "Section 3").
"""

from __future__ import annotations

import sys

from . import jsoncodec
from . import version as versions
from .errors import CniError, Code
from .logs import get_logger
from .plugin import COMMANDS, Plugin, Request, decode_config, parse_cni_args

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import NoReturn

log = get_logger(__name__)

# Which variables each command needs (libcni skel, SPEC.md "Parameters").
REQUIRED: Mapping[str, tuple[str, ...]] = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "STATUS": ("CNI_PATH",),
    "GC": ("CNI_PATH",),
    "VERSION": (),
}

# The first spec version that has each command.
MINIMUM_VERSION: Mapping[str, str] = {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}


def _dump(doc: object) -> bytes:
    return jsoncodec.dumps(doc, indent=None, separators=(",", ":")).encode() + b"\n"


def _version_reply(plugin: Plugin, stdin: bytes) -> bytes:
    asked = versions.LATEST
    try:
        doc = jsoncodec.loads(stdin) if stdin.strip() else {}
        value = doc.get("cniVersion") if isinstance(doc, dict) else None
        if isinstance(value, str) and value in plugin.supported_versions:
            asked = value
    except ValueError:
        pass
    return _dump({"cniVersion": asked, "supportedVersions": list(plugin.supported_versions)})


def build_request(command: str, environ: Mapping[str, str], stdin: bytes) -> Request:
    """The request for a command; CniError(4) names a missing variable."""
    missing = [name for name in REQUIRED[command] if not environ.get(name)]
    if missing:
        raise CniError(
            Code.INVALID_ENV,
            f"required environment variable{'s' if len(missing) > 1 else ''} missing",
            ", ".join(missing) + f" (for {command})",
        )
    path = tuple(p for p in environ.get("CNI_PATH", "").split(":") if p)
    return Request(
        command=command,
        stdin=stdin,
        container_id=environ.get("CNI_CONTAINERID", ""),
        netns=environ.get("CNI_NETNS", ""),
        ifname=environ.get("CNI_IFNAME", ""),
        args=parse_cni_args(environ.get("CNI_ARGS", "")),
        path=path,
        config=decode_config(stdin),
    )


def _check_version(plugin: Plugin, command: str, req: Request) -> str:
    cni_version = versions.require_supported(req.config.get("cniVersion"))
    if cni_version not in plugin.supported_versions:
        raise CniError(
            Code.INCOMPATIBLE_VERSION,
            "incompatible CNI versions",
            f"config is {cni_version!r}, plugin supports {', '.join(plugin.supported_versions)}",
        )
    minimum = MINIMUM_VERSION.get(command)
    if minimum and not versions.at_least(cni_version, minimum):
        raise CniError(
            Code.INCOMPATIBLE_VERSION,
            f"config version does not allow {command}",
            f"{command} needs cniVersion {minimum} or later, config is {cni_version}",
        )
    return cni_version


def _error_version(stdin: bytes) -> str:
    """Errors are printed in the config's version when it is one we know."""
    try:
        doc = jsoncodec.loads(stdin)
    except ValueError:
        return versions.LATEST
    value = doc.get("cniVersion") if isinstance(doc, dict) else None
    return value if isinstance(value, str) and value in versions.SUPPORTED else versions.LATEST


def run(
    plugin: Plugin, *, environ: Mapping[str, str], stdin: bytes, about: str = ""
) -> tuple[int, bytes]:
    """One CNI invocation: (exit code, bytes for stdout). Never raises."""
    command = environ.get("CNI_COMMAND", "")
    try:
        if not command:
            if about:
                return 0, b""
            raise CniError(Code.INVALID_ENV, "required environment variable missing", "CNI_COMMAND")
        if command not in COMMANDS:
            raise CniError(Code.INVALID_ENV, "unknown CNI_COMMAND", repr(command))
        if command == "VERSION":
            return 0, _version_reply(plugin, stdin)
        req = build_request(command, environ, stdin)
        cni_version = _check_version(plugin, command, req)
        if command == "ADD":
            result = plugin.add(req)
            return 0, _dump(result.to_json(cni_version))
        if command == "DEL":
            plugin.delete(req)
        elif command == "CHECK":
            plugin.check(req)
        elif command == "STATUS":
            plugin.status(req)
        else:
            plugin.gc(req)
        return 0, b""
    except CniError as exc:
        log.error("%s failed: %s", command or "CNI", exc)
        return 1, _dump(exc.to_json(_error_version(stdin)))
    except Exception as exc:  # spec: anything unexpected is code 999, traceback only in the log
        log.exception("%s failed unexpectedly", command or "CNI")
        error = CniError(Code.OTHER, "unexpected error", f"{type(exc).__name__}: {exc}")
        return 1, _dump(error.to_json(_error_version(stdin)))


def main(plugin: Plugin, about: str = "") -> NoReturn:
    """Run as a CNI executable: env + stdin in, one document out, exit code."""
    import os

    if not os.environ.get("CNI_COMMAND") and about:
        print(about, file=sys.stderr)
        raise SystemExit(0)
    stdin = sys.stdin.buffer.read()
    code, out = run(plugin, environ=os.environ, stdin=stdin, about=about)
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    raise SystemExit(code)
