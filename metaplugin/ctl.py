"""`jaringctl`: clusterless jaring, pods as network namespaces on this machine.

The command line over the local store (`ctl_store`), the runtime role
(`ctl_runtime`) and the quick-start demo (`ctl_demo`); see issue 3 and
DESIGN.md "Local / clusterless". Every failure is one line on stderr and
exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from jaring.cni import selection
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import Namespace

from .ctl_runtime import Runtime, say
from .ctl_store import (
    NAD,
    NETWORKS_ANNOTATION,
    POD,
    STATUS_ANNOTATION,
    ObjectKey,
    load_manifests,
    nad_network,
)

DEFAULT_STATE_DIR = "/var/lib/jaring/local"
KINDS = {
    "pod": POD,
    "pods": POD,
    "po": POD,
    "nad": NAD,
    "nads": NAD,
    "net-attach-def": NAD,
    "network-attachment-definitions": NAD,
    "networkattachmentdefinition": NAD,
}

Exec = Callable[[str, list[str]], Any]


class _Parser(argparse.ArgumentParser):
    """argparse that fails in one line with exit status 1, like every other error."""

    def error(self, message: str) -> NoReturn:
        print(f"jaringctl: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(1)


def build_parser() -> argparse.ArgumentParser:
    state = _Parser(add_help=False)
    state.add_argument(
        "--state-dir",
        default=argparse.SUPPRESS,
        help=f"the local store of manifests and state (default {DEFAULT_STATE_DIR})",
    )
    parser = _Parser(
        prog="jaringctl",
        description="Run multi-network pods on this machine: pods are network namespaces, "
        "Pods and NetworkAttachmentDefinitions are ordinary Kubernetes manifests.",
        parents=[state],
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[state])

    def pod_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("pod", help="POD or NAMESPACE/POD")
        p.add_argument("-n", "--namespace", default="default", help="default: default")

    p = command("apply", "store Pod and NetworkAttachmentDefinition manifests (validated)")
    p.add_argument("-f", "--filename", action="append", required=True, metavar="FILE|DIR|-")
    p = command("delete", "remove objects from the store (a pod that is up goes down first)")
    p.add_argument("-f", "--filename", action="append", metavar="FILE|DIR|-")
    p.add_argument("kind", nargs="?", help="pod or nad (instead of -f)")
    p.add_argument("names", nargs="*", help="names, or NAMESPACE/NAME")
    p.add_argument("-n", "--namespace", default="default")
    p = command("get", "list pods or nads")
    p.add_argument("kind", help="pods or nads")
    p.add_argument("names", nargs="*", help="only these (NAME or NAMESPACE/NAME)")
    p.add_argument("-n", "--namespace", default=None, help="only this namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="(the default)")
    p.add_argument("-o", "--output", choices=("wide", "json", "yaml"), default=None)
    p = command("up", "create the pod's netns and run CNI ADD through the jaring binary")
    pod_arg(p)
    p.add_argument("--cluster-subnet", default=None, help="cluster network (default 10.89.0.0/24)")
    p.add_argument("--cluster-bridge", default=None, help="its bridge (default jaring0)")
    p = command("down", "run CNI DEL and remove the pod's netns (succeeds when already down)")
    pod_arg(p)
    p.add_argument("--force", action="store_true", help="remove the netns even if DEL fails")
    p = command("exec", "run a command in the pod's network namespace")
    pod_arg(p)
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    p = command("check", "run CNI CHECK for a pod that is up")
    pod_arg(p)
    command("gc", "run CNI GC: everything of pods that are not up is released")
    p = command("demo", "the quick start: two pods on three networks, pings, teardown")
    p.add_argument("dir", help="the manifests (examples/quickstart)")
    return parser


def split_ref(text: str, namespace: str) -> tuple[str, str]:
    ns, slash, name = text.partition("/")
    if not slash:
        ns, name = namespace, text
    if not name or "/" in name:
        raise CniError(Code.INVALID_CONFIG, f"{text!r} is not NAME or NAMESPACE/NAME")
    return ns, name


def _need_root(command: str) -> None:
    if os.geteuid() != 0:
        raise CniError(Code.IO, f"jaringctl {command} needs root (it manages network namespaces)")


# -- commands --------------------------------------------------------------------


def cmd_apply(args: argparse.Namespace, runtime: Runtime) -> int:
    stdin_text = sys.stdin.read() if "-" in args.filename else None
    manifests = load_manifests(args.filename, stdin_text=stdin_text)
    if not manifests:
        raise CniError(Code.INVALID_CONFIG, f"no objects in {', '.join(args.filename)}")
    with runtime.lock():
        for manifest in manifests:
            outcome = runtime.store.write(manifest)
            say(f"{_kind_word(manifest.key.kind)}/{_ref(manifest.key)} {outcome}")
            for note in manifest.notes:
                say(f"  note: {note}")
    return 0


def cmd_delete(args: argparse.Namespace, runtime: Runtime) -> int:
    keys: list[ObjectKey] = []
    if args.filename:
        if args.kind:
            raise CniError(Code.INVALID_CONFIG, "give either -f or KIND NAME..., not both")
        stdin_text = sys.stdin.read() if "-" in args.filename else None
        keys = [m.key for m in load_manifests(args.filename, stdin_text=stdin_text)]
    else:
        if not args.kind or not args.names:
            raise CniError(Code.INVALID_CONFIG, "delete needs -f FILE or KIND NAME...")
        kind = _kind(args.kind)
        keys = [ObjectKey(kind, *split_ref(n, args.namespace)) for n in args.names]
    with runtime.lock():
        for key in keys:
            if key.kind == POD and runtime.record(namespace=key.namespace, name=key.name):
                _need_root("delete of a pod that is up")
                runtime.down(namespace=key.namespace, name=key.name)
                say(f"pod {_ref(key)} down")
            if runtime.store.remove(key):
                say(f"{_kind_word(key.kind)}/{_ref(key)} deleted")
            elif key in runtime.store.objects():
                path = runtime.store.objects()[key].path
                say(f"{_kind_word(key.kind)}/{_ref(key)} is in {path}, not applied: left there")
            else:
                say(f"{_kind_word(key.kind)}/{_ref(key)} not found")
    return 0


def cmd_get(args: argparse.Namespace, runtime: Runtime) -> int:
    kind = _kind(args.kind)
    warnings: list[str] = []
    objects = runtime.store.objects(warn=warnings)
    for warning in warnings:
        print(f"jaringctl: warning: {warning}", file=sys.stderr)
    wanted = {split_ref(n, args.namespace or "default") for n in args.names}
    selected = [
        stored
        for key, stored in sorted(objects.items())
        if key.kind == kind
        and (args.namespace is None or args.all_namespaces or key.namespace == args.namespace)
        and (not wanted or (key.namespace, key.name) in wanted)
    ]
    missing = wanted - {(s.key.namespace, s.key.name) for s in selected}
    if missing:
        names = ", ".join(f"{ns}/{n}" for ns, n in sorted(missing))
        raise CniError(Code.CONTAINER_UNKNOWN, f"{_kind_word(kind)} not found: {names}")
    if args.output in ("json", "yaml"):
        items = []
        for stored in selected:
            body = json.loads(json.dumps(stored.body))
            if kind == POD:
                status = runtime.store.network_status(
                    namespace=stored.key.namespace, name=stored.key.name
                )
                if status is not None:
                    annotations = body.setdefault("metadata", {}).setdefault("annotations", {})
                    annotations[STATUS_ANNOTATION] = json.dumps(status)
            items.append(body)
        doc = {"apiVersion": "v1", "kind": "List", "items": items}
        if args.output == "json":
            say(json.dumps(doc, indent=2, sort_keys=True))
        else:
            import yaml

            say(yaml.safe_dump(doc, sort_keys=True).rstrip("\n"))
        return 0
    wide = args.output == "wide"
    rows: list[list[str]]
    if kind == POD:
        rows = [["NAMESPACE", "NAME", "STATUS", "NETWORKS"]]
        if wide:
            rows[0] += ["NETNS", "INTERFACES"]
        for stored in selected:
            ns, name = stored.key.namespace, stored.key.name
            row = [ns, name, runtime.state(namespace=ns, name=name), _networks(stored.body)]
            if wide:
                rec = runtime.record(namespace=ns, name=name)
                status = runtime.store.network_status(namespace=ns, name=name) or []
                row += [rec.netns if rec else "<none>", _interfaces(status) or "<none>"]
            rows.append(row)
    else:
        rows = [["NAMESPACE", "NAME", "TYPE"]]
        if wide:
            rows[0] += ["CNI NAME", "CNI VERSION", "FILE"]
        for stored in selected:
            try:
                network = nad_network(stored.body)
                types = ",".join(str(p.get("type")) for p in network.plugins) if network else ""
                extra = [network.name, network.cni_version] if network else ["<confDir>", ""]
            except CniError as exc:
                types, extra = f"<invalid: {exc.msg}>", ["", ""]
            row = [stored.key.namespace, stored.key.name, types or "<confDir>"]
            if wide:
                row += [*extra, str(stored.path)]
            rows.append(row)
    if len(rows) == 1:
        print(f"No {_kind_word(kind)}s in {runtime.root}.", file=sys.stderr)
        return 0
    _print_table(rows)
    return 0


def cmd_up(args: argparse.Namespace, runtime: Runtime) -> int:
    _need_root("up")
    namespace, name = split_ref(args.pod, args.namespace)
    with runtime.lock():
        rec = runtime.up(
            namespace=namespace,
            name=name,
            subnet=args.cluster_subnet,
            bridge=args.cluster_bridge,
        )
    status = runtime.store.network_status(namespace=namespace, name=name) or []
    say(f"pod {rec.ref} up: netns {rec.netns}, {_interfaces(status) or 'no network-status'}")
    return 0


def cmd_down(args: argparse.Namespace, runtime: Runtime) -> int:
    _need_root("down")
    namespace, name = split_ref(args.pod, args.namespace)
    with runtime.lock():
        was_up = runtime.down(namespace=namespace, name=name, force=args.force)
    say(f"pod {namespace}/{name} {'down' if was_up else 'is not up (nothing to do)'}")
    return 0


def cmd_exec(args: argparse.Namespace, runtime: Runtime, execvp: Exec) -> int:
    _need_root("exec")
    namespace, name = split_ref(args.pod, args.namespace)
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise CniError(Code.INVALID_CONFIG, "exec needs a command: jaringctl exec POD -- CMD...")
    rec = runtime.record(namespace=namespace, name=name)
    if rec is None or not runtime.is_up(rec):
        raise CniError(Code.CONTAINER_UNKNOWN, f"pod {namespace}/{name} is not up")
    sys.stdout.flush()
    execvp("ip", ["ip", "netns", "exec", rec.netns, *cmd])
    return 0


def cmd_check(args: argparse.Namespace, runtime: Runtime) -> int:
    _need_root("check")
    namespace, name = split_ref(args.pod, args.namespace)
    with runtime.lock():
        rec = runtime.check(namespace=namespace, name=name)
    say(f"pod {rec.ref}: CNI CHECK passed")
    return 0


def cmd_gc(args: argparse.Namespace, runtime: Runtime) -> int:
    _need_root("gc")
    with runtime.lock():
        valid, stale = runtime.gc()
    kept = ", ".join(r.ref for r in valid) or "none"
    say(f"gc: kept the pods that are up ({kept})")
    for rec in stale:
        say(f"gc: released {rec.ref} (its netns was gone or its up never finished)")
    return 0


def cmd_demo(args: argparse.Namespace, runtime: Runtime) -> int:
    _need_root("demo")
    from .ctl_demo import DEMO_STATE_DIR, Demo

    # Never the user's own store unless asked; host messages indented under each step.
    root = Path(getattr(args, "state_dir", DEMO_STATE_DIR))
    demo_runtime = Runtime(root, out=lambda text: say(f"    {text}"))
    return Demo(demo_runtime, Path(args.dir)).run()


# -- output helpers ----------------------------------------------------------------


def _kind(text: str) -> str:
    kind = KINDS.get(text.lower())
    if kind is None:
        raise CniError(Code.INVALID_CONFIG, f"unknown kind {text!r}: use pods or nads")
    return kind


def _kind_word(kind: str) -> str:
    return "pod" if kind == POD else "networkattachmentdefinition"


def _ref(key: ObjectKey) -> str:
    return f"{key.namespace}/{key.name}"


def _networks(body: Mapping[str, Any]) -> str:
    metadata = body.get("metadata") or {}
    text = (metadata.get("annotations") or {}).get(NETWORKS_ANNOTATION, "")
    if not text.strip():
        return "<cluster only>"
    try:
        chosen = selection.parse_selection(
            text, pod_namespace=Namespace(str(metadata.get("namespace") or "default"))
        )
    except CniError:
        return "<invalid annotation>"
    return ",".join(str(a.network) + (f"@{a.interface}" if a.interface else "") for a in chosen)


def _interfaces(status: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for entry in status:
        ips = entry.get("ips") or []
        parts.append(f"{entry.get('interface', '?')}=" + ("/".join(map(str, ips)) or "-"))
    return " ".join(parts)


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        say("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


# -- entry point ---------------------------------------------------------------------


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None, *, execvp: Exec = os.execvp) -> int:
    args = build_parser().parse_args(argv)
    runtime = Runtime(Path(getattr(args, "state_dir", DEFAULT_STATE_DIR)))
    commands: dict[str, Callable[[argparse.Namespace, Runtime], int]] = {
        "apply": cmd_apply,
        "delete": cmd_delete,
        "get": cmd_get,
        "up": cmd_up,
        "down": cmd_down,
        "exec": lambda a, r: cmd_exec(a, r, execvp),
        "check": cmd_check,
        "gc": cmd_gc,
        "demo": cmd_demo,
    }
    previous = signal.signal(signal.SIGTERM, _terminate)  # cleanup runs on kill too
    try:
        return commands[args.command](args, runtime)
    except CniError as exc:
        print(f"jaringctl: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("jaringctl: interrupted; what this command made was removed", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:  # a store jaringctl may not write, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"jaringctl: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # never a traceback: one line, exit 1
        print(f"jaringctl: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
