"""The per-container record of what ADD did, so DEL needs nothing else.

The meta-plugin writes it before each delegate runs (LESSONS #1): the exact
delegate config, ifname and runtimeConfig, then the result. Written
atomically (temp + fsync + rename), read tolerantly: a damaged file or entry
is logged and skipped, never fatal to DEL. GC lists and prunes it.
"""

from __future__ import annotations

import os

from jaring.cni import jsoncodec
from jaring.cni.ids import ContainerID, IfName, Namespace, PodName, PodUID
from jaring.cni.logs import get_logger
from jaring.cni.records import asdict, field, record, replace

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

log = get_logger(__name__)

FORMAT = 1
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def is_safe_id(text: str) -> bool:
    """A container ID that is a plain file name: letters, digits, `_.-`, not
    starting with `_.-` (no `re`: it costs the binary milliseconds a call)."""
    return bool(text) and text[0] not in "_.-" and _ID_CHARS.issuperset(text)


@record(frozen=True)
class CachedAttachment:
    """One delegate attachment as it was (or is being) made."""

    network: str  # "namespace/name" of the NAD, or the cluster network's name
    ifname: IfName
    config: Mapping[str, Any]  # the delegate conf/conflist exactly as sent
    runtime_config: Mapping[str, Any] = field(default_factory=dict)
    result: Mapping[str, Any] | None = None  # None until the delegate's ADD returned
    default: bool = False
    device_info_file: str = ""


@record(frozen=True)
class CacheEntry:
    container_id: ContainerID
    netns: str = ""
    pod_namespace: Namespace = Namespace("")
    pod_name: PodName = PodName("")
    pod_uid: PodUID = PodUID("")
    cni_args: tuple[tuple[str, str], ...] = ()
    cni_version: str = ""
    attachments: tuple[CachedAttachment, ...] = ()

    def with_attachment(self, attachment: CachedAttachment) -> CacheEntry:
        """Add or replace (by ifname) one attachment, keeping the order."""
        kept = [a for a in self.attachments if a.ifname != attachment.ifname]
        if len(kept) == len(self.attachments):
            return replace(self, attachments=(*self.attachments, attachment))
        return replace(
            self,
            attachments=tuple(
                attachment if a.ifname == attachment.ifname else a for a in self.attachments
            ),
        )

    def without(self, ifnames: set[str]) -> CacheEntry:
        return replace(
            self, attachments=tuple(a for a in self.attachments if a.ifname not in ifnames)
        )

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["format"] = FORMAT
        doc["cni_args"] = [list(p) for p in self.cni_args]
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], *, source: str = "") -> CacheEntry:
        """Tolerant: bad attachments are logged and dropped, not fatal."""
        attachments = []
        for index, raw in enumerate(doc.get("attachments") or []):
            try:
                attachments.append(_attachment(raw))
            except (TypeError, ValueError, KeyError) as exc:
                log.warning("cache %s: attachment %d unreadable (%s); skipped", source, index, exc)
        args = doc.get("cni_args") or []
        return cls(
            container_id=ContainerID(str(doc["container_id"])),
            netns=str(doc.get("netns") or ""),
            pod_namespace=Namespace(str(doc.get("pod_namespace") or "")),
            pod_name=PodName(str(doc.get("pod_name") or "")),
            pod_uid=PodUID(str(doc.get("pod_uid") or "")),
            cni_args=tuple((str(k), str(v)) for k, v in args if isinstance(k, str)),
            cni_version=str(doc.get("cni_version") or ""),
            attachments=tuple(attachments),
        )


def _attachment(raw: Any) -> CachedAttachment:
    if not isinstance(raw, dict):
        raise TypeError("not an object")
    config = raw["config"]
    if not isinstance(config, dict) or not isinstance(raw["ifname"], str):
        raise ValueError("config or ifname missing")
    result = raw.get("result")
    return CachedAttachment(
        network=str(raw.get("network") or ""),
        ifname=IfName(raw["ifname"]),
        config=config,
        runtime_config=raw.get("runtime_config") or {},
        result=result if isinstance(result, dict) else None,
        default=bool(raw.get("default")),
        device_info_file=str(raw.get("device_info_file") or ""),
    )


class StateCache:
    """A directory of `<containerID>.json` files."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)  # a str: pathlib is ~3 ms the binary does without

    def path(self, container_id: str) -> str:
        if not is_safe_id(container_id):
            raise ValueError(f"unsafe container id {container_id!r}")
        return os.path.join(self.root, f"{container_id}.json")

    def load(self, container_id: ContainerID) -> CacheEntry | None:
        """The entry, or None when absent or unreadable (logged)."""
        path = self.path(container_id)
        try:
            with open(path, "rb") as fh:
                doc = jsoncodec.loads(fh.read())
            if not isinstance(doc, dict) or doc.get("container_id") != container_id:
                raise ValueError("not a jaring cache entry for this container")
            return CacheEntry.from_json(doc, source=path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("cache %s is unreadable (%s); falling back", path, exc)
            return None

    def save(self, entry: CacheEntry, *, durable: bool = True) -> None:
        """Atomic replace; `durable` also syncs the data before the rename."""
        _make_dir(self.root)
        path = self.path(entry.container_id)
        data = jsoncodec.dumps(entry.to_json(), separators=(",", ":")).encode()
        # Not tempfile: it imports shutil, bz2 and lzma on the binary's path.
        name = os.path.basename(path)
        tmp = os.path.join(self.root, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            _unlink(tmp)
            raise

    def remove(self, container_id: ContainerID) -> None:
        _unlink(self.path(container_id))

    def container_ids(self) -> list[ContainerID]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(
            ContainerID(n[: -len(".json")])
            for n in names
            if n.endswith(".json") and not n.startswith(".") and is_safe_id(n[: -len(".json")])
        )


def _unlink(path: str) -> None:
    try:  # noqa: SIM105  # contextlib costs the binary ~2 ms a call
        os.unlink(path)
    except FileNotFoundError:
        pass


def _make_dir(path: str) -> None:
    """`Path(path).mkdir(parents=True, exist_ok=True, mode=0o700)`: parents as usual."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path.rstrip("/"))
    if parent:
        os.makedirs(parent, exist_ok=True)
    try:  # noqa: SIM105  # contextlib costs the binary ~2 ms a call
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
