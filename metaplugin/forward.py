"""The `jaring` binary's client for the node daemon, and the wire protocol both speak.

`main.py` calls `forward` first; `None` means "the daemon is not there"
(socket missing, refused, not ready in time) and the binary runs standalone,
so a pod never blocks on the daemon (LESSONS #6). `daemon.py` imports the
framing from here. Standard library only: this is the binary's hot path.

Protocol (one request per connection, over a root-only unix socket):
  daemon -> client  READY (b"jaring/1\\n") as soon as it takes the connection
  client -> daemon  one JSON line {"env": {CNI_* variables}}, then the stdin bytes, then EOF
  daemon -> client  one JSON line {"code": exit code}, then the stdout bytes, then EOF
The client sends its request only after READY: a daemon that is hung or
overloaded is given up on before it could have started the operation.
"""

from __future__ import annotations

import _socket  # not `socket`: its enums cost the forwarded path milliseconds

# The forwarded path is the binary's whole life when the daemon runs: nothing it
# does not need is imported (`typing` and `collections.abc` are for the type
# checker only; JSON goes through `jsoncodec`, without `json` and `re`, and is
# loaded only for a config that names its socket or a value that needs escapes).
# tests/unit/test_forward_binary_* holds it to that.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

READY = b"jaring/1\n"
DEFAULT_SOCKET = "/run/jaring/jaring.sock"  # = config.DEFAULT_SOCKET, without importing it
FORWARDED_ENV = (
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
)
# Verbs that may run again standalone when the daemon dies under them: DEL is
# idempotent, the others change nothing. ADD is not retried (see `forward`).
REPEATABLE = frozenset({"DEL", "CHECK", "STATUS", "GC"})
CONNECT_TIMEOUT = 0.5
READY_TIMEOUT = 1.0
ANSWER_TIMEOUT = 300.0
MAX_FRAME = 16 << 20  # a CNI config or result is kilobytes; refuse absurd frames
_CODE_HEAD = b'{"code":'


def socket_for(stdin: bytes) -> str:
    """The daemon socket the config names (`daemonSocket`); "" disables forwarding.

    A config whose bytes can spell no such key (not as is, nor with a `\\u`
    escape, nor in UTF-16/32, which has NULs) names none: the default, without
    loading a JSON parser, ~0.45 ms of a forwarded call. Whatever such a config
    holds, the daemon parses it as standalone would, and answers its errors.
    """
    if b"daemonSocket" not in stdin and b"\\u" not in stdin and b"\0" not in stdin:
        return DEFAULT_SOCKET
    from jaring.cni import jsoncodec

    try:
        doc = jsoncodec.loads(stdin)
    except ValueError:
        return ""  # standalone prints the decode error
    if not isinstance(doc, dict):
        return ""
    value = doc.get("daemonSocket", DEFAULT_SOCKET)
    if value is None:
        return DEFAULT_SOCKET
    return value if isinstance(value, str) else ""


def _quote(text: str) -> str:
    """`text` as a JSON string; plain printable ASCII (every CNI_* value in practice)
    as it is, without an encoder."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return '"' + text + '"'
    from jaring.cni import jsoncodec

    return jsoncodec.dumps(text)


def encode_request(environ: Mapping[str, str], stdin: bytes) -> bytes:
    """The request frame: `{"env": {...}}` (compact JSON), a newline, the config bytes."""
    fields = ",".join(
        _quote(key) + ":" + _quote(environ[key]) for key in FORWARDED_ENV if key in environ
    )
    return ('{"env":{' + fields + "}}\n").encode() + stdin


def encode_answer(code: int, stdout: bytes) -> bytes:
    return _CODE_HEAD + str(int(code)).encode() + b"}\n" + stdout


def split_frame(data: bytes) -> tuple[dict[str, object], bytes]:
    """A JSON header line and the payload after it; ValueError if malformed."""
    head, sep, body = data.partition(b"\n")
    if not sep:
        raise ValueError("no header line")
    from jaring.cni import jsoncodec

    doc = jsoncodec.loads(head)
    if not isinstance(doc, dict):
        raise ValueError("header is not a JSON object")
    return doc, body


def answer_code(data: bytes) -> tuple[int, bytes]:
    """The daemon's answer frame: (exit code, stdout); ValueError if malformed.

    The header `encode_answer` writes is read without `json`; any other
    spelling of the same JSON object is parsed in full.
    """
    head, sep, body = data.partition(b"\n")
    if sep and head.startswith(_CODE_HEAD) and head.endswith(b"}"):
        digits = head[len(_CODE_HEAD) : -1]
        if digits.isdigit() or (digits[:1] == b"-" and digits[1:].isdigit()):
            return int(digits), body
    header, body = split_frame(data)
    code = header.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise ValueError(f"bad exit code {code!r}")
    return code, body


def read_all(sock: _socket.socket, *, limit: int = MAX_FRAME) -> bytes:
    """Read until EOF; ValueError beyond `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ValueError(f"frame larger than {limit} bytes")
        chunks.append(chunk)


def _error(cni_version: str, code: int, msg: str, details: str) -> bytes:
    from jaring.cni import jsoncodec

    doc = {"cniVersion": cni_version, "code": code, "msg": msg, "details": details}
    return jsoncodec.dumps(doc, separators=(",", ":")).encode() + b"\n"


def _version_of(stdin: bytes) -> str:
    from jaring.cni import jsoncodec

    try:
        doc = jsoncodec.loads(stdin)
    except ValueError:
        return "1.1.0"
    value = doc.get("cniVersion") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else "1.1.0"


def forward(
    path: str,
    *,
    environ: Mapping[str, str],
    stdin: bytes,
    connect_timeout: float = CONNECT_TIMEOUT,
    ready_timeout: float = READY_TIMEOUT,
    answer_timeout: float = ANSWER_TIMEOUT,
    note: Callable[[str], None] = lambda why: None,
) -> tuple[int, bytes] | None:
    """Run the request in the daemon: (exit code, stdout), or None to run standalone.

    None when the daemon cannot be reached or does not say READY in time.
    When the daemon dies after taking the request, DEL/CHECK/STATUS/GC return
    None too (they are safe to run again standalone); ADD answers CNI error 11,
    because a half-done ADD must be cleaned up by the runtime's DEL first.
    `note` hears why the daemon was not used (logging is not imported here:
    the forwarded path stays as small as the interpreter allows).
    """
    command = environ.get("CNI_COMMAND", "")
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            sock.settimeout(connect_timeout)
            sock.connect(path)
            sock.settimeout(ready_timeout)
            greeting = b""
            while len(greeting) < len(READY):
                chunk = sock.recv(len(READY) - len(greeting))
                if not chunk:
                    break
                greeting += chunk
        except OSError as exc:  # missing, refused, permission, timeout
            note(f"daemon {path} unavailable ({exc}): running standalone")
            return None
        if greeting != READY:
            note(f"daemon {path} did not say ready ({greeting!r}): running standalone")
            return None
        try:
            sock.settimeout(answer_timeout)
            sock.sendall(encode_request(environ, stdin))
            sock.shutdown(_socket.SHUT_WR)
            code, stdout = answer_code(read_all(sock))
        except (OSError, ValueError) as exc:
            if command in REPEATABLE:
                note(f"daemon {path} failed during {command} ({exc}): running standalone")
                return None
            details = f"{path}: {type(exc).__name__}: {exc}; DEL cleans up, then retry"
            return 1, _error(
                _version_of(stdin), 11, "jaring node daemon failed during the operation", details
            )
        return code, stdout
    finally:
        sock.close()
