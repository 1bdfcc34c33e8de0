"""The one error type of jaring: a CNI error with the spec's codes.

Everything that fails in a CNI call ends as a `CniError`; `skel` prints it as
the spec's error JSON (CNI SPEC.md "Error"). Unexpected exceptions become code
999 there, with the traceback in the log only.
"""

from __future__ import annotations

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Code:
    """Well-known CNI error codes (SPEC.md, "Well-known Error Codes"), as plain
    ints: `enum` costs the binary milliseconds a call, and an error's code is
    any int a plugin chose anyway."""

    INCOMPATIBLE_VERSION = 1
    UNSUPPORTED_FIELD = 2
    CONTAINER_UNKNOWN = 3
    INVALID_ENV = 4
    IO = 5
    DECODE = 6
    INVALID_CONFIG = 7
    TRY_AGAIN_LATER = 11
    NOT_AVAILABLE = 50
    NOT_AVAILABLE_LIMITED = 51
    # 100+ are plugin specific; 999 is the customary "other".
    DELEGATE_FAILED = 100
    STATUS_WRITE = 101
    OTHER = 999


class CniError(Exception):
    """A CNI error: code, short message, details.

    The message names what is wrong; the details say where (the element,
    the key, the delegate). Both are shown to users verbatim.
    """

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = int(code)
        self.msg = msg
        self.details = details

    def to_json(self, cni_version: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            doc["details"] = self.details
        return doc

    @classmethod
    def from_json(cls, doc: object, *, fallback_msg: str = "plugin failed") -> CniError:
        """Build from a plugin's error JSON; tolerate any shape."""
        if not isinstance(doc, dict):
            return cls(Code.OTHER, fallback_msg, str(doc)[:500])
        code = doc.get("code")
        msg = doc.get("msg")
        details = doc.get("details")
        return cls(
            code if isinstance(code, int) and not isinstance(code, bool) else Code.OTHER,
            msg if isinstance(msg, str) and msg else fallback_msg,
            details if isinstance(details, str) else "",
        )

    def __str__(self) -> str:
        return f"{self.msg}: {self.details}" if self.details else self.msg

    def __repr__(self) -> str:
        return f"CniError({self.code}, {self.msg!r}, {self.details!r})"
