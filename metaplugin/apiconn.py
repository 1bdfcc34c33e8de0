"""One HTTP/1.1 connection to the Kubernetes API, on the C modules `_socket` and `_ssl`.

A standalone CNI call makes three API calls; importing `socket.py`, `ssl.py`
and `urllib.parse` for them cost more than the calls (their enums,
`selectors`, the IDNA codec a str host drags into `getaddrinfo`). This module
speaks to the C layer those wrap:
- `ServerURL` is the little of `urlsplit` a kubeconfig's `server` needs;
- `tls_context` builds what `ssl.create_default_context()` builds, on the
  context class it is given (`_ssl._SSLContext` here; `ssl.SSLContext` for the
  node daemon's watch streams, which hand their socket to http.client);
- `Connection` dials, wraps with `_SSLContext._wrap_socket` (the call
  `ssl.SSLContext.wrap_socket` makes), and exchanges one request at a time.
Errors are OSError (connection, TLS, timeout), `ConnectionLostError` (the
server closed the connection) or `ProtocolError` (not HTTP/1.x); `kubeclient`
decides what is worth a retry.
"""

from __future__ import annotations

import _socket
import io

from jaring.cni.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Protocol

    from _typeshed import ReadableBuffer, WriteableBuffer

    class TlsContext(Protocol):
        """The context calls used here (`_ssl._SSLContext`, `ssl.SSLContext`)."""

        check_hostname: bool

        def load_verify_locations(
            self,
            cafile: str | None = ...,
            capath: str | None = ...,
            cadata: str | bytes | None = ...,
        ) -> None: ...
        def set_default_verify_paths(self) -> None: ...
        def load_cert_chain(self, certfile: str, keyfile: str | None = ...) -> None: ...

    class TlsObject(Protocol):
        """`_ssl._SSLSocket`, which typeshed leaves out."""

        def do_handshake(self) -> None: ...
        def read(self, size: int, buffer: WriteableBuffer, /) -> int: ...
        def write(self, data: ReadableBuffer, /) -> int: ...


MAX_HEADER_LINE = 65536
MAX_HEADERS = 200
CERT_NONE = 0  # = ssl.CERT_NONE, _ssl.CERT_NONE
PROTOCOL_TLS_CLIENT = 16  # = ssl.PROTOCOL_TLS_CLIENT


@record(frozen=True)
class ServerURL:
    """A kubeconfig's `server`: `scheme://authority/prefix`."""

    scheme: str  # "http" or "https"
    host: str  # lower case; an IPv6 address without its brackets
    port: int
    authority: str  # as written, without userinfo: the Host header
    prefix: str  # the path before the API's own, without a trailing "/"

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @classmethod
    def parse(cls, url: str) -> ServerURL:
        """ValueError saying what is wrong; what `urlsplit` accepts and a dial needs."""
        if any(c.isspace() or not c.isprintable() for c in url):
            raise ValueError("holds whitespace or control characters")
        scheme, sep, rest = url.partition("://")
        scheme = scheme.lower()
        if not sep or scheme not in ("http", "https"):
            raise ValueError("is not an http(s) URL")
        cut = min([i for i in map(rest.find, "/?#") if i >= 0], default=len(rest))
        netloc, path = rest[:cut], rest[cut:]
        path = path.partition("#")[0].partition("?")[0]
        authority = netloc.rpartition("@")[2]
        if authority.startswith("["):
            host, bracket, tail = authority[1:].partition("]")
            if not bracket or (tail and not tail.startswith(":")):
                raise ValueError("has an unclosed or misplaced IPv6 bracket")
            port_text = tail[1:]
        else:
            host, _, port_text = authority.partition(":")
        if not host:
            raise ValueError("names no host")
        if port_text and not (port_text.isascii() and port_text.isdigit()):
            raise ValueError(f"has a port that is not a number: {port_text!r}")
        port = int(port_text) if port_text else (443 if scheme == "https" else 80)
        if not 0 < port < 65536:
            raise ValueError(f"has a port out of range: {port}")
        return cls(scheme, host.lower(), port, authority, path.rstrip("/"))


def tls_context(
    factory: Callable[[int], TlsContext],
    *,
    insecure: bool,
    ca: str | bytes,
    cert_chain: tuple[str, str] | None,
) -> TlsContext:
    """`ssl.create_default_context(cadata=ca)` (the system store without `ca`,
    no verification when `insecure`) on `factory`, with a client certificate
    from files when given. ssl.SSLError/ValueError for bad material."""
    context = factory(PROTOCOL_TLS_CLIENT)  # TLS >= 1.2, hostname check, CERT_REQUIRED
    if insecure:
        context.check_hostname = False
        # the attribute is an enum on ssl.SSLContext, an int on the C class
        setattr(context, "verify_mode", CERT_NONE)  # noqa: B010
    elif ca:
        context.load_verify_locations(cadata=ca)
    else:
        context.set_default_verify_paths()
    if cert_chain is not None:
        context.load_cert_chain(*cert_chain)
    return context


