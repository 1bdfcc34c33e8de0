"""What a CNI plugin is to jaring: a request in, a result or CniError out.

`skel` builds a `Request` from env + stdin and calls a `Plugin`; the
meta-plugin calls native delegates (found by `registry`) with the same
`Request`, in-process. One shape for both paths (SPEC.md "Parameters").
"""

from __future__ import annotations

from . import jsoncodec
from .errors import CniError, Code
from .records import field, record
from .types import Result

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Protocol
else:
    Protocol = object  # the classes below are only ever checked statically

COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")


@record(frozen=True)
class Request:
    """One CNI invocation: the env parameters plus the config on stdin."""

    command: str
    stdin: bytes
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: tuple[tuple[str, str], ...] = ()
    path: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        command: str,
        stdin: bytes,
        *,
        container_id: str = "",
        netns: str = "",
        ifname: str = "",
        args: tuple[tuple[str, str], ...] = (),
        path: tuple[str, ...] = (),
    ) -> Request:
        """Parse stdin as a JSON object; CniError(DECODE) when it is not one."""
        return cls(
            command=command,
            stdin=stdin,
            container_id=container_id,
            netns=netns,
            ifname=ifname,
            args=args,
            path=path,
            config=decode_config(stdin),
        )

    @property
    def cni_version(self) -> str:
        value = self.config.get("cniVersion", "")
        return value if isinstance(value, str) else ""

    def arg(self, name: str) -> str | None:
        """A CNI_ARGS value by key (last one wins, like libcni)."""
        found = None
        for key, value in self.args:
            if key == name:
                found = value
        return found


def decode_config(stdin: bytes) -> dict[str, Any]:
    try:
        doc = jsoncodec.loads(stdin) if stdin.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CniError(Code.DECODE, "network config is not valid JSON", str(exc)) from None
    if not isinstance(doc, dict):
        raise CniError(Code.DECODE, "network config must be a JSON object", type(doc).__name__)
    return doc


def parse_cni_args(raw: str) -> tuple[tuple[str, str], ...]:
    """'K=V;K2=V2' -> (('K','V'), ('K2','V2')); CniError(INVALID_ENV) if malformed."""
    pairs: list[tuple[str, str]] = []
    for item in raw.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CniError(Code.INVALID_ENV, "invalid CNI_ARGS", f"{item!r} is not K=V")
        pairs.append((key, value))
    return tuple(pairs)


class Plugin(Protocol):
    """A CNI plugin implemented in Python (native delegates, the meta-plugin)."""

    supported_versions: tuple[str, ...]

    def add(self, req: Request) -> Result: ...

    def delete(self, req: Request) -> None: ...

    def check(self, req: Request) -> None: ...

    def status(self, req: Request) -> None: ...

    def gc(self, req: Request) -> None: ...
