"""A small Kubernetes API client over the standard library, for the `jaring` binary.

`KubeConfig.load` reads a kubeconfig (Multus's `kubeconfig` key); `KubeClient`
does GET/PATCH/POST/DELETE with short timeouts, retries on 5xx, 429 and connection
failures, and re-reads the token, certificate files and the kubeconfig itself
on every call (LESSONS #7, #9). Called by `sources.ApiSource`.
"""

from __future__ import annotations

# = collections.abc, which imports the whole `collections` package (~1.5 ms a call)
import _collections_abc as _abc
import os
import time

from jaring.cni import jsoncodec
from jaring.cni.errors import CniError, Code
from jaring.cni.logs import get_logger
from jaring.cni.records import record

from .apiconn import (
    Connection,
    ConnectionLostError,
    ProtocolError,
    ServerURL,
    cert_rejected,
    tls_context,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # ssl.py and socket.py load only for the daemon's watches (connect)
    import socket
    from collections.abc import Callable, Mapping
    from typing import Any

    from .apiconn import TlsContext

log = get_logger(__name__)

USER_AGENT = "jaring/0.1"
MAX_BACKOFF = 1.0


@record(frozen=True)
class KubeConfig:
    """The current context of a kubeconfig: where the API is and how to log in.

    File paths are absolute (relative ones in the file are resolved against
    the kubeconfig's directory, as kubectl does); the files are read on use.
    """

    server: str
    path: str = ""  # the kubeconfig file, "" when built in memory
    ca_file: str = ""
    ca_data: bytes = b""
    insecure: bool = False
    tls_server_name: str = ""
    token: str = ""
    token_file: str = ""
    cert_file: str = ""
    cert_data: bytes = b""
    key_file: str = ""
    key_data: bytes = b""

    @classmethod
    def load(cls, path: str) -> KubeConfig:
        """Parse the kubeconfig at `path`; CniError(7) naming the file and key."""
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise CniError(
                Code.INVALID_CONFIG, f"cannot read kubeconfig {path}", str(exc)
            ) from None
        doc = _parse_document(data, path)
        return _from_document(doc, path=path)


def _parse_document(data: bytes, path: str) -> Mapping[str, Any]:
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise CniError(Code.INVALID_CONFIG, f"kubeconfig {path} is not UTF-8", str(exc)) from None
    doc: object
    if text.lstrip().startswith("{"):
        try:
            doc = jsoncodec.loads(text)
        except ValueError as exc:
            raise CniError(
                Code.INVALID_CONFIG, f"kubeconfig {path} is not valid JSON", str(exc)
            ) from None
    else:
        try:
            import yaml
        except ImportError:
            raise CniError(
                Code.INVALID_CONFIG,
                f"kubeconfig {path} is YAML: reading it needs PyYAML",
                "install PyYAML or write the kubeconfig as JSON",
            ) from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CniError(
                Code.INVALID_CONFIG, f"kubeconfig {path} is not valid YAML", str(exc)
            ) from None
    if not isinstance(doc, _abc.Mapping):
        raise CniError(Code.INVALID_CONFIG, f"kubeconfig {path} is not a mapping")
    return doc


def _from_document(doc: Mapping[str, Any], *, path: str) -> KubeConfig:
    def bad(key: str, why: str) -> CniError:
        return CniError(Code.INVALID_CONFIG, f"kubeconfig {path}: {key} {why}")

    contexts = _named(doc, "contexts", "context", bad)
    current = doc.get("current-context") or ""
    if not isinstance(current, str):
        raise bad("current-context", "is not a string")
    if not current:
        if len(contexts) != 1:
            raise bad("current-context", "is not set")
        current = next(iter(contexts))
    if current not in contexts:
        raise bad("current-context", f"names {current!r}, which is not in contexts")
    context = contexts[current]
    where = f"contexts[{current}]"
    cluster_name = context.get("cluster")
    if not isinstance(cluster_name, str) or not cluster_name:
        raise bad(f"{where}.context.cluster", "is not set")
    clusters = _named(doc, "clusters", "cluster", bad)
    if cluster_name not in clusters:
        raise bad(f"{where}.context.cluster", f"names {cluster_name!r}, which is not in clusters")
    cluster = clusters[cluster_name]
    cwhere = f"clusters[{cluster_name}].cluster"
    user: Mapping[str, Any] = {}
    uwhere = "users[]"
    user_name = context.get("user") or ""
    if not isinstance(user_name, str):
        raise bad(f"{where}.context.user", "is not a string")
    if user_name:
        users = _named(doc, "users", "user", bad)
        if user_name not in users:
            raise bad(f"{where}.context.user", f"names {user_name!r}, which is not in users")
        user = users[user_name]
        uwhere = f"users[{user_name}].user"

    base = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()

    def text(section: Mapping[str, Any], key: str, sect: str) -> str:
        value = section.get(key) or ""
        if not isinstance(value, str):
            raise bad(f"{sect}.{key}", "is not a string")
        return value

    def file(section: Mapping[str, Any], key: str, sect: str) -> str:
        value = text(section, key, sect)
        return os.path.join(base, value) if value else ""

    def b64(section: Mapping[str, Any], key: str, sect: str) -> bytes:
        value = text(section, key, sect)
        if not value:
            return b""
        import binascii

        try:
            # = base64.b64decode(value, validate=True), without importing base64 (~1 ms)
            return binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
        except (binascii.Error, ValueError):
            raise bad(f"{sect}.{key}", "is not valid base64") from None

    server = text(cluster, "server", cwhere)
    try:
        ServerURL.parse(server)
    except ValueError as exc:
        raise bad(f"{cwhere}.server", f"{exc}: {server!r}") from None
    insecure = cluster.get("insecure-skip-tls-verify", False)
    if not isinstance(insecure, bool):
        raise bad(f"{cwhere}.insecure-skip-tls-verify", "is not a boolean")
    config = KubeConfig(
        server=server.rstrip("/"),
        path=path,
        ca_file=file(cluster, "certificate-authority", cwhere),
        ca_data=b64(cluster, "certificate-authority-data", cwhere),
        insecure=insecure,
        tls_server_name=text(cluster, "tls-server-name", cwhere),
        token=text(user, "token", uwhere),
        token_file=file(user, "tokenFile", uwhere),
        cert_file=file(user, "client-certificate", uwhere),
        cert_data=b64(user, "client-certificate-data", uwhere),
        key_file=file(user, "client-key", uwhere),
        key_data=b64(user, "client-key-data", uwhere),
    )
    has_cert = bool(config.cert_file or config.cert_data)
    has_key = bool(config.key_file or config.key_data)
    if has_cert != has_key:
        raise bad(uwhere, "has a client certificate without its key, or a key without a cert")
    if (user.get("exec") or user.get("auth-provider")) and not (
        config.token or config.token_file or has_cert
    ):
        raise bad(f"{uwhere}.exec", "(credential plugins) is not supported: use a token or cert")
    return config


def _named(
    doc: Mapping[str, Any], key: str, inner: str, bad: Callable[[str, str], CniError]
) -> dict[str, Mapping[str, Any]]:
    """kubeconfig lists of {name, <inner>: {...}} as a dict by name."""
    items = doc.get(key) or []
    if not isinstance(items, list):
        raise bad(key, "is not a list")
    found: dict[str, Mapping[str, Any]] = {}
    for i, item in enumerate(items):
        if not isinstance(item, _abc.Mapping) or not isinstance(item.get("name"), str):
            raise bad(f"{key}[{i}]", "has no name")
        body = item.get(inner) or {}
        if not isinstance(body, _abc.Mapping):
            raise bad(f"{key}[{item['name']}].{inner}", "is not a mapping")
        found[item["name"]] = body
    return found


class KubeApiError(CniError):
    """A CniError from the API client, with the HTTP status (0: no response)."""

    def __init__(self, code: int, msg: str, details: str = "", *, status: int = 0) -> None:
        super().__init__(code, msg, details)
        self.status = status


@record(frozen=True)
class _Response:
    status: int
    body: bytes


class _TransientError(Exception):
    """A failure worth retrying: 5xx, 429, connection refused/reset, timeout."""

    def __init__(self, what: str, *, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(what)
        self.status = status
        self.retry_after = retry_after


class KubeClient:
    """GET/PATCH/POST JSON against the API server of a kubeconfig.

    One connection is kept for the calls of one CNI operation (pod, NADs,
    status). Credentials come from disk on every call: the token file, the
    certificate files, and the kubeconfig when it changed (LESSONS #7).
    """

    def __init__(
        self,
        config: KubeConfig,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.retries = retries
        self.sleep = sleep
        self._config_stamp = _stamp(config.path)
        self._conn: Connection | None = None
        self._conn_key: tuple[object, ...] = ()
        self._server: tuple[str, ServerURL] | None = None
        self._tls: dict[object, tuple[tuple[object, ...], TlsContext]] = {}

    def url(self, path: str) -> str:
        return self.config.server + path

    def get(self, path: str) -> dict[str, Any] | None:
        """The object at `path`; None when the API says 404."""
        try:
            return self._call("GET", path)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def patch(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        content_type: str = "application/merge-patch+json",
    ) -> dict[str, Any]:
        return self._call("PATCH", path, body=body, content_type=content_type)

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", path, body=body, content_type="application/json")

    def delete(self, path: str) -> dict[str, Any] | None:
        """Delete the object at `path`; None when it was already gone (404)."""
        try:
            return self._call("DELETE", path)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    # for callers that speak HTTP themselves (the node daemon's watch streams)
    def connect(self) -> socket.socket:
        """A new connection to the API server, verified as every call is
        (CA, client certificate, `tls-server-name`), the kubeconfig re-read
        first when it changed. The caller owns and closes it. A `socket` (an
        `ssl.SSLSocket` for https), for http.client."""
        import socket
        import ssl

        self._reload_config()
        server = self.server()
        sock = socket.create_connection((server.host, server.port), timeout=self.timeout)
        if not server.tls:
            return sock
        try:
            context = self._tls_context(ssl.SSLContext)
            assert isinstance(context, ssl.SSLContext)
            return context.wrap_socket(
                sock, server_hostname=self.config.tls_server_name or server.host
            )
        except BaseException:
            sock.close()
            raise

    def server(self) -> ServerURL:
        """The parsed `server` of the kubeconfig in use."""
        text = self.config.server
        if self._server is None or self._server[0] != text:
            try:
                self._server = (text, ServerURL.parse(text))
            except ValueError as exc:  # a KubeConfig built in memory: load() checks files
                raise KubeApiError(
                    Code.INVALID_CONFIG, "bad Kubernetes API server URL", f"{text!r} {exc}"
                ) from None
        return self._server[1]

    def headers(self) -> dict[str, str]:
        """Request headers of one call: Host, User-Agent, Accept and the
        bearer token as it is on disk now."""
        headers = {
            "Host": self.server().authority,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def target(self, path: str) -> str:
        """The request target of an API path (the server URL may carry a prefix)."""
        return (self.server().prefix + path) or "/"

    def close(self) -> None:
        """Close the kept connection (the next call opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Callers that never close (a short-lived binary) must not leak a socket warning.
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()

    # one call: retries around one request
    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        content_type: str = "",
    ) -> dict[str, Any]:
        self._reload_config()
        url = self.url(path)
        data = jsoncodec.dumps(body).encode() if body is not None else None
        last = ""
        last_status = 0
        delay = 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(delay)
            try:
                response = self._request(method, path, data, content_type)
            except _TransientError as exc:
                last, last_status = str(exc), exc.status
                delay = min(MAX_BACKOFF, 0.05 * 2**attempt)
                if exc.retry_after is not None:
                    delay = min(MAX_BACKOFF, max(delay, exc.retry_after))
                log.info("%s %s: %s (attempt %d)", method, url, last, attempt + 1)
                continue
            return self._decode(method, url, response)
        raise KubeApiError(
            Code.TRY_AGAIN_LATER,
            "Kubernetes API unavailable",
            f"{method} {url}: {last} (after {self.retries + 1} attempts)",
            status=last_status,
        )

    def _decode(self, method: str, url: str, response: _Response) -> dict[str, Any]:
        if response.status >= 300:
            raise KubeApiError(
                Code.IO,
                f"Kubernetes API refused {method}",
                f"{method} {url}: {response.status} {_api_message(response.body)}",
                status=response.status,
            )
        try:
            doc = jsoncodec.loads(response.body)
        except ValueError as exc:
            raise KubeApiError(
                Code.DECODE, "Kubernetes API answered non-JSON", f"{method} {url}: {exc}"
            ) from None
        if not isinstance(doc, dict):
            raise KubeApiError(
                Code.DECODE, "Kubernetes API answered a non-object", f"{method} {url}"
            )
        return doc

    def _request(self, method: str, path: str, data: bytes | None, content_type: str) -> _Response:
        headers = self.headers()
        if content_type:
            headers["Content-Type"] = content_type
        target = self.target(path)
        # A kept connection may have been closed by the server meanwhile:
        # one fresh reconnect for that is not an attempt.
        for fresh in (False, True):
            reused = False
            try:
                conn, reused = self._connection(fresh=fresh)
                raw = conn.exchange(method, target, headers, data)
            except ConnectionLostError as exc:
                self.close()
                if reused and not exc.answered:
                    continue
                raise _TransientError(f"connection lost: {exc}") from None
            except OSError as exc:
                self.close()
                if self.server().tls and cert_rejected(exc):
                    # The server is not who the kubeconfig says: retrying cannot help.
                    raise KubeApiError(
                        Code.IO,
                        "TLS failure talking to the Kubernetes API",
                        f"{self.url(path)}: {exc}",
                    ) from None
                raise _TransientError(f"{type(exc).__name__}: {exc}") from None
            except ProtocolError as exc:
                self.close()
                raise _TransientError(f"bad HTTP answer: {exc}") from None
            if raw.will_close:
                self.close()
            if raw.status >= 500 or raw.status == 429:
                raise _TransientError(
                    f"{raw.status} {_api_message(raw.body)}",
                    status=raw.status,
                    retry_after=_retry_after(raw.headers.get("retry-after")),
                )
            return _Response(raw.status, raw.body)
        raise AssertionError("unreachable: the second pass always returns or raises")

    def _connection(self, *, fresh: bool) -> tuple[Connection, bool]:
        server = self.server()
        context = None
        if server.tls:
            import _ssl  # ssl.py's classes and enums cost the binary ~4 ms

            context = self._tls_context(_ssl._SSLContext)
        key = (server, self.config.tls_server_name, id(context))
        if fresh or key != self._conn_key:
            self.close()
        if self._conn is not None:
            return self._conn, True
        self._conn = Connection(
            server,
            timeout=self.timeout,
            context=context,
            server_name=self.config.tls_server_name,
        )
        self._conn_key = key
        return self._conn, False

    # credentials, from disk on every call
    def _reload_config(self) -> None:
        path = self.config.path
        if not path:
            return
        stamp = _stamp(path)
        if stamp is None or stamp == self._config_stamp:
            return  # unchanged, or gone for now: keep what we had
        try:
            config = KubeConfig.load(path)
        except CniError as exc:
            # Caught mid-rewrite by a writer that does not rename: the last good
            # config serves this call; the next call looks again.
            log.warning(
                "kubeconfig %s changed but is unusable, keeping the last one: %s", path, exc
            )
            return
        self.config, self._config_stamp = config, stamp
        log.info("kubeconfig %s changed: reloaded", path)

    def _token(self) -> str:
        if self.config.token_file:
            return _read(self.config.token_file, "tokenFile").decode().strip()
        return self.config.token

    def _tls_context(self, factory: Callable[[int], TlsContext]) -> TlsContext:
        """The context for the TLS material on disk now, built on `factory`
        (one per factory), again only when the material changed."""
        cfg = self.config
        ca = _read(cfg.ca_file, "certificate-authority") if cfg.ca_file else cfg.ca_data
        cert = _read(cfg.cert_file, "client-certificate") if cfg.cert_file else cfg.cert_data
        key = _read(cfg.key_file, "client-key") if cfg.key_file else cfg.key_data
        material = (cfg.insecure, ca, cert, key)
        kept = self._tls.get(factory)
        if kept is not None and kept[0] == material:
            return kept[1]
        try:
            if cert:
                import tempfile  # only a client certificate given as data needs files

                with tempfile.TemporaryDirectory(prefix="jaring-tls-") as tmp:
                    context = tls_context(
                        factory,
                        insecure=cfg.insecure,
                        ca=_pem_or_der(ca),
                        cert_chain=_pem_files(tmp, cert, key),
                    )
            else:
                context = tls_context(
                    factory, insecure=cfg.insecure, ca=_pem_or_der(ca), cert_chain=None
                )
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise KubeApiError(
                Code.INVALID_CONFIG,
                "bad TLS material in kubeconfig",
                f"{cfg.path or cfg.server}: {exc}",
            ) from None
        self._tls[factory] = (material, context)
        return context


def _stamp(path: str) -> tuple[int, int, int] | None:
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _read(path: str, key: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise KubeApiError(
            Code.IO, f"cannot read {key} {path} named by the kubeconfig", str(exc)
        ) from None


def _pem_or_der(data: bytes) -> str | bytes:
    """ssl wants PEM as str and DER as bytes."""
    return data.decode() if b"-----BEGIN" in data else data


def _pem_files(tmp: str, cert: bytes, key: bytes) -> tuple[str, str]:
    """ssl loads a client cert only from files: private copies in `tmp` for the load."""
    cert_path = os.path.join(tmp, "cert.pem")
    key_path = os.path.join(tmp, "key.pem")
    for file_path, data in ((cert_path, cert), (key_path, key)):
        fd = os.open(file_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return cert_path, key_path


def _api_message(body: bytes) -> str:
    """The `message` of a Kubernetes Status, else the start of the body."""
    try:
        doc = jsoncodec.loads(body)
    except ValueError:
        return body[:300].decode(errors="replace").strip()
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    return body[:300].decode(errors="replace").strip()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
