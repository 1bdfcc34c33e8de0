"""A tiny HTTP(S) server answering from a script, for the client's failure paths.

kmock emulates a healthy API; the retry, credential and TLS tests need an
API that answers 503 twice, records each Authorization header and client
certificate, or speaks TLS with a CA made for the test (openssl CLI).
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: tuple[tuple[str, str], ...] = ()
    # How the body is delimited: "length", "chunked", "close" (read to EOF),
    # "cut" (Content-Length promises more than comes), "raw" (body is the whole answer)
    framing: str = "length"

    @classmethod
    def json(cls, status: int, doc: Any, *headers: tuple[str, str]) -> Answer:
        return cls(status, json.dumps(doc).encode(), headers)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer_cn: str  # the client certificate's CN, "" without one


@dataclass
class Script:
    """Answers by route (method, path) first, else in order, else `default`."""

    answers: deque[Answer] = field(default_factory=deque)
    default: Answer = field(default_factory=lambda: Answer.json(200, {"kind": "Status"}))
    routes: dict[tuple[str, str], Answer] = field(default_factory=dict)
    idle_timeout: float | None = None  # the server drops idle keep-alive connections
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    closed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def then(self, *answers: Answer) -> Script:
        self.answers.extend(answers)
        return self

    def route(self, method: str, path: str, answer: Answer) -> Script:
        self.routes[(method, path)] = answer
        return self

    def next(self, seen: Seen) -> Answer:
        with self.lock:
            self.seen.append(seen)
            routed = self.routes.get((seen.method, seen.path.split("?")[0]))
            if routed is not None:
                return routed
            return self.answers.popleft() if self.answers else self.default


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the API server does
        timeout = script.idle_timeout

        def setup(self) -> None:
            super().setup()
            with script.lock:
                script.connections += 1

        def finish(self) -> None:
            super().finish()
            with script.lock:
                script.closed += 1

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            peer_cn = ""
            if isinstance(self.connection, ssl.SSLSocket):
                cert: dict[str, Any] = dict(self.connection.getpeercert() or {})
                for rdn in cert.get("subject", ()):
                    for key, value in rdn:
                        if key == "commonName":
                            peer_cn = str(value)
            answer = script.next(
                Seen(self.command, self.path, dict(self.headers.items()), body, peer_cn)
            )
            if answer.framing == "raw":
                self.wfile.write(answer.body)
                self.close_connection = True
                return
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            if answer.framing == "length":
                self.send_header("Content-Length", str(len(answer.body)))
            elif answer.framing == "cut":
                self.send_header("Content-Length", str(len(answer.body) + 100))
                self.close_connection = True
            elif answer.framing == "chunked":
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            for key, value in answer.headers:
                self.send_header(key, value)
            self.end_headers()
            if answer.framing == "chunked":
                for i in range(0, len(answer.body), 7):
                    piece = answer.body[i : i + 7]
                    self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")
            else:
                self.wfile.write(answer.body)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer  # noqa: N815  # http.server's naming

        def log_message(self, format: str, *args: Any) -> None:  # base signature
            pass

    return Handler


@contextmanager
def serve(script: Script, *, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve `script` on 127.0.0.1; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.02},
        name="scripted-api",
        daemon=True,
    )
    thread.start()
    scheme = "https" if tls is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def refused_port() -> int:
    """A local port nobody listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections but never answers: reads time out."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@dataclass(frozen=True)
class Pki:
    """A test CA, a server certificate for 127.0.0.1 and client certificates."""

    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def make(cls, directory: Path) -> Pki:
        ca_key, ca = directory / "ca.key", directory / "ca.crt"
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=jaring-test-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        pki = cls(directory, ca, directory / "server.crt", directory / "server.key")
        pki.issue("127.0.0.1", server=True, cert=pki.server_cert, key=pki.server_key)
        return pki

    def issue(
        self,
        cn: str,
        *,
        server: bool = False,
        cert: Path,
        key: Path,
        names: str = "IP:127.0.0.1,DNS:localhost",
    ) -> None:
        csr = self.dir / f"{cn}.csr"
        ext = self.dir / f"{cn}.ext"
        ext.write_text(
            f"subjectAltName={names}\nextendedKeyUsage=serverAuth\n"
            if server
            else "extendedKeyUsage=clientAuth\n"
        )
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", f"/CN={cn}",
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.dir / "ca.key",
            "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext,
        )  # fmt: skip

    def server_context(self, *, client_certs: bool = False, name: str = "") -> ssl.SSLContext:
        """The server's TLS; with `name`, a certificate for that DNS name only."""
        cert, key = self.server_cert, self.server_key
        if name:
            cert, key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
            self.issue(name, server=True, cert=cert, key=key, names=f"DNS:{name}")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        if client_certs:
            context.verify_mode = ssl.CERT_OPTIONAL
            context.load_verify_locations(self.ca)
        return context


def _openssl(*args: object) -> None:
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr}")