class Socket(_socket.socket):
    """`_socket.socket` with weak references, which `_ssl` keeps to its socket."""

    __slots__ = ("__weakref__",)


def dial(host: str, port: int, timeout: float) -> Socket:
    """A TCP connection, each address in turn (as `socket.create_connection`)."""
    # bytes: getaddrinfo runs a str host through the IDNA codec (~1 ms to import)
    name: str | bytes = host.encode() if host.isascii() else host
    last: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM):
        sock = Socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    raise last


class ConnectionLostError(Exception):
    """The server closed the connection; `answered` once a status line came."""

    def __init__(self, what: str, *, answered: bool) -> None:
        super().__init__(what)
        self.answered = answered


class ProtocolError(Exception):
    """An answer that is not HTTP/1.x as we know it."""


@record(frozen=True)
class RawAnswer:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    will_close: bool


class _PlainIO(io.RawIOBase):
    def __init__(self, sock: Socket) -> None:
        self.sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        return self.sock.recv_into(buffer)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)


class _TlsIO(io.RawIOBase):
    """Reads and writes through a `_ssl._SSLSocket` as `ssl.SSLSocket` does."""

    def __init__(self, sock: Socket, tls: TlsObject) -> None:
        import _ssl

        self.sock = sock  # the TLS object only holds a weak reference to it
        self.tls = tls
        self._eof_error = _ssl.SSLEOFError

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        try:
            return self.tls.read(memoryview(buffer).nbytes, buffer)
        except self._eof_error:
            return 0  # a close without close_notify reads as EOF (ssl's suppress_ragged_eofs)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self.tls.write(view) :]


class Connection:
    """One HTTP/1.1 connection: the little the API needs, without http.client.

    Bodies come with Content-Length, chunked, or until close; keep-alive
    unless either side says close. Timeouts are the socket's.
    """

    def __init__(
        self,
        server: ServerURL,
        *,
        timeout: float,
        context: TlsContext | None = None,
        server_name: str = "",
    ) -> None:
        sock = dial(server.host, server.port, timeout)
        try:
            if context is None:
                self.io: _PlainIO | _TlsIO = _PlainIO(sock)
            else:
                name = server_name or server.host
                if not name.isascii():
                    name = name.encode("idna").decode("ascii")  # as ssl.py does
                # The C call behind ssl.SSLContext.wrap_socket; the context checks
                # the certificate and the name (an IP address as such) in the handshake.
                # typeshed does not declare the private call.
                tls: TlsObject = context._wrap_socket(sock, False, name)  # type: ignore[attr-defined]
                tls.do_handshake()
                self.io = _TlsIO(sock, tls)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.reader = io.BufferedReader(self.io)

    def close(self) -> None:
        self.sock.close()

    def exchange(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> RawAnswer:
        lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        try:
            self.io.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ConnectionLostError(str(exc), answered=False) from None
        try:
            status_line = self.reader.readline(MAX_HEADER_LINE)
        except ConnectionResetError as exc:
            raise ConnectionLostError(str(exc), answered=False) from None
        if not status_line:
            raise ConnectionLostError("closed before answering", answered=False)
        version, _, rest = status_line.decode("latin-1").partition(" ")
        code = rest.strip().partition(" ")[0]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise ProtocolError(repr(status_line[:80]))
        answer_headers = self._headers()
        status = int(code)
        connection = answer_headers.get("connection", "").lower()
        will_close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        elif "chunked" in answer_headers.get("transfer-encoding", "").lower():
            data = self._chunked()
        elif "content-length" in answer_headers:
            length = answer_headers["content-length"]
            if not length.isdigit():
                raise ProtocolError(f"Content-Length {length!r}")
            data = self._exactly(int(length))
        else:
            data, will_close = self.reader.read(), True
        return RawAnswer(status, answer_headers, data, will_close)

    def _headers(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = self.reader.readline(MAX_HEADER_LINE)
            if not line:
                raise ConnectionLostError("closed in the headers", answered=True)
            if line in (b"\r\n", b"\n"):
                return found
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ProtocolError(f"header line {line[:80]!r}")
            found[name.strip().lower()] = value.strip()
        raise ProtocolError(f"more than {MAX_HEADERS} headers")

    def _exactly(self, size: int) -> bytes:
        data = self.reader.read(size)
        if len(data) != size:
            raise ConnectionLostError(f"body cut at {len(data)} of {size} bytes", answered=True)
        return data

    def _chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            line = self.reader.readline(MAX_HEADER_LINE)
            if not line:
                raise ConnectionLostError("closed in a chunked body", answered=True)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"chunk size {line[:40]!r}") from None
            if size == 0:
                # Trailers, if any, end with an empty line like the headers.
                self._headers()
                return b"".join(chunks)
            chunks.append(self._exactly(size))
            self._exactly(2)  # the CRLF after each chunk


def cert_rejected(exc: OSError) -> bool:
    """The server's certificate failed verification (no retry can help)."""
    import _ssl  # loaded already: only https connections get here

    return isinstance(exc, _ssl.SSLCertVerificationError)
